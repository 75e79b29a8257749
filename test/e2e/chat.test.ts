/**
 * Chat on the real call page: three headless Chromium pages (fake devices) in one room through a real
 * server. Messages typed on A reach B and C in order with an unread badge, HTML is shown as text,
 * a flood is refused with RATE_LIMITED on A's page, and a late joiner sees the recent history.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { CallPage } from '../helpers/callPage.ts';
import { waitFor } from '../helpers/wait.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const ROOM = 'chat room';
const XSS = '<img src=x onerror="window.__chatXss=1"><b>bold</b><script>window.__chatXss=2</script>';

interface ShownMessage { sender: string; text: string; time: string }

function shownMessages(page: CallPage): Promise<ShownMessage[]> {
  return page.page.$$eval('#chat .chat-message', (items) =>
    items.map((li) => ({
      sender: li.querySelector('.chat-sender')?.textContent ?? '',
      text: li.querySelector('.chat-text')?.textContent ?? '',
      time: li.querySelector('.chat-time')?.textContent ?? '',
    })),
  );
}

async function type(page: CallPage, text: string): Promise<void> {
  await page.page.fill('#chat-input', text);
  await page.page.click('#chat-send');
}

describe('chat on the call page', () => {
  let server: AvatarServer;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  const pages: CallPage[] = [];

  before(async () => {
    server = await startTestServer();
    ({ browser: context, close: closeBrowser } = await launchChromium());
    for (const name of ['Ada', 'Bob', 'Cyd']) {
      const page = await CallPage.open(context, server.httpUrl, ROOM, name, { width: 160, height: 120, fps: 10 });
      pages.push(page);
      await page.join();
    }
  });

  after(async () => {
    await closeBrowser?.();
    await server?.close();
  });

  test('messages typed on A reach B and C in order with A\'s name and a time, and the unread badge counts them until the panel opens', async () => {
    const [a, b, c] = pages as [CallPage, CallPage, CallPage];
    await a.page.click('#toggle-chat');
    for (const text of ['first', 'second', 'third']) {
      await type(a, text);
      await waitFor(async () => (await shownMessages(a)).some((m) => m.text === text) || undefined, { timeoutMs: 5000, what: `A shows "${text}"` });
    }
    for (const page of [b, c]) {
      await waitFor(async () => (await page.page.textContent('#chat-unread')) === '3' || undefined, { timeoutMs: 5000, what: `${page.name}'s unread badge at 3` });
      assert.equal(await page.page.isVisible('#chat'), false, 'the panel stays closed until opened');
      await page.page.click('#toggle-chat');
      const shown = await shownMessages(page);
      assert.deepEqual(shown.map((m) => m.text), ['first', 'second', 'third'], `${page.name} shows them in order`);
      for (const m of shown) {
        assert.equal(m.sender, 'Ada');
        assert.match(m.time, /\d{1,2}[:.]\d{2}/);
      }
      assert.equal(await page.page.isVisible('#chat-unread'), false, 'opening the panel clears the badge');
    }
    assert.deepEqual((await shownMessages(a)).map((m) => m.sender), ['Ada (you)', 'Ada (you)', 'Ada (you)']);
  });

  test('HTML in a message is shown as its text: no element is created and no script runs', async () => {
    const [a, b, c] = pages as [CallPage, CallPage, CallPage];
    await type(a, XSS);
    for (const page of [b, c]) {
      await waitFor(async () => (await shownMessages(page)).some((m) => m.text === XSS) || undefined, { timeoutMs: 5000, what: `${page.name} shows the HTML message` });
      const inside = await page.page.$$eval('#chat .chat-text', (els) => els.map((el) => el.children.length));
      assert.deepEqual(inside, [0, 0, 0, 0], 'no element inside any message text');
      assert.equal(await page.page.$$eval('#chat img, #chat script, #chat b', (els) => els.length), 0);
      assert.equal(await page.page.evaluate(() => (window as unknown as { __chatXss?: number }).__chatXss), undefined);
    }
  });

  test('a flood from A is refused with RATE_LIMITED shown on A\'s page, and B receives only what was accepted', async () => {
    const [a, b] = pages as [CallPage, CallPage];
    const before = (await shownMessages(b)).length;
    await a.page.fill('#chat-input', 'flood');
    // 30 sends as fast as the page can submit them (the input keeps its text until one is accepted).
    await a.page.evaluate(() => {
      const form = document.querySelector<HTMLFormElement>('#chat form')!;
      const input = document.querySelector<HTMLTextAreaElement>('#chat-input')!;
      for (let i = 0; i < 30; i++) {
        input.value = `flood ${i}`;
        form.requestSubmit();
      }
    });
    await waitFor(async () => (await a.page.getAttribute('.chat-error', 'data-code')) === 'RATE_LIMITED' || undefined, { timeoutMs: 5000, what: 'RATE_LIMITED on A' });
    assert.equal(await a.page.isVisible('.chat-error'), true);
    assert.match((await a.page.textContent('.chat-error')) ?? '', /too many chat messages/);
    await new Promise((r) => setTimeout(r, 500));
    const aFlood = (await shownMessages(a)).filter((m) => m.text.startsWith('flood')).length;
    const bFlood = (await shownMessages(b)).filter((m) => m.text.startsWith('flood')).length;
    assert.ok(aFlood > 0 && aFlood < 30, `${aFlood} of 30 accepted`);
    assert.equal(bFlood, aFlood, 'B shows exactly the accepted ones');
    assert.equal((await shownMessages(b)).length, before + bFlood);
    assert.ok((await a.stats()).joined, 'A is still in the call');
  });

  test('a late joiner sees the recent messages in order', async () => {
    const a = pages[0]!;
    const late = await CallPage.open(context, server.httpUrl, ROOM, 'Late', { width: 160, height: 120, fps: 10 });
    pages.push(late);
    await late.join();
    await late.page.click('#toggle-chat');
    const expected = (await shownMessages(a)).map((m) => m.text);
    assert.deepEqual((await shownMessages(late)).map((m) => m.text), expected);
    assert.equal(await late.page.isVisible('#chat-unread'), false, 'history is not counted as unread');
  });
});
