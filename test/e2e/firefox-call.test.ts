/**
 * Firefox end-to-end: a room mixing one Firefox ESR page (puppeteer-core over WebDriver BiDi) and two
 * Chromium pages (playwright-core), real server and werift SFU, fake cameras and microphones.
 * npm test runs this file in its own network namespace with a veth pair (test/helpers/firefoxNetwork.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext } from 'playwright-core';
import type { Browser } from 'puppeteer-core';
import { startTestServer } from '../helpers/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { CallPage } from '../helpers/callPage.ts';
import { FirefoxCallPage, launchFirefox } from '../helpers/firefox.ts';
import { FIREFOX_NET } from '../helpers/firefoxNetwork.ts';
import { waitFor } from '../helpers/wait.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const ROOM = 'mixed browsers';
type AnyPage = CallPage | FirefoxCallPage;

async function decodesAll(page: AnyPage, peerIds: string[], what: string): Promise<void> {
  let last = '';
  await waitFor(
    async () => {
      const s = await page.stats();
      last = JSON.stringify(s.tiles.map((t) => [t.displayName, t.framesDecoded, t.audioBytes]));
      return peerIds.every((id) => {
        const t = s.tiles.find((x) => x.peerId === id);
        return t && t.framesDecoded > 5 && t.audioBytes > 1000;
      });
    },
    { timeoutMs: 40_000, what: `${page.name} decoding ${what}` },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; tiles [name, frames, audio bytes]: ${last}`);
  });
  const rates = await page.decodeRates(2000);
  for (const id of peerIds) {
    const r = rates.get(id);
    assert.ok(r, `${page.name} has stats for ${id}`);
    assert.ok(r.fps >= 3, `${page.name} decodes ${id} at ${r.fps.toFixed(1)} fps`);
    assert.ok(r.audioBytesPerS > 200, `${page.name} receives ${id}'s audio (${r.audioBytesPerS.toFixed(0)} B/s)`);
  }
}

describe('a call mixing Firefox and Chromium through the SFU', () => {
  let server: AvatarServer;
  let chromium: BrowserContext;
  let firefox: Browser;
  const closers: (() => Promise<void>)[] = [];
  const pages: AnyPage[] = [];
  const ids: string[] = [];

  before(async () => {
    server = await startTestServer({}, { RTC_LISTEN_IP: FIREFOX_NET.hostIp, RTC_ANNOUNCED_IP: FIREFOX_NET.hostIp });
    const c = await launchChromium();
    chromium = c.browser;
    closers.push(c.close);
    const f = await launchFirefox();
    firefox = f.browser;
    closers.push(f.close);
  });

  after(async () => {
    for (const close of closers) await close();
    await server?.close();
  });

  test("one Firefox page and two Chromium pages in a room each decode the other two pages' video and receive their audio", async () => {
    pages.push(await FirefoxCallPage.open(firefox, server.httpUrl, ROOM, 'fox'));
    pages.push(await CallPage.open(chromium, server.httpUrl, ROOM, 'ada'));
    pages.push(await CallPage.open(chromium, server.httpUrl, ROOM, 'bob'));
    for (const p of pages) ids.push(await p.join());
    for (let i = 0; i < pages.length; i++) await decodesAll(pages[i]!, ids.filter((_, j) => j !== i), 'the other two');
    for (const p of pages) assert.deepEqual(p.errors, [], `${p.name} has no page errors`);
  });

  test("the Firefox page stops its camera and the others see the badge; it starts it again and they decode it; it leaves and the others drop its tile", async () => {
    const [fox, ada, bob] = pages as [FirefoxCallPage, CallPage, CallPage];
    const badge = (p: CallPage): Promise<boolean> => p.page.evaluate((id) => document.querySelector<HTMLElement>(`.tile[data-peer-id="${id}"]`)?.dataset['videoMuted'] === 'true', ids[0]!);
    await fox.page.click('#toggle-cam');
    await waitFor(() => badge(ada), { timeoutMs: 10_000, what: "ada sees fox's camera off" });
    await fox.page.click('#toggle-cam');
    await waitFor(async () => !(await badge(ada)), { timeoutMs: 10_000, what: "ada sees fox's camera back" });
    await decodesAll(ada, [ids[0]!], "fox's camera after it started again");
    await fox.leave();
    for (const p of [ada, bob]) await waitFor(async () => !(await p.stats()).visibleTiles.includes(ids[0]!), { what: `${p.name} dropping fox` });
    assert.deepEqual(fox.errors, [], 'fox has no page errors');
  });
});
