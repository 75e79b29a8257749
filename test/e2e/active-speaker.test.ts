/**
 * Active speaker on the real call page: page A's fake microphone plays a speech WAV, page B's plays
 * silence (two Chromium instances, one fake-audio file each). The SFU reads the RFC 6464 audio levels
 * of their packets; A's tile is highlighted (.active-speaker) on both pages and B's never. When A
 * mutes it is no longer the speaker; when A unmutes it is again on every page within 1 s.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer } from '../helpers/server.ts';
import { writeSilenceWav } from '../helpers/silenceWav.ts';
import { launchChromium } from '../helpers/browser.ts';
import { CallPage } from '../helpers/callPage.ts';
import { waitFor } from '../helpers/wait.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const SPEECH = fileURLToPath(new URL('../fixtures/audio/librivox-0930.wav', import.meta.url));
const ROOM = 'speaker room';


/** Records, in the page, every change of which tiles carry .active-speaker (Date.now(), shared with the test's clock). */
async function watchSpeaker(page: CallPage): Promise<void> {
  // A string, not a function: the test's TypeScript loader would wrap named inner functions in a helper the page lacks.
  await page.page.evaluate(`(() => {
    window.__speakerLog = [];
    const snapshot = () => {
      const peers = [...document.querySelectorAll('#tiles .tile.active-speaker')].map((el) => el.dataset.peerId ?? '?');
      const last = window.__speakerLog[window.__speakerLog.length - 1];
      if (!last || last.peers.join() !== peers.join()) window.__speakerLog.push({ at: Date.now(), peers });
    };
    snapshot();
    new MutationObserver(snapshot).observe(document.getElementById('tiles'), { subtree: true, childList: true, attributes: true, attributeFilter: ['class'] });
  })()`);
}

function speakerLog(page: CallPage): Promise<{ at: number; peers: string[] }[]> {
  return page.page.evaluate(() => (window as unknown as { __speakerLog: { at: number; peers: string[] }[] }).__speakerLog);
}

function shownSpeakers(page: CallPage): Promise<string[]> {
  return page.page.$$eval('#tiles .tile.active-speaker', (els) => els.map((el) => (el as HTMLElement).dataset['peerId'] ?? '?'));
}

describe('active speaker on the call page', () => {
  let server: AvatarServer;
  let tmp: string;
  const closers: (() => Promise<void>)[] = [];
  let a: CallPage;
  let b: CallPage;
  let aId: string;
  let bId: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-speaker-'));
    const silence = path.join(tmp, 'silence.wav');
    writeSilenceWav(silence, 3);
    server = await startTestServer();
    const speaking = await launchChromium({ fakeAudio: SPEECH });
    const silent = await launchChromium({ fakeAudio: silence });
    closers.push(speaking.close, silent.close);
    b = await CallPage.open(silent.browser, server.httpUrl, ROOM, 'Bob', { width: 160, height: 120, fps: 10 });
    bId = await b.join();
    a = await CallPage.open(speaking.browser, server.httpUrl, ROOM, 'Ada', { width: 160, height: 120, fps: 10 });
    aId = await a.join();
    await watchSpeaker(a);
    await watchSpeaker(b);
  });

  after(async () => {
    for (const close of closers) await close().catch(() => undefined);
    await server?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('the speaking page A is the active speaker on both pages, the silent page B never is', async () => {
    for (const page of [a, b]) {
      await waitFor(async () => (await shownSpeakers(page)).join() === aId || undefined, { timeoutMs: 10_000, what: `${page.name} highlighting A` });
    }
    await new Promise((r) => setTimeout(r, 2000));
    for (const page of [a, b]) {
      assert.deepEqual(await shownSpeakers(page), [aId], `${page.name} still highlights only A`);
      assert.ok(!(await speakerLog(page)).some((e) => e.peers.includes(bId)), `${page.name} never highlighted the silent B`);
    }
  });

  test('A muting clears the highlight everywhere; A unmuting makes it the active speaker on every page within 1 s', async () => {
    await a.page.click('#toggle-mic');
    for (const page of [a, b]) await waitFor(async () => (await shownSpeakers(page)).length === 0 || undefined, { timeoutMs: 5000, what: `${page.name} clearing the highlight after A muted` });
    await new Promise((r) => setTimeout(r, 1000));
    const latencies: number[] = [];
    for (let round = 0; round < 3; round++) {
      const t0 = Date.now();
      await a.page.click('#toggle-mic'); // unmute: speech flows again
      for (const page of [a, b]) {
        await waitFor(async () => (await shownSpeakers(page)).join() === aId || undefined, { timeoutMs: 5000, what: `${page.name} highlighting A after the unmute` });
        const shown = (await speakerLog(page)).find((e) => e.at >= t0 && e.peers.join() === aId);
        assert.ok(shown, `${page.name} logged the change`);
        latencies.push(shown.at - t0);
      }
      await a.page.click('#toggle-mic'); // mute again for the next round
      for (const page of [a, b]) await waitFor(async () => (await shownSpeakers(page)).length === 0 || undefined, { timeoutMs: 5000, what: `${page.name} clearing the highlight` });
      await new Promise((r) => setTimeout(r, 500));
    }
    console.log(`active speaker shown ${latencies.map((l) => `${l} ms`).join(', ')} after A unmuted (A's page, B's page per round)`);
    for (const l of latencies) assert.ok(l < 1000, `A highlighted ${l} ms after it started speaking (bound 1000 ms)`);
  });
});
