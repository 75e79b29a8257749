/**
 * Voice avatar in real browsers: page A's fake microphone plays speech alternating with silence
 * (a held-out LibriVox clip, then 2 s of silence, looped by Chromium); A joins "as voice avatar"
 * with the astronaut photo and no camera. Page B decodes A's tile, and the mouth openness measured
 * by the face model on B's frames must rise with speech and fall in the silences.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { CallPage } from '../helpers/callPage.ts';
import { waitFor, sleep } from '../helpers/wait.ts';
import { readPcm16, writeWav } from '../../models/audio2motion/data/sphinx.ts';
import { createFaceAnalyzer, decodeImage, type FaceAnalyzer } from '../../server/src/avatar/face/human-node.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const PHOTO = fileURLToPath(new URL('../fixtures/astronaut.png', import.meta.url));
const SPEECH = fileURLToPath(new URL('../fixtures/audio/librivox-0930.wav', import.meta.url));
const ROOM = 'voice e2e';

/** Inner-lip gap over the eye-corner distance (scale-free mouth openness). */
function mouthOpenness(lm: Float32Array): number {
  const p = (i: number): [number, number] => [lm[i * 3]!, lm[i * 3 + 1]!];
  const d = (a: [number, number], b: [number, number]): number => Math.hypot(a[0] - b[0], a[1] - b[1]);
  return d(p(13), p(14)) / d(p(33), p(263));
}

