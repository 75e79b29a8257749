/**
 * Network cut in Chromium: page B runs in a network namespace of its own, joined to the server's by a
 * veth pair (test/helpers/cutNetwork.ts); page A stays on loopback. B's link goes down for 5 s: the
 * call resumes without user action, A's tile of B shows "reconnecting" and then B's video again, and
 * B is never a second participant. Prints the time from link-up to B's video decoding again on A.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { CallPage } from '../helpers/callPage.ts';
import { waitFor, sleep } from '../helpers/wait.ts';
import { createCutNetwork, type CutNetwork } from '../helpers/cutNetwork.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const ROOM = 'cut';
const CUT_MS = 5000;

async function framesOf(page: CallPage, peerId: string): Promise<number> {
  return (await page.tile(peerId))?.framesDecoded ?? 0;
}

function tileConnection(page: Page, peerId: string): Promise<string | null> {
  return page.evaluate((id) => document.querySelector<HTMLElement>(`#tiles .tile[data-peer-id="${id}"]`)?.dataset['connection'] ?? null, peerId);
}

describe('a network cut in Chromium', () => {
  let server: AvatarServer;
  let net: CutNetwork;
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    net = createCutNetwork();
    server = await startTestServer({}, { HOST: '0.0.0.0', RTC_LISTEN_IP: '', RTC_ANNOUNCED_IP: '127.0.0.1', RECONNECT_GRACE_MS: '20000' });
  });
  after(async () => {
    for (const c of closers) await c();
    await server?.close();
    net?.close();
  });

  test('a page whose link is down for 5 s comes back by itself: the other page sees it reconnecting, then its video again, and never twice', async () => {
    const port = new URL(server.httpUrl).port;
    const a: { browser: BrowserContext; close: () => Promise<void> } = await launchChromium();
    closers.push(a.close);
    const bOrigin = `http://${net.hostIp}:${port}`;
    const b = await launchChromium({ executablePath: net.chromium, extraArgs: [`--unsafely-treat-insecure-origin-as-secure=${bOrigin}`] });
    closers.push(b.close);
    const pageA = await CallPage.open(a.browser, `http://127.0.0.1:${port}`, ROOM, 'ada');
    const idA = await pageA.join();
    const pageB = await CallPage.open(b.browser, bOrigin, ROOM, 'bob');
    const idB = await pageB.join();
    for (const p of [pageA, pageB]) p.page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.log(`[${p.name} console] ${m.text()}`); });
    await waitFor(async () => (await framesOf(pageA, idB)) > 10, { timeoutMs: 20_000, what: 'A decoding B' });
    await waitFor(async () => (await framesOf(pageB, idA)) > 10, { timeoutMs: 20_000, what: 'B decoding A' });

    // Watch A's tile of B from inside the page: every connection state it shows.
    await pageA.page.evaluate((id) => {
      const seen: string[] = [];
      (window as unknown as { seenConnection: string[] }).seenConnection = seen;
      setInterval(() => {
        const el = document.querySelector<HTMLElement>(`#tiles .tile[data-peer-id="${id}"]`);
        const s = el ? el.dataset['connection'] ?? 'connected' : 'gone';
        if (seen[seen.length - 1] !== s) seen.push(s);
      }, 50);
    }, idB);

    net.down();
    await sleep(CUT_MS);
    const frozenAt = await framesOf(pageA, idB);
    const upAt = Date.now();
    net.up();
    // Video from B decodes again on A: frames counted on A's current tile of B keep rising.
    let resumedAt = 0;
    await waitFor(async () => {
      const f = await framesOf(pageA, idB);
      const s = await pageA.stats();
      const tile = s.tiles.find((t) => t.peerId === idB);
      if (tile && (f > frozenAt + 5 || (f > 5 && f < frozenAt))) {
        resumedAt ||= Date.now();
        return (await tileConnection(pageA.page, idB)) === null;
      }
      return false;
    }, { timeoutMs: 30_000, intervalMs: 100, what: 'A decoding B again after the cut' });
    const recoveryMs = resumedAt - upAt;
    console.log(`network cut: ${CUT_MS} ms down; B's video decoding again on A ${recoveryMs} ms after link-up`);

    const seen = await pageA.page.evaluate(() => (window as unknown as { seenConnection: string[] }).seenConnection);
    assert.ok(seen.includes('reconnecting'), `A's tile of B showed "reconnecting" (states seen: ${seen.join(' → ')})`);
    assert.equal(seen[seen.length - 1], 'connected', `and then connected (${seen.join(' → ')})`);
    assert.ok(!seen.includes('gone'), `B's tile never went away on A (${seen.join(' → ')})`);
    const stats = await pageA.stats();
    assert.deepEqual(stats.visibleTiles, [idB], 'one tile of B on A, no duplicate participant');
    assert.equal(server.rooms.rooms.get(ROOM)?.participants.length, 2);
    assert.equal((await pageB.stats()).peerId, idB, 'B is still the same peer');
    await waitFor(async () => (await framesOf(pageB, idA)) > 0, { what: 'B decoding A again' });
    assert.deepEqual(pageA.errors, []);
    assert.deepEqual(pageB.errors, []);
  });
});
