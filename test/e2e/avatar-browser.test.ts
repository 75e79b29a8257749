/**
 * Keypoint avatar in real browsers: page A (fake camera playing a rendered talking-head clip) joins
 * "as avatar" with the astronaut photo; its browser tracks the face and sends only motion + audio.
 * Page B must decode A's tile, showing the photo's identity moving with A's face. Then the worker
 * rendering A is killed and B's tile must recover.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import type { BrowserContext } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { CallPage } from '../helpers/callPage.ts';
import { waitFor, sleep } from '../helpers/wait.ts';
import { makeDrivingVideo } from '../helpers/drivingVideo.ts';
import { createFaceAnalyzer, decodeImage, embeddingSimilarity, type FaceAnalyzer } from '../../server/src/avatar/face/human-node.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const PHOTO = fileURLToPath(new URL('../fixtures/astronaut.png', import.meta.url));
const ROOM = 'avatar e2e';

describe('keypoint avatar in headless Chromium', () => {
  let server: AvatarServer;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let analyzer: FaceAnalyzer;
  let a: CallPage;
  let b: CallPage;
  let aId: string;

  before(async () => {
    const clip = await makeDrivingVideo({ size: 320, frames: 180 });
    server = await startTestServer({}, { AVATAR_WORKERS: '1' });
    ({ browser: context, close: closeBrowser } = await launchChromium({ fakeVideo: clip.path }));
    analyzer = await createFaceAnalyzer({ embedding: true });
  });

  after(async () => {
    analyzer?.close();
    await closeBrowser?.();
    await server?.close();
  });

  test("page A joins as an avatar and page B decodes A's tile: the photo's face, moving with A's face; A sends no video", async () => {
    a = await CallPage.open(context, server.httpUrl, ROOM, 'ada');
    await a.page.check('input[name="mode"][value="avatar"]');
    await a.page.setInputFiles('#photo', PHOTO);
    await a.page.click('#join');
    await a.page.waitForSelector('#call:not([hidden])', { timeout: 60_000 });
    aId = (await a.stats()).peerId!;
    b = await CallPage.open(context, server.httpUrl, ROOM, 'bob');
    await b.join();
    await waitFor(async () => ((await b.tile(aId))?.framesDecoded ?? 0) > 20, { timeoutMs: 30_000, what: "B decoding A's avatar" });
    const rate = (await b.decodeRates(2000)).get(aId);
    assert.ok(rate && rate.fps >= 10, `B decodes A's avatar at ${rate?.fps.toFixed(1)} fps`);
    assert.ok((rate?.audioBytesPerS ?? 0) > 500, "B hears A's microphone");
    // A keypoint avatar's video is not lip-synced with A's microphone (it would only wait for the audio's jitter buffer).
    const groups = await b.syncGroups(aId);
    assert.ok(groups['audio']?.length === 1 && groups['video']?.length === 1 && groups['audio'][0] !== groups['video'][0], `separate sync groups for A's audio and avatar video: ${JSON.stringify(groups)}`);

    const aVideoOut = await a.page.evaluate(async () => {
      const pc = window.avatarSfu.client()?.sendPeerConnection;
      let bytes = 0;
      (await pc?.getStats())?.forEach((s: Record<string, unknown>) => {
        if (s['type'] === 'outbound-rtp' && s['kind'] === 'video') bytes += Number(s['bytesSent'] ?? 0);
      });
      return { bytes, senders: pc?.getSenders().filter((s) => s.track?.kind === 'video').length ?? -1 };
    });
    assert.deepEqual(aVideoOut, { bytes: 0, senders: 0 }, "A's uplink carries no video");
    const tracked = await a.page.evaluate(() => window.avatarSfu.tracker()?.stats());
    assert.ok(tracked && tracked.faceFoundRatio > 0.8, `A's tracker finds the face (${JSON.stringify(tracked)})`);

    const source = decodeImage(fs.readFileSync(PHOTO));
    const sourceEmbedding = await analyzer.embed(source.data, source.width, source.height);
    assert.ok(sourceEmbedding);
    const yaws: number[] = [];
    const sims: number[] = [];
    // Grab over two loops of the 6 s driving clip first, analyse afterwards: the face model runs in this
    // process, which also hosts the server, and must not stall its media while A is driving.
    // A's tab in front, like the owner's own call page: Chromium renders only the front page at full
    // rate, and the tracker is paced by requestVideoFrameCallback (~1 analysed frame/s in a page it
    // does not render, which made this test flaky once page B had opened in front of A).
    await a.page.bringToFront();
    const pngs: Uint8Array[] = [];
    for (let i = 0; i < 16; i++) {
      const png = await b.grabTile(aId);
      assert.ok(png, "B shows a frame of A's tile");
      pngs.push(png);
      await sleep(700);
    }
    for (const png of pngs) {
      // Let the server (same process) answer socket.io pings between detections: a loaded machine made
      // the 16 back-to-back detections outlast the ping timeout, which ended A's session.
      await sleep(30);
      const img = decodeImage(png);
      const faces = await analyzer.detect(img.data, img.width, img.height);
      if (faces[0]) {
        yaws.push((faces[0].angles.yaw * 180) / Math.PI);
        if (faces[0].embedding) sims.push(embeddingSimilarity(sourceEmbedding, faces[0].embedding));
      }
    }
    assert.ok(yaws.length >= 12, `a face is found in B's frames of A (${yaws.length}/16)`);
    const meanSim = sims.reduce((s, x) => s + x, 0) / sims.length;
    assert.ok(meanSim >= 0.5, `the face is the photo's identity (cosine ${meanSim.toFixed(2)})`);
    const range = Math.max(...yaws) - Math.min(...yaws);
    // The clip turns ±20°; an avatar without motion idles within ±1.7° (MotionReceiver), so 6° of range
    // can only come from A's face.
    assert.ok(range >= 6, `the head turns with A's (yaw range ${range.toFixed(1)}°: ${yaws.map((y) => y.toFixed(0)).join(', ')})`);
    process.stdout.write(`# identity cosine ${meanSim.toFixed(3)}, yaw range ${range.toFixed(1)}°\n`);
  });

  test("the avatar tile shows the whole rendered head, not a crop, at every tile size, at the viewer and in the owner's own tile", async () => {
    // The owner's own tile says the avatar is live (not stuck at "starting…").
    await waitFor(() => a.page.evaluate((id) => document.querySelector<HTMLElement>(`.tile[data-peer-id="${id}"]`)?.dataset['avatarState'] === 'live', aId), { timeoutMs: 10_000, what: "A's own tile in state live" });
    const shots = process.env['AVATAR_SFU_SHOTS_DIR'];
    if (shots) fs.mkdirSync(shots, { recursive: true });
    // Narrow (one column), medium and wide windows: the grid gives the tiles different sizes, always 4:3.
    for (const [w, h] of [[360, 640], [800, 600], [1400, 900]] as const) {
      for (const [page, name] of [[b, 'viewer'], [a, 'owner']] as const) {
        await page.page.setViewportSize({ width: w, height: h });
        await sleep(200);
        const v = await waitFor(() => page.visibleFraction(aId), { timeoutMs: 10_000, what: `A's avatar video in ${name}'s tile` });
        assert.ok(v.video[0] === v.video[1], `${name} at ${w}×${h}: the tile shows the square avatar video (got ${v.video.join('×')})`);
        assert.ok(v.fraction > 0.999, `${name} at ${w}×${h}: ${(v.fraction * 100).toFixed(1)} % of the avatar visible (object-fit ${v.objectFit}, tile ${v.box.join('×')})`);
        if (shots) await page.page.screenshot({ path: `${shots}/avatar-tile-${name}-${w}x${h}.png` });
      }
    }
    await b.page.setViewportSize({ width: 800, height: 600 });
    await a.page.setViewportSize({ width: 800, height: 600 });
  });

  test("A's \"Stop camera\" stops A's camera and tracking and everyone sees the avatar paused while it idles; \"Start camera\" brings tracking back", async () => {
    const accepted = async (): Promise<number> => {
      const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
      return Number(/^avatar_motion_frames_total\{outcome="accepted"\} (\S+)/m.exec(text)?.[1] ?? 0);
    };
    const paused = (page: CallPage): Promise<{ paused: string | undefined; state: string }> =>
      page.page.evaluate((id) => {
        const el = document.querySelector<HTMLElement>(`.tile[data-peer-id="${id}"]`);
        return { paused: el?.dataset['avatarPaused'], state: el?.querySelector('.state')?.textContent ?? '' };
      }, aId);
    await a.page.bringToFront();
    const errorsBefore = a.errors.length;
    await a.page.click('#toggle-cam');
    await waitFor(async () => (await paused(b)).paused === 'true', { timeoutMs: 5000, what: "B sees A's avatar paused" });
    assert.match((await paused(b)).state, /paused \(camera off\)/);
    await waitFor(async () => (await paused(a)).paused === 'true', { timeoutMs: 5000, what: "A's own tile paused" });
    assert.equal(await a.page.textContent('#toggle-cam'), 'Start camera');
    assert.equal(await a.page.isHidden('#error'), true, `no error shown: ${await a.page.textContent('#error')}`);
    assert.equal(a.errors.length, errorsBefore, `no page errors: ${a.errors.slice(errorsBefore).join('; ')}`);
    const tracks = await a.page.evaluate(() => window.avatarSfu.localTracks());
    assert.deepEqual(tracks.filter((t) => t.kind === 'video' && t.readyState === 'live'), [], 'the camera is stopped');
    assert.equal(await a.page.evaluate(() => window.avatarSfu.tracker() === undefined), true, 'tracking stopped');
    // A sends no motion any more (its motion channel's messagesSent stays put), yet the avatar keeps
    // rendering: the worker idles it.
    const sent = (): Promise<number> =>
      a.page.evaluate(async () => {
        let n = 0;
        (await window.avatarSfu.client()?.sendPeerConnection?.getStats())?.forEach((r: Record<string, unknown>) => {
          if (r['type'] === 'data-channel' && r['label'] === 'motion') n += Number(r['messagesSent'] ?? 0);
        });
        return n;
      });
    const rendered = async (): Promise<number> => {
      const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
      return Number(/^avatar_rendered_frames_total (\S+)/m.exec(text)?.[1] ?? 0);
    };
    await b.page.bringToFront(); // B watches (Chromium gives a background page's video little attention)
    const [s0, w0, r0] = [await sent(), await accepted(), await rendered()];
    const rate = (await b.decodeRates(3000)).get(aId);
    const [s1, w1, r1] = [await sent(), await accepted(), await rendered()];
    process.stdout.write(`# camera off: A sent ${s1 - s0}, the worker accepted ${w1 - w0} motion frames and rendered ${r1 - r0} frames in 3 s; B decoded ${rate?.fps.toFixed(1)} fps\n`);
    assert.ok(r1 - r0 >= 30, `the worker keeps rendering the idle avatar (${r1 - r0} frames in 3 s)`);
    assert.ok(s0 > 0, 'the motion channel was used before');
    assert.equal(s1 - s0, 0, `motion frames sent in 3 s while the camera is off: ${s1 - s0}`);
    assert.ok(rate && rate.fps >= 10, `B still decodes A's idling avatar at ${rate?.fps.toFixed(1)} fps`);

    await a.page.bringToFront();
    await a.page.click('#toggle-cam');
    await waitFor(async () => (await paused(b)).paused === 'false', { timeoutMs: 15_000, what: "B sees A's avatar resumed" });
    assert.equal(await a.page.textContent('#toggle-cam'), 'Stop camera');
    // The new camera and tracker need a moment (first full face detection; slow on a loaded machine).
    const m2 = await accepted();
    await waitFor(async () => (await accepted()) - m2 >= 15, { timeoutMs: 20_000, intervalMs: 500, what: 'motion frames reaching the worker again after the camera restarted' });
    assert.equal(await a.page.isHidden('#error'), true, `no error shown: ${await a.page.textContent('#error')}`);
  });

  test('a voice avatar\'s call page has no "Stop camera" button: it uses no camera', async () => {
    const v = await CallPage.open(context, server.httpUrl, 'voice room', 'vera');
    await v.page.check('input[name="mode"][value="voice"]');
    // The identity A's page saved in this browser profile: no second enrollment (slow on a loaded machine).
    await v.page.waitForSelector('#saved-avatar:not([hidden])', { timeout: 10_000 });
    await v.page.click('#join');
    await v.page.waitForSelector('#call:not([hidden])', { timeout: 60_000 });
    assert.equal(await v.page.isHidden('#toggle-cam'), true, 'no camera button in voice mode');
    assert.equal(await v.page.isVisible('#toggle-mic'), true);
    const tracks = await v.page.evaluate(() => window.avatarSfu.localTracks());
    assert.deepEqual(tracks.map((t) => t.kind), ['audio'], 'only the microphone is open');
    await v.leave();
    await v.page.close();
  });

  test("when the worker dies mid-call, B's tile of A recovers", async () => {
    const session = [...server.avatars.sessions.values()][0]!;
    const pid = server.workers!.pidOf(session.workerId!);
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    const killed = Date.now();
    await waitFor(() => session.owner.attributes.avatar?.state === 'recovering', { timeoutMs: 5000, what: 'recovering state' });
    const before = (await b.tile(aId))?.framesDecoded ?? 0;
    await waitFor(async () => ((await b.tile(aId))?.framesDecoded ?? 0) > before + 20, { timeoutMs: 20_000, what: 'frames again after the worker restart' });
    process.stdout.write(`# B decodes A again ${Date.now() - killed} ms after the kill (single worker: includes its restart)\n`);
    assert.equal(session.owner.attributes.avatar?.state, 'live');
  });
});
