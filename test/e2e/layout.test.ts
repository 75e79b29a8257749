/**
 * Call layouts in headless Chromium: grid and speaker layouts, which tile is large (pinned > screen
 * share > active speaker > first remote tile), per-tile volume and the participant list.
 * The active-speaker class and data-source="screen" are set by the test itself here: the layout only
 * observes them, whoever sets them. The fake microphones play silence, so the SFU's own active-speaker
 * detection never marks a tile behind the test's back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { tempSilenceWav } from '../helpers/silenceWav.ts';
import { CallPage } from '../helpers/callPage.ts';
import { waitFor } from '../helpers/wait.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const ROOM = 'layouts';

/** The peer id of the large tile, and the widths of all tiles. */
const layoutOf = (p: CallPage): Promise<{ main: string | null; widths: Record<string, number> }> =>
  p.page.evaluate(() => {
    const widths: Record<string, number> = {};
    for (const t of document.querySelectorAll<HTMLElement>('#tiles > .tile')) widths[t.dataset['peerId']!] = t.getBoundingClientRect().width;
    return { main: document.querySelector<HTMLElement>('#tiles > .tile.main')?.dataset['peerId'] ?? null, widths };
  });

async function expectLarge(p: CallPage, peerId: string, why: string): Promise<void> {
  await waitFor(async () => (await layoutOf(p)).main === peerId, { what: `${peerId} large (${why})` });
  const { widths } = await layoutOf(p);
  for (const [id, w] of Object.entries(widths)) if (id !== peerId) assert.ok(widths[peerId]! > 1.8 * w, `${why}: the large tile (${widths[peerId]} px) is much wider than ${id}'s (${w} px)`);
}

