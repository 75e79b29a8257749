/**
 * Browser face tracker end to end: headless Chromium's fake camera plays a rendered driving clip
 * (test/helpers/drivingVideo.ts: astronaut photo, yaw ±20°, nodding, mouth open/close, blinks,
 * frame index stamped in the corner) to FaceTracker (client/src/avatar/FaceTracker.ts) loaded
 * through loadFaceTracker()'s lazy chunk, with Human's models and the tfjs wasm binaries served
 * by createVendorRouter() (server/src/http/vendorAssets.ts) — nothing from a CDN.
 *
 * Each analysed frame's clip index is read from its own pixels (same capture callback), so the
 * tracker's output is compared with the exact ground truth, whatever the fake camera's timing.
 *
 * Runs in a loopback-only network namespace under `npm test` (or:
 *   unshare -n sh -c 'ip link set lo up && exec "$@"' sh node --import tsx --test test/e2e/face-tracker.test.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { build } from 'esbuild';
import type { BrowserContext, Page } from 'playwright-core';
import { createVendorRouter } from '../../server/src/http/vendorAssets.ts';
import { launchChromium } from '../helpers/browser.ts';
import { makeDrivingVideo, type DrivingVideo } from '../helpers/drivingVideo.ts';
import { MOTION_MAX_BYTES } from '../../protocol/src/motion.ts';
import { EXPR } from '../../models/face/expression-code.ts';
import type { BackendSelection } from '../../client/src/avatar/loadFaceTracker.ts';
import type { TrackResult, TrackedFrame } from './face-tracker.page.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TRACK_MS = 10_000;
/** Pearson correlation with the ground truth that yaw and jawOpen must reach */
const MIN_CORRELATION = 0.7;

function pearson(a: number[], b: number[]): number {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n, mb = b.reduce((s, x) => s + x, 0) / n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i]! - ma) * (b[i]! - mb);
    saa += (a[i]! - ma) ** 2;
    sbb += (b[i]! - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

function std(a: number[]): number {
  const m = a.reduce((s, x) => s + x, 0) / a.length;
  return Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / a.length);
}

/** The clip-frame shift (−3..3) at which `values` correlate best with the ground truth series. */
function bestShift(frames: TrackedFrame[], values: number[], truth: number[]): { shift: number; r: number } {
  let best = { shift: 0, r: -Infinity };
  const n = truth.length;
  for (let s = -3; s <= 3; s++) {
    const r = pearson(values, frames.map((f) => truth[(((f.clipFrame! + s) % n) + n) % n]!));
    if (r > best.r) best = { shift: s, r };
  }
  return best;
}

