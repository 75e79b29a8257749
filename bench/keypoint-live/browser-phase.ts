/**
 * Browser phase of the keypoint bench: Chromium page A joins as an avatar (its FaceTracker sends
 * motion on the data channel), page V joins in camera mode with the same fake camera in another
 * room; uplinks from the pages' send RTCPeerConnection getStats; browser-path glass-to-glass from
 * page A's motion frames (capture times) matched to a Node viewer's decoded frames with reference
 * renders.
 */
import type { BrowserContext } from 'playwright-core';
import { CallPage } from '../../test/helpers/callPage.ts';
import { sleep, waitFor } from '../../test/helpers/wait.ts';
import { throughWire } from '../keypoint-quality.ts';
import { procCpuSeconds, quantile, type ServerProcess } from '../keypoint-util.ts';
import { FACE_BOX, alignToMotion } from './alignment.ts';
import { clockOffset, epochNow } from './clock.ts';
import { ReferenceRenderer } from './reference.ts';
import { loadIdentity, workerPid } from './server.ts';
import { sendStats, uplink, type SendStats, type Uplink } from './uplink.ts';
import { joinViewer, viewerRecvDelta, viewerRecvStats, type ViewerRecv } from './viewer.ts';

/** Sum of the samples of a Prometheus metric whose labels contain `labelFilter`. */
function metricSum(text: string, name: string, labelFilter = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || !line.includes(labelFilter)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

interface MotionRecord {
  seq: number;
  /** epoch ms (page clock) of the camera frame the motion was measured on */
  captureEpoch: number;
  latencyMs: number;
  pose: { yaw: number; pitch: number; roll: number; tx: number; ty: number; scale: number };
  expression: number[];
}

type KpWindow = { __kpMotion?: MotionRecord[] };

export interface BrowserPhaseOptions {
  url: string;
  server: ServerProcess;
  context: BrowserContext;
  photo: string;
  cameraSize: number;
  fps: number;
  warmupS: number;
  /** longest wait for the camera page's bitrate to stop growing */
  rampMaxS: number;
  seconds: number;
  log: (l: string) => void;
}

export interface BrowserPhaseResult {
  rampS: number;
  viewerRecv: ViewerRecv;
  /** motion frames the server counted as accepted by the worker, per second, in the window */
  motionAcceptedPerS: number;
  /** page A's motion channel bufferedAmount (bytes queued in Chromium), sampled every 100 ms */
  motionBufferedP50: number;
  motionBufferedMax: number;
  avatar: Uplink;
  video: Uplink;
  tracker: SendStats['tracker'];
  trackerLatencyMsP50: number;
  viewerFps: number;
  g2g: { p50: number; p95: number; fromSendP50: number; fromSendP95: number; trackerP50: number; samples: number; steps: number; noise: number; clockRttMs: number; clockOffsetMs: number; refDistance: number } | null;
  workerCpuPct: number;
  serverCpuPct: number;
  joinMs: number;
  pageErrors: string[];
}

export async function runBrowserPhase(o: BrowserPhaseOptions): Promise<BrowserPhaseResult> {
  const { log } = o;
  const roomA = 'kp-avatar';
  const roomV = 'kp-video';
  const cam = { width: o.cameraSize, height: o.cameraSize, fps: o.fps };
  // instrumentation: remember the pages' data channels and sample their send queue every 100 ms
  // (a string, so that tsx does not rewrite it)
  await o.context.addInitScript({
    content: `(() => {
      const orig = RTCPeerConnection.prototype.createDataChannel;
      window.__kpChannels = [];
      window.__kpBuffered = [];
      RTCPeerConnection.prototype.createDataChannel = function (...args) {
        const ch = orig.apply(this, args);
        window.__kpChannels.push(ch);
        return ch;
      };
      setInterval(() => {
        for (const ch of window.__kpChannels) if (ch.label === 'motion' && ch.readyState === 'open') window.__kpBuffered.push(ch.bufferedAmount);
        if (window.__kpBuffered.length > 4000) window.__kpBuffered.splice(0, 2000);
      }, 100);
    })();`,
  });
  const a = await CallPage.open(o.context, o.url, roomA, 'avatar-owner', cam);
  await a.page.check('input[name="mode"][value="avatar"]');
  await a.page.setInputFiles('#photo', o.photo);
  const tj = performance.now();
  await a.page.click('#join');
  await a.page.waitForSelector('#call:not([hidden])', { timeout: 120_000 });
  const joinMs = performance.now() - tj;
  const aId = (await a.stats()).peerId!;
  log(`page A joined as an avatar (${aId}) in ${joinMs.toFixed(0)} ms`);
  await a.page.evaluate(() => {
    const w = window as unknown as KpWindow;
    w.__kpMotion = [];
    window.avatarSfu.tracker()?.onMotion((frame, info) => {
      const rec = w.__kpMotion!;
      rec.push({ seq: frame.seq, captureEpoch: performance.timeOrigin + performance.now() - info.latencyMs, latencyMs: info.latencyMs, pose: { ...frame.pose }, expression: Array.from(frame.expression) });
      if (rec.length > 5000) rec.splice(0, 2500);
    });
  });
  const viewer = await joinViewer(o.url, roomA, 'viewer-a', () => aId);
  // the page's own saved identity (PeerInfo never names it to others)
  const identityId = await a.page.evaluate(() => (JSON.parse(localStorage.getItem('avatar-sfu.identities') ?? '[]') as { identityId?: string }[])[0]?.identityId);
  try {
    await waitFor(() => viewer.rec.count > 10, { timeoutMs: 30_000, what: "the Node viewer decoding page A's avatar" }).catch(async (err: Error) => {
      const room = await (await fetch(`${o.url}/api/rooms/${encodeURIComponent(roomA)}`)).text().catch(() => '?');
      const tracks = viewer.client.remoteTracks.map((t) => `${t.peerId}/${t.kind}`).join(',');
      throw new Error(`${err.message}; viewer tracks [${tracks}], frames ${viewer.rec.count}; room ${room.slice(0, 1500)}`);
    });
    const v = await CallPage.open(o.context, o.url, roomV, 'camera', cam);
    await v.join();
    log('page V joined with the camera; warming up');
    const tv = performance.now();
    await waitFor(async () => (await sendStats(v)).video.frames > 10 && ((await sendStats(a)).tracker?.motionFramesEmitted ?? 0) > 10, { timeoutMs: 30_000, what: 'camera frames and motion frames flowing' });
    // Chromium's send-side estimate starts at 300 kbit/s and grows ~8 %/s without loss (the SFU
    // negotiates REMB, no transport-cc): wait until the encoder's target stops growing, so that the
    // window sees the camera's steady-state bitrate, not the ramp.
    const targets: number[] = [];
    for (;;) {
      targets.push((await sendStats(v)).video.target);
      const elapsed = (performance.now() - tv) / 1000;
      const n = targets.length;
      const flat = n >= 3 && targets[n - 1]! <= 1.05 * targets[n - 3]! && targets[n - 1]! > 0;
      if ((elapsed >= o.warmupS && flat) || elapsed >= o.rampMaxS) break;
      await sleep(2000);
    }
    const rampS = (performance.now() - tv) / 1000;
    log(`camera encoder target ${(targets[targets.length - 1]! / 1000).toFixed(0)} kbit/s after ${rampS.toFixed(0)} s; measuring ${o.seconds} s`);

    const wpid = workerPid(o.server);
    const clock = await clockOffset(a);
    const [a0, v0] = await Promise.all([sendStats(a), sendStats(v)]);
    const w0 = wpid ? procCpuSeconds(wpid) : NaN, s0 = procCpuSeconds(o.server.pid), c0 = viewer.rec.count, t0 = performance.now();
    const windowStart = epochNow();
    const motionMetric = async (): Promise<number> => metricSum(await (await fetch(`${o.url}/metrics`)).text(), 'avatar_motion_frames_total', 'outcome="accepted"');
    const m0 = await motionMetric();
    const vr0 = await viewerRecvStats(viewer.client);
    await a.page.evaluate(() => void ((window as unknown as { __kpBuffered: number[] }).__kpBuffered.length = 0));
    viewer.rec.recording = true;
    await sleep(o.seconds * 1000);
    viewer.rec.recording = false;
    const motionAcceptedPerS = (await motionMetric() - m0) / ((epochNow() - windowStart) / 1000);
    const viewerRecv = viewerRecvDelta(vr0, await viewerRecvStats(viewer.client));
    const buffered = await a.page.evaluate(() => (window as unknown as { __kpBuffered: number[] }).__kpBuffered.slice());
    const [a1, v1] = await Promise.all([sendStats(a), sendStats(v)]);
    const wall = (performance.now() - t0) / 1000;
    const workerCpuPct = wpid ? ((procCpuSeconds(wpid) - w0) / wall) * 100 : NaN;
    const serverCpuPct = ((procCpuSeconds(o.server.pid) - s0) / wall) * 100;
    const viewerFps = (viewer.rec.count - c0) / wall;
    const pageErrors = [...a.errors.map((e) => `A: ${e}`), ...v.errors.map((e) => `V: ${e}`)];
    await v.page.close().catch(() => undefined);

    // Browser-path glass-to-glass (see alignToMotion): capture of a motion frame → first viewer
    // frame that shows it or a later one.
    const identity = identityId ? await loadIdentity(o.server, identityId) : undefined;
    const analyse = async (from: number): Promise<{ g2g: BrowserPhaseResult['g2g']; trackerLatencyMsP50: number }> => {
      const records = ((await a.page.evaluate(() => (window as unknown as KpWindow).__kpMotion ?? [])) as MotionRecord[])
        .map((r) => ({ ...r, captureEpoch: r.captureEpoch - clock.offsetMs }))
        .filter((r) => r.captureEpoch >= from - 1500);
      const trackerLatencyMsP50 = quantile(records.filter((r) => r.captureEpoch >= from).map((r) => r.latencyMs), 0.5);
      if (!identity || records.length <= 10 || viewer.rec.frames.length <= 10) return { g2g: null, trackerLatencyMsP50 };
      const ref = await ReferenceRenderer.create(identity, viewer.rec.width);
      const refs = records.map((r, i) => ref.luma(throughWire({ pose: r.pose, expression: r.expression }, i), undefined, FACE_BOX));
      ref.close();
      const al = alignToMotion(viewer.rec.frames, viewer.rec.width, viewer.rec.height, records.map((r) => r.captureEpoch), refs, FACE_BOX, from);
      // the same steps measured from when the tracker emitted (and the page sent) the motion frame
      const fromSend = al.latencies.map((l, k) => l - records[al.indices[k]!]!.latencyMs);
      return {
        trackerLatencyMsP50,
        g2g: { p50: quantile(al.latencies, 0.5), p95: quantile(al.latencies, 0.95), fromSendP50: quantile(fromSend, 0.5), fromSendP95: quantile(fromSend, 0.95), trackerP50: quantile(al.indices.map((i) => records[i]!.latencyMs), 0.5), samples: al.latencies.length, steps: al.steps, noise: al.noise, clockRttMs: clock.rttMs, clockOffsetMs: clock.offsetMs, refDistance: al.pathDistance },
      };
    };
    const { g2g, trackerLatencyMsP50 } = await analyse(windowStart);
    log(`browser-path glass-to-glass p50 ${g2g?.p50.toFixed(0) ?? '-'} ms (viewer jitter buffer ${viewerRecv.jitterBufferMs.toFixed(0)} ms)`);

    return { rampS, viewerRecv, motionAcceptedPerS, motionBufferedP50: quantile(buffered, 0.5), motionBufferedMax: buffered.length ? Math.max(...buffered) : NaN, avatar: uplink(a0, a1), video: uplink(v0, v1), tracker: a1.tracker, trackerLatencyMsP50, viewerFps, g2g, workerCpuPct, serverCpuPct, joinMs, pageErrors };
  } finally {
    viewer.rec.stop();
    await viewer.client.leave().catch(() => undefined);
    await a.page.close().catch(() => undefined);
  }
}
