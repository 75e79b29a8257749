/**
 * The whole personal-avatar flow on the real call page, in Chromium: page A (fake camera playing a
 * rendered talking head of the astronaut photo) creates a personal avatar with the join form's
 * recorder (guide + live checks), follows its training job (progress, held-out PSNR, preview; a
 * short training configuration), finds it in "My avatars", reloads and joins as that avatar: the
 * session renders with the Gaussian head. Page B decodes A's tile: the decoded frames show the clip's
 * identity (Human's face descriptor), follow A's head motion, and the face is still found when B turns
 * its view to +40° yaw (beyond the mesh avatar's ±30°).
 *
 * Identity threshold: the cosine similarity of B's decoded frames to the clip's face (the photo
 * the clip is rendered from) must be at least SAME_FACE_MIN, and their similarity to another person
 * (Human's built-in sample face, the image its warm-up detects) must stay below it: one threshold that
 * separates the two faces on this very run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { CallPage } from '../helpers/callPage.ts';
import { makeDrivingVideo } from '../helpers/drivingVideo.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { createFaceAnalyzer, decodeImage, embeddingSimilarity, type FaceAnalyzer } from '../../server/src/avatar/face/human-node.ts';
import { RECORDING_GUIDE } from '../../client/src/avatar/recordingGuide.ts';
import { TURNTABLE_YAWS_DEG } from '../../models/gaussian/turntable.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PHOTO = path.join(root, 'test/fixtures/astronaut.png');
const ROOM = 'personal call';
/**
 * Cosine similarity (Human's faceres descriptor) above which a decoded frame is the clip's person.
 * Measured on this test (2 loaded cores, 30 training iterations): decoded Gaussian-head frames vs.
 * the clip's face 0.62, vs. Human's sample face 0.29; the mesh avatar test uses 0.5 for its renders.
 */
const SAME_FACE_MIN = 0.45;