describe('voice avatar in headless Chromium', () => {
  let server: AvatarServer;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let analyzer: FaceAnalyzer;

  before(async () => {
    const speech = readPcm16(SPEECH);
    const loop = new Float32Array(speech.pcm.length + speech.sampleRate * 2); // speech, then 2 s of silence
    loop.set(speech.pcm);
    const wav = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-voice-')), 'speech-silence.wav');
    writeWav(wav, loop, speech.sampleRate);
    server = await startTestServer({}, { AVATAR_WORKERS: '1' });
    ({ browser: context, close: closeBrowser } = await launchChromium({ fakeAudio: wav }));
    analyzer = await createFaceAnalyzer();
  });

  after(async () => {
    analyzer?.close();
    await closeBrowser?.();
    await server?.close();
  });

  test("page B sees A's voice avatar open its mouth with A's speech and close it in the silences", async () => {
    const a = await CallPage.open(context, server.httpUrl, ROOM, 'ada');
    await a.page.check('input[name="mode"][value="voice"]');
    await a.page.setInputFiles('#photo', PHOTO);
    await a.page.click('#join');
    await a.page.waitForSelector('#call:not([hidden])', { timeout: 60_000 });
    const aId = (await a.stats()).peerId!;
    const aVideo = await a.page.evaluate(() => window.avatarSfu.client()?.sendPeerConnection?.getSenders().filter((s) => s.track?.kind === 'video').length ?? 0);
    assert.equal(aVideo, 0, 'A sends no video');
    const b = await CallPage.open(context, server.httpUrl, ROOM, 'bob');
    await b.join();
    await waitFor(async () => ((await b.tile(aId))?.framesDecoded ?? 0) > 20, { timeoutMs: 30_000, what: "B decoding A's voice avatar" });
    const rate = (await b.decodeRates(1000)).get(aId);
    assert.ok((rate?.audioBytesPerS ?? 0) > 500, "B hears A (the avatar's lip-synced audio)");
    const groups = await b.syncGroups(aId);
    assert.ok(groups['audio']?.length === 1 && groups['video']?.length === 1 && groups['audio'][0] !== '?' && groups['audio'][0] === groups['video'][0], `one sync group for A's voice and avatar video: ${JSON.stringify(groups)}`);

    // Grab frames first (the face model is slower than real time here), then measure them.
    const pngs: Uint8Array[] = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 11_000) {
      const png = await b.grabTile(aId);
      if (png) pngs.push(png);
      await sleep(80);
    }
    // Lip sync at B: the NTP instants (the sender's clock, from the SFU's sender reports) of the audio
    // and of the video B plays out at the same moment. libwebrtc aligns them from the sender reports; a
    // wrong report clock (werift's whole-second NTP times) made them drift hundreds of ms apart.
    // libwebrtc moves its A/V delays a little at a time. Debian's Chromium 156 (Dec 2026) starts
    // 100–220 ms apart and then either settles within ±35 ms in 2–6 s or keeps swinging by up to
    // ±100 ms (seen in full-suite runs, also on the commit before this session's changes; the earlier
    // Chromium settled at −12…−27 ms). So: sample ~9 s, judge the median of the last 3 s, and bound
    // it at 120 ms. That still catches the whole-second sender-report clock (errors up to 1 s, seen
    // drifting 118 → 242 ms), not a 40 ms regression: bench voice's av_offset_ms is the fine measure.
    // A full-suite run also saw it still coming down at the end of the 9 s (−26 → 246 → 103…141 ms),
    // so while the last 3 s are not within the bound, sampling goes on for up to 9 s more.
    const syncErrors: number[] = [];
    const lastMedian = (): number | undefined => {
      const last = syncErrors.slice(-20);
      return [...last].sort((x, y) => x - y)[Math.floor(last.length / 2)];
    };
    for (let i = 0; i < 120; i++) {
      if (i >= 60 && Math.abs(lastMedian() ?? Infinity) <= 120) break;
      const e = await b.page.evaluate(async () => {
        const report = await window.avatarSfu.client()?.receivePeerConnection?.getStats();
        const playout: Record<string, number> = {};
        report?.forEach((s: { type: string; kind?: string; estimatedPlayoutTimestamp?: number }) => {
          if (s.type === 'inbound-rtp' && s.kind && s.estimatedPlayoutTimestamp) playout[s.kind] = s.estimatedPlayoutTimestamp;
        });
        return playout['audio'] !== undefined && playout['video'] !== undefined ? playout['audio'] - playout['video'] : null;
      });
      if (e !== null) syncErrors.push(e);
      await sleep(150);
    }
    const syncMedian = lastMedian();
    process.stdout.write(`# B's playout, audio minus video (sender clock): median of the last 3 s ${syncMedian?.toFixed(0)} ms; all: ${syncErrors.map((x) => x.toFixed(0)).join(' ')}\n`);
    assert.ok(syncErrors.length >= 40, `B reports playout timestamps for A's audio and video (${syncErrors.length})`);
    assert.ok(Math.abs(syncMedian!) <= 120, `B plays A's voice and lips within 120 ms of each other once settled (${syncMedian!.toFixed(0)} ms)`);

    const openness: number[] = [];
    for (const png of pngs) {
      const img = decodeImage(png);
      const face = (await analyzer.detect(img.data, img.width, img.height))[0];
      if (face) openness.push(mouthOpenness(face.landmarks));
    }
    process.stdout.write(`# ${pngs.length} frames grabbed, a face in ${openness.length}\n`);
    assert.ok(openness.length >= 30, `enough analysed frames (${openness.length})`);
    const sorted = [...openness].sort((x, y) => x - y);
    const q = (f: number): number => sorted[Math.floor(f * (sorted.length - 1))]!;
    const closed = q(0.15);
    const open = q(0.85);
    process.stdout.write(`# mouth openness: 15th pct ${closed.toFixed(3)}, 85th pct ${open.toFixed(3)}, n=${openness.length}\n`);
    // The photo's resting mouth measures ≈ 0.1 here; speech must open it by at least 15 % of that.
    // Seen: 0.021–0.023 on loaded CI runs whose mouth did move; 0.044 for the Firefox owner run alone;
    // the earlier bound of a quarter (0.025) failed CI runs whose mouth did move.
    assert.ok(open - closed > 0.015, `the mouth opens and closes (spread ${(open - closed).toFixed(3)})`);
    const closedShare = openness.filter((o) => o < closed + 0.25 * (open - closed)).length / openness.length;
    assert.ok(closedShare > 0.2, `the mouth is closed in the silences (${(closedShare * 100).toFixed(0)} % of frames)`);
  });
});