describe('browser FaceTracker on a rendered driving clip', () => {
  let clip: DrivingVideo;
  let pageDir: string;
  let server: http.Server;
  let baseUrl: string;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let page: Page;
  const requests: string[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    clip = await makeDrivingVideo({ frames: 180, fps: 30, size: 480 });
    // a tiny page bundled like the client (ESM + splitting): the tracker is a lazy chunk
    pageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-face-page-'));
    await build({
      entryPoints: { page: path.join(root, 'test/e2e/face-tracker.page.ts') },
      outdir: pageDir,
      entryNames: '[name]',
      chunkNames: 'chunks/[name]-[hash]',
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'browser',
      target: ['chrome100'],
      minify: true,
      logLevel: 'warning',
    });
    fs.writeFileSync(path.join(pageDir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>face tracker test</title><link rel="icon" href="data:,"><script type="module" src="page.js"></script>');
    const app = express();
    app.use(createVendorRouter());
    app.use(express.static(pageDir));
    server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    ({ browser: context, close: closeBrowser } = await launchChromium({ fakeVideo: clip.path }));
    page = await context.newPage();
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await closeBrowser?.();
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    if (pageDir) fs.rmSync(pageDir, { recursive: true, force: true });
  });

  test('vendor router: models and wasm with the right types and long caching, JSON 404 for anything else', async () => {
    const wasm = await fetch(`${baseUrl}/vendor/tfjs-wasm/tfjs-backend-wasm-simd.wasm`);
    assert.equal(wasm.status, 200);
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    assert.match(wasm.headers.get('cache-control') ?? '', /max-age=31536000/);
    const bytes = new Uint8Array(await wasm.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d], 'a wasm module');
    const json = await fetch(`${baseUrl}/vendor/human/models/facemesh.json`);
    assert.equal(json.status, 200);
    assert.match(json.headers.get('content-type') ?? '', /^application\/json/);
    const etag = json.headers.get('etag');
    assert.ok(etag);
    assert.equal((await fetch(`${baseUrl}/vendor/human/models/facemesh.json`, { headers: { 'if-none-match': etag } })).status, 304);
    const bin = await fetch(`${baseUrl}/vendor/human/models/facemesh.bin`, { method: 'HEAD' });
    assert.equal(bin.status, 200);
    assert.equal(bin.headers.get('content-type'), 'application/octet-stream');
    assert.ok(Number(bin.headers.get('content-length')) > 1e6);
    for (const p of [
      '/vendor/human/models/', '/vendor/human/models', '/vendor/tfjs-wasm/', '/vendor/', '/vendor/human/models/nope.json',
      '/vendor/human/models/README.md', '/vendor/tfjs-wasm/tf-backend-wasm.js', '/vendor/human/models/..%2Fpackage.json',
      '/vendor/human/models/%2e%2e%2f%2e%2e%2fpackage.json', '/vendor/tfjs-wasm/.hidden.wasm',
    ]) {
      const r = await fetch(baseUrl + p);
      assert.equal(r.status, 404, p);
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/, p);
      const body = (await r.json()) as { error: { status: number } };
      assert.equal(body.error.status, 404, p);
    }
  });

  test('tracks yaw and jawOpen of the clip; frames fit the wire format; no face → no frames', async (t) => {
    await page.goto(`${baseUrl}/`);
    await page.waitForFunction('window.faceTest && window.faceTest.ready');
    const beforeLoad = requests.length;
    const selection = (await page.evaluate('faceTest.load("auto")')) as BackendSelection;
    const chunkRequests = requests.slice(beforeLoad).filter((u) => u.includes('/chunks/'));
    assert.ok(chunkRequests.length >= 1, 'the tracker arrives as a lazily loaded chunk');
    t.diagnostic(`backend ${selection.backend} (${selection.reason}; renderer ${selection.webglRenderer}); engine ready in ${selection.loadMs} ms; warm-up detect ${JSON.stringify(selection.benchmarkMs)} ms`);

    const res = (await page.evaluate(`faceTest.track(${TRACK_MS})`)) as TrackResult;
    const { frames, stats } = res;
    t.diagnostic(`tracker: ${stats.fps.toFixed(1)} fps analysed of ${stats.cameraFps.toFixed(1)} camera fps, detect p50 ${stats.detectMsP50.toFixed(1)} ms p95 ${stats.detectMsP95.toFixed(1)} ms, face in ${(stats.faceFoundRatio * 100).toFixed(1)} % of ${stats.framesAnalysed} analysed frames, ${stats.framesDropped} camera frames dropped (busy)`);
    assert.ok(stats.framesAnalysed >= 30, `analysed ${stats.framesAnalysed} frames in ${TRACK_MS} ms`);
    assert.ok(stats.faceFoundRatio >= 0.9, `face found in ${(stats.faceFoundRatio * 100).toFixed(1)} % of analysed frames`);
    assert.equal(stats.errors, 0);
    assert.ok(stats.calibrated, 'neutral reference calibrated automatically');
    assert.ok(Math.abs(stats.tensors - res.midStats.tensors) <= 2, `no tensor leak (${res.midStats.tensors} → ${stats.tensors})`);
    assert.equal(frames.length, stats.motionFramesEmitted);

    // wire format: every frame encodes to ≤ 38 bytes and decodes back; seq counts up; time moves on
    const maxBytes = Math.max(...frames.map((f) => f.bytes));
    assert.ok(maxBytes <= MOTION_MAX_BYTES, `largest encoded frame ${maxBytes} bytes`);
    assert.ok(frames.every((f) => f.roundTripOk), 'every frame round-trips through decodeMotionFrame');
    frames.forEach((f, i) => assert.equal(f.seq, i, 'seq counts emitted frames'));
    for (let i = 1; i < frames.length; i++) assert.ok(((frames[i]!.captureMs - frames[i - 1]!.captureMs) | 0) > 0, 'captureMs increases');

    // compare with the ground truth of the exact clip frame each analysis saw
    const coded = frames.filter((f) => f.clipFrame !== null && f.clipFrame < clip.frames);
    assert.ok(coded.length >= 0.95 * frames.length, `frame index readable in ${coded.length}/${frames.length} frames`);
    const gtYaw = clip.groundTruth.map((g) => g.pose.yaw);
    const gtJaw = clip.groundTruth.map((g) => g.expression[EXPR.jawOpen]!);
    const truthAt = (series: number[]) => coded.map((f) => series[f.clipFrame!]!);
    const yaw = coded.map((f) => f.yaw), jaw = coded.map((f) => f.expression[EXPR.jawOpen]!);
    const rYaw = pearson(yaw, truthAt(gtYaw)), rJaw = pearson(jaw, truthAt(gtJaw));
    const rYawRaw = pearson(coded.map((f) => f.rawYaw), truthAt(gtYaw));
    const rJawRaw = pearson(coded.map((f) => f.rawExpression[EXPR.jawOpen]!), truthAt(gtJaw));
    t.diagnostic(`Pearson r vs ground truth: yaw ${rYaw.toFixed(3)} (unsmoothed ${rYawRaw.toFixed(3)}), jawOpen ${rJaw.toFixed(3)} (unsmoothed ${rJawRaw.toFixed(3)}) over ${coded.length} frames`);
    assert.ok(rYaw >= MIN_CORRELATION, `yaw correlation ${rYaw.toFixed(3)}`);
    assert.ok(rJaw >= MIN_CORRELATION, `jawOpen correlation ${rJaw.toFixed(3)}`);

    // smoothing: at most one frame of added lag, and less jitter while the face holds still
    const lagYaw = bestShift(coded, yaw, gtYaw).shift - bestShift(coded, coded.map((f) => f.rawYaw), gtYaw).shift;
    const lagJaw = bestShift(coded, jaw, gtJaw).shift - bestShift(coded, coded.map((f) => f.rawExpression[EXPR.jawOpen]!), gtJaw).shift;
    t.diagnostic(`lag added by smoothing (clip frames at ${clip.fps} fps): yaw ${-lagYaw}, jawOpen ${-lagJaw}`);
    assert.ok(Math.abs(lagYaw) <= 1 && Math.abs(lagJaw) <= 1, `smoothing lag yaw ${-lagYaw}, jaw ${-lagJaw} frames`);
    const still = coded.filter((f) => f.clipFrame! >= 3 && f.clipFrame! <= 27 && !f.calibrating);
    if (still.length >= 8) {
      const sRaw = std(still.map((f) => f.rawYaw)), sFilt = std(still.map((f) => f.yaw));
      t.diagnostic(`still face (${still.length} frames): yaw jitter ${(sRaw * 180 / Math.PI).toFixed(3)}° raw → ${(sFilt * 180 / Math.PI).toFixed(3)}° smoothed`);
      // floor 1e-3 rad (0.06°): when the raw yaw happens to be exactly constant over the window, the
      // filter still settles from the frames before it by a few hundredths of a degree (0.02–0.03°
      // measured, also on the code before the tracker was split); that is a trend, not jitter
      assert.ok(sFilt <= sRaw * 1.05 + 1e-3, 'smoothing does not add jitter');
    }

    // no face: nothing is emitted
    const none = (await page.evaluate('faceTest.trackNoFace(2000)')) as { motionFrames: number; faceEvents: boolean[]; stats: { framesAnalysed: number } };
    assert.ok(none.stats.framesAnalysed >= 3, `analysed ${none.stats.framesAnalysed} face-less frames`);
    assert.equal(none.motionFrames, 0, 'no motion frames without a face');
    assert.ok(!none.faceEvents.includes(true), 'no face reported');

    const foreign = requests.filter((u) => !u.startsWith(baseUrl) && !u.startsWith('data:'));
    assert.deepEqual(foreign, [], 'everything came from the test server (no CDN)');
    assert.deepEqual(pageErrors, []);
  });
});