/** Human's built-in sample face (src/sample.ts of the package, a JPEG data URL): another person. */
function otherFace(): Uint8Array {
  const src = fs.readFileSync(path.join(root, 'node_modules/@vladmandic/human/src/sample.ts'), 'utf8');
  const m = /export const face: string = `([^`]+)`/.exec(src);
  if (!m) throw new Error("Human's sample face not found");
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

describe('personal avatar on the call page: create, train, join as the Gaussian head', () => {
  let server: AvatarServer;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let analyzer: FaceAnalyzer;
  let a: Page;
  let b: CallPage;
  let aId: string;
  const aErrors: string[] = [];

  before(async () => {
    const clip = await makeDrivingVideo({ frames: 180, fps: 30, size: 480 });
    server = await startTestServer({}, {
      AVATAR_WORKERS: '1',
      // one personal-view stream (B's +40°) instead of three: less media for two loaded cores
      AVATAR_MAX_PERSONAL_VIEWS: '1',
      AVATAR_ENROLL_TIMEOUT_MS: '60000',
      AVATAR_TRAINING_ITERATIONS: '30',
      AVATAR_TRAINING_GAUSSIANS: '2000',
      AVATAR_TRAINING_SIZE: '128',
      AVATAR_TRAINING_THREADS: '1',
    });
    ({ browser: context, close: closeBrowser } = await launchChromium({ fakeVideo: clip.path }));
    analyzer = await createFaceAnalyzer({ embedding: true });
  });

  after(async () => {
    analyzer?.close();
    await closeBrowser?.();
    await server?.close();
  });

  test('the recorder shows a changing guide and live face checks, then training progress with PSNR and a preview, and "My avatars" lists the result with its score and turntable', async () => {
    a = await context.newPage();
    a.on('pageerror', (e) => aErrors.push(e.message));
    const q = new URLSearchParams({ room: ROOM, name: 'ada', w: '320', h: '240', mode: 'avatar', personalSeconds: '3', personalFps: '12' });
    await a.goto(`${server.httpUrl}/?${q}`, { timeout: 120_000 });
    await a.click('#create-personal');
    await a.waitForSelector('#personal-checks li[data-check="tracked"].ok', { timeout: 90_000 });
    // What the page showed over time: guide prompts and job states.
    await a.evaluate(() => {
      const seen = { guide: [] as string[], states: [] as string[] };
      (window as unknown as { seen: typeof seen }).seen = seen;
      const guide = document.getElementById('personal-guide')!;
      new MutationObserver(() => seen.guide.push(guide.textContent ?? '')).observe(guide, { childList: true, characterData: true, subtree: true });
      const progress = document.getElementById('personal-progress')!;
      new MutationObserver(() => seen.states.push(progress.dataset['state'] ?? '')).observe(progress, { attributes: true, attributeFilter: ['data-state'] });
    });
    await a.click('#personal-record');
    await a.waitForSelector('#personal-progress[data-state="done"], #personal-error:not([hidden])', { timeout: 300_000 });
    assert.equal(await a.isHidden('#personal-error'), true, `no error: ${await a.textContent('#personal-error')}`);
    const seen = await a.evaluate(() => (window as unknown as { seen: { guide: string[]; states: string[] } }).seen);
    const prompts = new Set(seen.guide.filter((g) => RECORDING_GUIDE.includes(g)));
    assert.ok(prompts.size >= 4, `the guide changed over the recording: ${[...prompts].join(' / ')}`);
    assert.ok(seen.states.includes('training') || seen.states.includes('preparing'), `the job's progress was shown: ${seen.states.join(', ')}`);
    assert.match((await a.textContent('#personal-psnr')) ?? '', /held-out PSNR \d+\.\d dB/);
    assert.equal(await a.evaluate(() => (document.getElementById('personal-bar') as HTMLProgressElement).value), 1);
    await waitFor(() => a.evaluate(() => (document.getElementById('personal-preview') as HTMLImageElement).naturalWidth > 0), { timeoutMs: 10_000, what: 'the preview image' });
    const saved = await a.evaluate(() => JSON.parse(localStorage.getItem('avatar-sfu.identities') ?? '[]') as { identityId: string; ownerKey?: string; trainingJobId?: string }[]);
    assert.ok(saved[0]?.ownerKey && saved[0].trainingJobId, `the identity is saved with its owner key and job: ${JSON.stringify(saved.map((s) => Object.keys(s)))}`);
    assert.ok((await server.identities.assetKinds(saved[0].identityId)).includes('gaussian-head'));
    await a.waitForSelector(`#my-avatars li[data-identity-id="${saved[0].identityId}"][data-trained="true"]`, { timeout: 10_000 });
    assert.match((await a.textContent(`#my-avatars li[data-identity-id="${saved[0].identityId}"]`)) ?? '', /personal avatar, held-out PSNR \d/);
    // its turntable: 7 square frames, yaw −45° … +45°
    const strip = await waitFor(() => a.evaluate((id) => {
      const img = document.querySelector<HTMLImageElement>(`#my-avatars li[data-identity-id="${id}"] img.turntable`);
      return img && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight] : null;
    }, saved[0]!.identityId), { timeoutMs: 10_000, what: 'the turntable preview' });
    assert.equal(strip[0], strip[1] * TURNTABLE_YAWS_DEG.length, `a strip of ${TURNTABLE_YAWS_DEG.length} square frames (${strip.join('×')})`);
  });

  test('after a reload the join form offers the personal avatar, and joining with it renders the Gaussian head (no fallback)', async () => {
    await a.reload({ timeout: 120_000 });
    await a.waitForSelector('#use-personal-label:not([hidden])', { timeout: 15_000 });
    await a.click('#join');
    await a.waitForSelector('#call:not([hidden])', { timeout: 90_000 });
    aId = (await a.evaluate(() => window.avatarSfu.client()?.peerId)) ?? '';
    assert.ok(aId);
    const avatar = await waitFor(() => {
      const p = [...(server.rooms.rooms.get(ROOM)?.participants ?? [])].find((x) => x.id === aId)?.info().avatar;
      return p?.state === 'live' ? p : undefined;
    }, { timeoutMs: 60_000, what: "A's avatar live" });
    assert.equal(avatar.generator, 'gaussian');
    assert.equal(avatar.fallback, undefined);
    assert.equal(await a.isHidden('#avatar-notice'), true, `no fallback notice: ${await a.textContent('#avatar-notice')}`);
    assert.deepEqual(aErrors, []);
  });

  test("page B decodes A's tile: the clip's identity, moving with A's head, and still a face when B turns it to +40° yaw", async () => {
    // Generous bounds: this test shares two cores with a browser tracking a face, the worker and the server.
    b = await CallPage.open(context, server.httpUrl, ROOM, 'bob', { loadTimeoutMs: 120_000 });
    await b.page.click('#join');
    await b.page.waitForSelector('#call:not([hidden])', { timeout: 90_000 });
    await waitFor(async () => ((await b.tile(aId))?.framesDecoded ?? 0) > 20, { timeoutMs: 120_000, what: "B decoding A's avatar" });
    await a.bringToFront(); // A's tracker runs at full rate only in the front page
    const grab = async (n: number, gapMs: number): Promise<Uint8Array[]> => {
      const out: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        // (right after the view switches the tile's video may have no frame for a moment)
        out.push(await waitFor(() => b.grabTile(aId), { timeoutMs: 15_000, what: "a frame of A's tile at B" }));
        await sleep(gapMs);
      }
      return out;
    };
    const analyse = async (pngs: Uint8Array[]): Promise<{ yaws: number[]; faces: Float32Array[] }> => {
      const yaws: number[] = [];
      const faces: Float32Array[] = [];
      for (const png of pngs) {
        await sleep(200); // let the server (same process) answer socket.io pings between detections
        const img = decodeImage(png);
        const found = await analyzer.detect(img.data, img.width, img.height);
        if (!found[0]) continue;
        yaws.push((found[0].angles.yaw * 180) / Math.PI);
        if (found[0].embedding) faces.push(found[0].embedding);
      }
      return { yaws, faces };
    };
    // Grab everything first, analyse afterwards: the face model runs in this process, which also hosts
    // the server, and back-to-back detections on a loaded machine outlast socket.io's ping timeout.
    const frontPngs = await grab(14, 600);
    const res = await b.page.evaluate((id) => window.avatarSfu.client()!.setAvatarView(id, 'personal', { yaw: 40, pitch: 0, roll: 0 }), aId);
    assert.equal(res.view?.yaw, 40, 'the Gaussian head turns to 40° (the mesh avatar stops at 30°)');
    await sleep(1500);
    const turnedPngs = await grab(6, 400);
    const front = await analyse(frontPngs);
    const photo = decodeImage(fs.readFileSync(PHOTO));
    const clipFace = await analyzer.embed(photo.data, photo.width, photo.height);
    const other = decodeImage(otherFace());
    const otherEmbedding = await analyzer.embed(other.data, other.width, other.height);
    assert.ok(clipFace && otherEmbedding, 'both reference faces have a descriptor');
    const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
    const same = mean(front.faces.map((f) => embeddingSimilarity(clipFace, f)));
    const different = mean(front.faces.map((f) => embeddingSimilarity(otherEmbedding, f)));
    const range = Math.max(...front.yaws) - Math.min(...front.yaws);
    process.stdout.write(`# Gaussian head at B: face in ${front.yaws.length}/14 frames, cosine to the clip's face ${same.toFixed(3)}, to another face ${different.toFixed(3)}, yaw range ${range.toFixed(1)}°\n`);
    assert.ok(front.yaws.length >= 10, `a face is found in B's frames of A (${front.yaws.length}/14)`);
    assert.ok(same >= SAME_FACE_MIN, `the face is the clip's identity (cosine ${same.toFixed(3)} < ${SAME_FACE_MIN})`);
    assert.ok(different < SAME_FACE_MIN, `another person's face stays below the threshold (cosine ${different.toFixed(3)})`);
    // The clip turns ±20°; without motion the avatar idles within ±1.7°: the range can only come from A's face.
    assert.ok(range >= 6, `the head turns with A's (yaw range ${range.toFixed(1)}°: ${front.yaws.map((y) => y.toFixed(0)).join(', ')})`);

    const turned = await analyse(turnedPngs);
    process.stdout.write(`# turned to +40°: face in ${turned.yaws.length}/6 frames, yaw ${turned.yaws.map((y) => y.toFixed(0)).join(', ')}\n`);
    assert.ok(turned.yaws.length >= 4, `the face is still found at +40° (${turned.yaws.length}/6)`);
    assert.ok(Math.abs(mean(turned.yaws) - mean(front.yaws)) >= 15, `the view turned (mean yaw ${mean(front.yaws).toFixed(0)}° → ${mean(turned.yaws).toFixed(0)}°)`);
  });

  test('an uploaded video file too long, or without a face, is refused in the page with a clear error, and nothing is uploaded', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-personal-file-'));
    try {
      // grey frames (no face), VP8 in WebM: a format Chromium's <video> decodes
      const clip = (seconds: number): string => {
        const file = path.join(dir, `grey-${seconds}s.webm`);
        execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', `color=c=gray:s=320x240:r=15:d=${seconds}`, '-c:v', 'libvpx', '-b:v', '200k', file]);
        return file;
      };
      const jobsBefore = (await trainingJobIds()).size;
      const c = await context.newPage();
      await c.goto(`${server.httpUrl}/?mode=avatar&personalFps=8`, { timeout: 120_000 });
      await c.click('#create-personal');
      await c.setInputFiles('#personal-file', clip(20));
      await c.waitForSelector('#personal-error:not([hidden])', { timeout: 30_000 });
      assert.match((await c.textContent('#personal-error')) ?? '', /20\.\d s long; use one of at most 15 s/);
      await c.setInputFiles('#personal-file', clip(2));
      await c.waitForFunction(() => /No face was found/.test(document.getElementById('personal-error')?.textContent ?? ''), undefined, { timeout: 120_000 });
      assert.equal((await trainingJobIds()).size, jobsBefore, 'no training job was created');
      await c.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  /** Every training job on the server (of every enrolled identity). */
  async function trainingJobIds(): Promise<Set<string>> {
    const ids = new Set<string>();
    for (const dir of await fs.promises.readdir(path.join(server.config.avatar.dataDir, 'identities')).catch(() => [] as string[])) {
      for (const j of server.training.list(dir)) ids.add(j.id);
    }
    return ids;
  }
});