describe('call layouts in headless Chromium', () => {
  let server: AvatarServer;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let a: CallPage;
  let b: CallPage;
  let aId: string;
  let bId: string;

  before(async () => {
    server = await startTestServer();
    ({ browser: context, close: closeBrowser } = await launchChromium({ fakeAudio: tempSilenceWav() }));
    a = await CallPage.open(context, server.httpUrl, ROOM, 'ada');
    aId = await a.join();
    b = await CallPage.open(context, server.httpUrl, ROOM, 'bob');
    bId = await b.join();
    await waitFor(async () => (await a.page.$$('#tiles > .tile')).length === 2, { what: 'two tiles on ada' });
  });

  after(async () => {
    await closeBrowser?.();
    await server?.close();
  });

  test('the grid layout shows tiles of equal size, and the speaker layout puts one large', async () => {
    const grid = await layoutOf(a);
    assert.equal(grid.main, null);
    assert.equal(Math.round(grid.widths[aId]!), Math.round(grid.widths[bId]!));
    await a.page.click('#layout-toggle');
    await expectLarge(a, bId, 'the first remote tile by default');
    assert.equal(await a.page.textContent('#layout-toggle'), 'Grid layout');
    await a.page.click('#layout-toggle');
    await waitFor(async () => (await layoutOf(a)).main === null, { what: 'back to the grid' });
  });

  test('the large tile is the pinned one, else a screen share, else the active speaker', async () => {
    await a.page.click('#layout-toggle');
    await expectLarge(a, bId, 'default');
    await a.page.evaluate((id) => document.querySelector(`.tile[data-peer-id="${id}"]`)!.classList.add('active-speaker'), aId);
    await expectLarge(a, aId, 'ada is the active speaker');
    await a.page.evaluate((id) => document.querySelector<HTMLElement>(`.tile[data-peer-id="${id}"]`)!.setAttribute('data-source', 'screen'), bId);
    await expectLarge(a, bId, 'a screen share beats the active speaker');
    await a.page.hover(`.tile[data-peer-id="${aId}"]`);
    await a.page.click(`.tile[data-peer-id="${aId}"] .tile-controls .pin`);
    await expectLarge(a, aId, 'pinned beats the screen share');
    assert.equal(await a.page.getAttribute(`.tile[data-peer-id="${aId}"] .pin`, 'aria-pressed'), 'true');
    await a.page.click(`.tile[data-peer-id="${aId}"] .tile-controls .pin`);
    await expectLarge(a, bId, 'unpinned: the screen share again');
    await a.page.evaluate((id) => document.querySelector<HTMLElement>(`.tile[data-peer-id="${id}"]`)!.removeAttribute('data-source'), bId);
    await expectLarge(a, aId, 'share gone: the active speaker again');
  });

  test('pinning a tile from the grid switches to the speaker layout with that tile large', async () => {
    await b.page.hover(`.tile[data-peer-id="${aId}"]`);
    await b.page.click(`.tile[data-peer-id="${aId}"] .tile-controls .pin`);
    await expectLarge(b, aId, 'pinned on bob');
  });

  test('the volume slider of a remote tile sets that tile\'s playback volume only', async () => {
    await a.page.$eval(`.tile[data-peer-id="${bId}"] input.volume`, (el) => {
      const i = el as HTMLInputElement;
      i.value = '0.3';
      i.dispatchEvent(new Event('input'));
    });
    assert.equal(await a.page.$eval(`.tile[data-peer-id="${bId}"] video`, (v) => (v as HTMLVideoElement).volume), 0.3);
    assert.equal(await a.page.$(`.tile[data-peer-id="${aId}"] input.volume`), null, 'no volume on your own tile');
  });

  test('the participant list shows everyone with their mic and camera state, and follows a mute', async () => {
    await a.page.click('#participants-toggle');
    const rows = (): Promise<string[]> => a.page.$$eval('#participant-list li', (ls) => ls.map((l) => l.textContent ?? ''));
    await waitFor(async () => (await rows()).length === 2 && (await rows()).every((r) => r.includes('camera on')), { what: 'two participants with cameras on' });
    assert.equal(await a.page.textContent('#participant-count'), '2');
    await b.page.click('#toggle-mic');
    await waitFor(async () => (await rows()).some((r) => r.startsWith('bob') && r.includes('mic off')), { what: "bob's mic off in ada's list" });
    assert.deepEqual([...a.errors, ...b.errors], []);
  });

  test('each remote tile and the uplink show a connection quality from getStats (good on loopback)', async () => {
    const read = (): Promise<{ tile: string | null; title: string | null; uplink: string | null }> =>
      a.page.evaluate((id) => ({
        tile: document.querySelector<HTMLElement>(`.tile[data-peer-id="${id}"] > .conn`)?.dataset['quality'] ?? null,
        title: document.querySelector<HTMLElement>(`.tile[data-peer-id="${id}"] > .conn`)?.title ?? null,
        uplink: document.querySelector<HTMLElement>('#uplink-quality:not([hidden])')?.dataset['quality'] ?? null,
      }), bId);
    await waitFor(async () => (await read()).tile === 'good' && (await read()).uplink === 'good', { what: 'good quality shown', timeoutMs: 15_000 });
    assert.match((await read()).title ?? '', /loss 0\.0 %.*RTT \d+ ms.*fps/);
  });

  test('keyboard shortcuts toggle mic and camera, show their help, are ignored while typing, and Shift+L leaves', async () => {
    const pressed = (id: string): Promise<string | null> => b.page.getAttribute(id, 'aria-pressed');
    const micBefore = await pressed('#toggle-mic');
    await b.page.click('#tiles'); // focus out of any control
    await b.page.keyboard.press('m');
    await waitFor(async () => (await pressed('#toggle-mic')) !== micBefore, { what: 'M toggling the mic' });
    assert.equal((await b.page.evaluate(() => window.avatarSfu.localTracks())).find((t) => t.kind === 'audio')?.enabled, micBefore === 'true', 'the mic track follows');
    await b.page.keyboard.press('v');
    await waitFor(async () => (await pressed('#toggle-cam')) === 'true', { what: 'V stopping the camera' });
    await waitFor(async () => (await a.page.getAttribute(`.tile[data-peer-id="${bId}"]`, 'data-video-muted')) === 'true', { what: "ada seeing bob's camera off" });
    await b.page.focus('#call-mic');
    await b.page.keyboard.press('m');
    await b.page.keyboard.press('v');
    assert.equal(await pressed('#toggle-cam'), 'true', 'typing V in a field does nothing');
    assert.notEqual(await pressed('#toggle-mic'), micBefore === 'true' ? 'true' : 'false', 'typing M in a field does nothing');
    await b.page.click('#tiles');
    await b.page.keyboard.press('?');
    await b.page.waitForSelector('#shortcut-help:not([hidden])');
    assert.match((await b.page.textContent('#shortcut-help')) ?? '', /M.*microphone.*V.*camera.*Shift\+L.*leave/s);
    assert.equal(await b.page.getAttribute('#toggle-mic', 'aria-keyshortcuts'), 'M');
    await b.page.keyboard.press('Shift+L');
    await b.page.waitForSelector('#join-form:not([hidden])');
    await waitFor(async () => !(await a.stats()).visibleTiles.includes(bId), { what: 'bob gone from ada' });
  });
});
