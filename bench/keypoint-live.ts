/**
 * Live parts of the keypoint-avatar benchmark (server child process, real avatar worker, werift SFU):
 * - browser phase: Chromium page A joins as an avatar (its FaceTracker sends motion on the data
 *   channel), page V joins in camera mode with the same fake camera in another room; uplinks from
 *   the pages' send RTCPeerConnection getStats; browser-path glass-to-glass from page A's motion
 *   frames (capture times) matched to a Node viewer's decoded frames with reference renders.
 * - Node phase: a wrtc MotionOwner with jaw-open steps (glass-to-glass), a wrtc viewer's free-view
 *   changes (freeview_apply_ms), worker kill (recovery_ms), the worker's CPU.
 * All decoded frames are compared with reference renders of the same identity (loaded from the
 * server's identity store) by the same generator, so "shows the new state" is a nearest-reference
 * decision, not a change threshold.
 */
import wrtc from '@roamhq/wrtc';
import type { BrowserContext } from 'playwright-core';
import { CallClient, type RemoteTrack } from '../call/src/CallClient.ts';
import type { PeerInfo } from '../protocol/src/signaling.ts';
import { IdentityStore } from '../server/src/avatar/identity/IdentityStore.ts';
import { MeshAvatarGenerator } from '../worker/src/generator/mesh-generator.ts';
import type { AvatarMotion, EnrolledIdentity, ViewOffset } from '../worker/src/generator/generator.ts';
import { EXPRESSION_SIZE } from '../models/face/expression-code.ts';
import { CallPage } from '../test/helpers/callPage.ts';
import { MotionOwner, WrtcPeerConnection, enrollPhoto } from '../test/helpers/avatarPeers.ts';
import { sleep, waitFor } from '../test/helpers/wait.ts';
import { throughWire } from './keypoint-quality.ts';
import { childPids, cropPlane, meanAbsDiff, procCpuSeconds, quantile, type Box, type ServerProcess } from './keypoint-util.ts';

/** Where the head is at 256² (with room for ±25° turns and nodding). */
export const FACE_BOX: Box = { x0: 0.2, y0: 0.15, x1: 0.8, y1: 0.9 };
/** Where the jaw and lips move at 256² (avatar-session.test.ts). */
export const JAW_BOX: Box = { x0: 0.2, y0: 0.45, x1: 0.75, y1: 0.9 };

const epochNow = (): number => performance.timeOrigin + performance.now();
const DEG = Math.PI / 180;

// ---------------------------------------------------------------- decoded frames at a Node viewer

export interface RecordedFrame {
  /** epoch ms when wrtc delivered the decoded frame to JS */
  t: number;
  luma: Uint8Array;
}

/** Decoded frames of one remote peer's video at a wrtc CallClient, following track changes. */
export class FrameRecorder {
  count = 0;
  width = 0;
  height = 0;
  lastAt = 0;
  /** arrival times of every frame (numbers only) */
  readonly times: number[] = [];
  /** luma planes, kept only while `recording` (ring of `maxKeep`) */
  readonly frames: RecordedFrame[] = [];
  recording = false;
  latest: RecordedFrame | undefined;
  #sink: { stop(): void } | undefined;

  constructor(client: CallClient, private readonly peerId: () => string | undefined, private readonly maxKeep = 800) {
    client.on('track', (t: RemoteTrack) => {
      if (t.kind !== 'video' || t.peerId !== this.peerId()) return;
      this.#sink?.stop();
      const sink = new wrtc.nonstandard.RTCVideoSink(t.track as never);
      sink.onframe = ({ frame }: { frame: { width: number; height: number; data: Uint8Array } }) => {
        const t = epochNow();
        this.count++;
        this.lastAt = t;
        this.width = frame.width;
        this.height = frame.height;
        this.times.push(t);
        if (this.times.length > 20_000) this.times.splice(0, 10_000);
        const f = { t, luma: frame.data.slice(0, frame.width * frame.height) };
        this.latest = f;
        if (this.recording) {
          this.frames.push(f);
          if (this.frames.length > this.maxKeep) this.frames.splice(0, this.frames.length - this.maxKeep);
        }
      };
      this.#sink = sink as never;
    });
  }

  stop(): void {
    this.#sink?.stop();
  }
}

/**
 * First frame after `t0` (and before `until`) that is closer to `refNew` than to every one of
 * `refOld` (all crops of `box`). Returns its arrival time, or null.
 */
export function firstShowing(frames: readonly RecordedFrame[], width: number, height: number, box: Box, t0: number, until: number, refNew: Uint8Array, refOld: readonly Uint8Array[]): number | null {
  for (const f of frames) {
    if (f.t <= t0 || f.luma.length !== width * height) continue;
    if (f.t > until) break;
    const c = cropPlane(f.luma, width, height, box);
    const dn = meanAbsDiff(c, refNew);
    if (refOld.every((r) => dn < meanAbsDiff(c, r))) return f.t;
  }
  return null;
}

/**
 * Which motion frame each viewer frame shows, and when each motion frame first became visible.
 *
 * The worker renders the latest motion it has, so the motion index shown by successive viewer
 * frames never decreases, and a frame can only show motion captured before it arrived. Each viewer
 * frame (face box) is compared with the reference render of every motion frame captured in the
 * 1.5 s before it; dynamic programming picks the non-decreasing assignment with the least total
 * distance (robust where single frames are ambiguous). A motion frame counts as a "step" when its
 * render differs from the renders of the 3 motion frames before it by more than 1.5 × the codec
 * noise (median distance of a viewer frame to its best reference); its latency is the arrival of
 * the first viewer frame assigned to it or a later motion frame, minus its capture time.
 */
export function alignToMotion(frames: readonly RecordedFrame[], width: number, height: number, capture: readonly number[], refs: readonly Uint8Array[], box: Box, from: number): { latencies: number[]; indices: number[]; steps: number; noise: number; pathDistance: number } {
  const M = capture.length;
  const F = frames.length;
  const dist: Float64Array[] = [];
  const lo: number[] = [];
  const hi: number[] = [];
  const minPerFrame: number[] = [];
  let l = 0;
  let h = 0;
  for (const f of frames) {
    while (l < M && capture[l]! <= f.t - 1500) l++;
    while (h < M && capture[h]! < f.t) h++;
    const row = new Float64Array(M).fill(Infinity);
    const c = cropPlane(f.luma, width, height, box);
    let best = Infinity;
    for (let m = l; m < h; m++) best = Math.min(best, (row[m] = meanAbsDiff(c, refs[m]!)));
    dist.push(row);
    lo.push(l);
    hi.push(h);
    if (Number.isFinite(best)) minPerFrame.push(best);
  }
  const noise = quantile(minPerFrame, 0.5);
  // DP: cost[f][m] = dist[f][m] + min over m' ≤ m of cost[f−1][m']
  const back: Int32Array[] = [];
  let prev: Float64Array | null = null;
  const used: number[] = [];
  for (let f = 0; f < F; f++) {
    if (lo[f]! >= hi[f]!) continue;
    const cur = new Float64Array(M).fill(Infinity);
    const bk = new Int32Array(M).fill(-1);
    let run = Infinity;
    let arg = -1;
    for (let m = 0; m < hi[f]!; m++) {
      if (prev && prev[m]! < run) {
        run = prev[m]!;
        arg = m;
      }
      if (m < lo[f]!) continue;
      const base = prev ? run : 0;
      if (!Number.isFinite(base)) continue;
      cur[m] = base + dist[f]![m]!;
      bk[m] = arg;
    }
    back.push(bk);
    used.push(f);
    prev = cur;
  }
  const assigned = new Int32Array(F).fill(-1);
  if (prev) {
    let m = 0;
    for (let k = 1; k < M; k++) if (prev[k]! < prev[m]!) m = k;
    for (let u = used.length - 1; u >= 0 && m >= 0; u--) {
      assigned[used[u]!] = m;
      m = back[u]![m]!;
    }
  }
  const pathD: number[] = [];
  for (let f = 0; f < F; f++) if (assigned[f]! >= 0) pathD.push(dist[f]![assigned[f]!]!);
  const latencies: number[] = [];
  const indices: number[] = [];
  let steps = 0;
  for (let i = 3; i < M; i++) {
    if (capture[i]! < from || capture[i]! > (frames[F - 1]?.t ?? 0) - 1000) continue;
    const step = Math.min(meanAbsDiff(refs[i]!, refs[i - 1]!), meanAbsDiff(refs[i]!, refs[i - 2]!), meanAbsDiff(refs[i]!, refs[i - 3]!));
    if (!(step > 1.5 * noise)) continue;
    steps++;
    for (let f = 0; f < F; f++) {
      if (assigned[f]! >= i) {
        latencies.push(frames[f]!.t - capture[i]!);
        indices.push(i);
        break;
      }
    }
  }
  return { latencies, indices, steps, noise, pathDistance: quantile(pathD, 0.5) };
}

/** Reference renders with the worker's generator and identity (same size, default options). */
export class ReferenceRenderer {
  readonly gen = new MeshAvatarGenerator();
  private constructor(readonly size: number) {}

  static async create(identity: EnrolledIdentity, size: number): Promise<ReferenceRenderer> {
    const r = new ReferenceRenderer(size);
    await r.gen.initialize(identity);
    return r;
  }

  /** Luma of the rendered frame, cropped to `box`. */
  luma(motion: AvatarMotion, view: ViewOffset | undefined, box: Box): Uint8Array {
    const fr = this.gen.render(motion, view, { size: this.size, format: 'i420' });
    return cropPlane(fr.i420!, this.size, this.size, box);
  }

  close(): void {
    this.gen.close();
  }
}

export async function loadIdentity(server: ServerProcess, identityId: string): Promise<EnrolledIdentity> {
  const store = await IdentityStore.create({ dataDir: server.dataDir, cacheSize: 0 });
  return store.load(identityId);
}

function workerPid(server: ServerProcess): number | undefined {
  return childPids(server.pid, 'worker/src/main.ts')[0];
}

/** Video receive stats of a wrtc viewer: jitter-buffer delay, decode time, frames, NACK/PLI. */
async function viewerRecvStats(client: CallClient): Promise<{ jb: number; emitted: number; decode: number; decoded: number; dropped: number; nacks: number; plis: number; lost: number }> {
  const out = { jb: 0, emitted: 0, decode: 0, decoded: 0, dropped: 0, nacks: 0, plis: 0, lost: 0 };
  (await client.receivePeerConnection?.getStats())?.forEach((s: Record<string, unknown>) => {
    if (s['type'] !== 'inbound-rtp' || s['kind'] !== 'video') return;
    out.jb += Number(s['jitterBufferDelay'] ?? 0);
    out.emitted += Number(s['jitterBufferEmittedCount'] ?? 0);
    out.decode += Number(s['totalDecodeTime'] ?? 0);
    out.decoded += Number(s['framesDecoded'] ?? 0);
    out.dropped += Number(s['framesDropped'] ?? 0);
    out.nacks += Number(s['nackCount'] ?? 0);
    out.plis += Number(s['pliCount'] ?? 0);
    out.lost += Number(s['packetsLost'] ?? 0);
  });
  return out;
}

export interface ViewerRecv {
  /** mean time a frame spent in the viewer's jitter buffer (ms) */
  jitterBufferMs: number;
  decodeMs: number;
  framesDropped: number;
  nacks: number;
  plis: number;
  packetsLost: number;
}

function viewerRecvDelta(a: Awaited<ReturnType<typeof viewerRecvStats>>, b: Awaited<ReturnType<typeof viewerRecvStats>>): ViewerRecv {
  const emitted = b.emitted - a.emitted;
  const decoded = b.decoded - a.decoded;
  return {
    jitterBufferMs: emitted > 0 ? ((b.jb - a.jb) / emitted) * 1000 : NaN,
    decodeMs: decoded > 0 ? ((b.decode - a.decode) / decoded) * 1000 : NaN,
    framesDropped: b.dropped - a.dropped,
    nacks: b.nacks - a.nacks,
    plis: b.plis - a.plis,
    packetsLost: b.lost - a.lost,
  };
}

async function joinViewer(url: string, room: string, name: string, peerId: () => string | undefined): Promise<{ client: CallClient; rec: FrameRecorder; peers: PeerInfo[] }> {
  const client = new CallClient({ serverUrl: url, RTCPeerConnection: WrtcPeerConnection });
  const rec = new FrameRecorder(client, peerId);
  const peers = (await client.join({ roomId: room, displayName: name, stream: null })) as PeerInfo[];
  return { client, rec, peers };
}

// ---------------------------------------------------------------- browser phase

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

interface SendStats {
  now: number;
  timeOrigin: number;
  transportBytes: number;
  transportPackets: number;
  srtpCipher: string;
  dtlsCipher: string;
  audio: { bytes: number; header: number; packets: number };
  video: { bytes: number; header: number; packets: number; frames: number; width: number; height: number; encodeTime: number; target: number; limitation: string };
  dc: { bytes: number; messages: number };
  tracker: { fps: number; cameraFps: number; detectMsP50: number; detectMsP95: number; faceFoundRatio: number; motionFramesEmitted: number; framesDropped: number; backend: string } | null;
}

function sendStats(page: CallPage): Promise<SendStats> {
  return page.page.evaluate(async () => {
    const out = {
      now: performance.now(),
      timeOrigin: performance.timeOrigin,
      transportBytes: 0,
      transportPackets: 0,
      srtpCipher: '',
      dtlsCipher: '',
      audio: { bytes: 0, header: 0, packets: 0 },
      video: { bytes: 0, header: 0, packets: 0, frames: 0, width: 0, height: 0, encodeTime: 0, target: 0, limitation: '' },
      dc: { bytes: 0, messages: 0 },
      tracker: null as null | { fps: number; cameraFps: number; detectMsP50: number; detectMsP95: number; faceFoundRatio: number; motionFramesEmitted: number; framesDropped: number; backend: string },
    };
    const pc = window.avatarSfu.client()?.sendPeerConnection;
    // (no named helper functions in here: tsx would wrap them in __name(), unknown in the page)
    (await pc?.getStats())?.forEach((s: Record<string, unknown>) => {
      if (s['type'] === 'transport') {
        out.transportBytes += Number(s['bytesSent'] ?? 0);
        out.transportPackets += Number(s['packetsSent'] ?? 0);
        out.srtpCipher = String(s['srtpCipher'] ?? '');
        out.dtlsCipher = String(s['dtlsCipher'] ?? '');
      } else if (s['type'] === 'outbound-rtp') {
        const k = s['kind'] === 'audio' ? out.audio : out.video;
        k.bytes += Number(s['bytesSent'] ?? 0);
        k.header += Number(s['headerBytesSent'] ?? 0);
        k.packets += Number(s['packetsSent'] ?? 0);
        if (s['kind'] === 'video') {
          out.video.frames += Number(s['framesEncoded'] ?? 0);
          out.video.width = Math.max(out.video.width, Number(s['frameWidth'] ?? 0));
          out.video.height = Math.max(out.video.height, Number(s['frameHeight'] ?? 0));
          out.video.encodeTime += Number(s['totalEncodeTime'] ?? 0);
          out.video.target += Number(s['targetBitrate'] ?? 0);
          out.video.limitation = String(s['qualityLimitationReason'] ?? '');
        }
      } else if (s['type'] === 'data-channel') {
        out.dc.bytes += Number(s['bytesSent'] ?? 0);
        out.dc.messages += Number(s['messagesSent'] ?? 0);
      }
    });
    const t = window.avatarSfu.tracker()?.stats();
    if (t) out.tracker = { fps: t.fps, cameraFps: t.cameraFps, detectMsP50: t.detectMsP50, detectMsP95: t.detectMsP95, faceFoundRatio: t.faceFoundRatio, motionFramesEmitted: t.motionFramesEmitted, framesDropped: t.framesDropped, backend: t.backend };
    return out;
  });
}

/** SRTP authentication tag bytes per packet for a cipher name from the transport stats. */
function srtpTagBytes(cipher: string): number {
  if (/GCM/i.test(cipher)) return 16;
  if (/_32$/.test(cipher)) return 4;
  return 10; // AES_CM_128_HMAC_SHA1_80 (and unknown: the common default)
}

const IP_UDP_HEADER = 28;

export interface Uplink {
  seconds: number;
  /** everything the send transport carried minus the audio SRTP packets, + IPv4/UDP headers (kbit/s) */
  wireKbps: number;
  /** data-channel message payload only (kbit/s) */
  dcPayloadKbps: number;
  dcMessagesPerS: number;
  wireBytesPerMessage: number;
  /** outbound-rtp video bytesSent (payload only), kbit/s */
  videoPayloadKbps: number;
  /** video SRTP packets with RTP headers, tag and IPv4/UDP headers, kbit/s */
  videoWireKbps: number;
  videoFps: number;
  videoSize: string;
  videoEncodeMs: number;
  /** the encoder's target bitrate at the end of the window (kbit/s) and why it is limited */
  videoTargetKbps: number;
  videoLimitation: string;
  audioWireKbps: number;
  srtpCipher: string;
  dtlsCipher: string;
}

function uplink(a: SendStats, b: SendStats): Uplink {
  const dt = (b.now - a.now) / 1000;
  const tag = srtpTagBytes(b.srtpCipher);
  const d = (f: (s: SendStats) => number): number => f(b) - f(a);
  const audioPackets = d((s) => s.audio.packets);
  const audioSrtp = d((s) => s.audio.bytes + s.audio.header) + audioPackets * tag;
  const videoPackets = d((s) => s.video.packets);
  const videoSrtp = d((s) => s.video.bytes + s.video.header) + videoPackets * tag;
  // rest = DTLS records (SCTP: data channel DATA chunks, SACKs, heartbeats) + RTCP
  const restBytes = d((s) => s.transportBytes) - audioSrtp - videoSrtp;
  const restPackets = d((s) => s.transportPackets) - audioPackets - videoPackets;
  const messages = d((s) => s.dc.messages);
  const wireBytes = restBytes + restPackets * IP_UDP_HEADER;
  const frames = d((s) => s.video.frames);
  return {
    seconds: dt,
    wireKbps: (wireBytes * 8) / dt / 1000,
    dcPayloadKbps: (d((s) => s.dc.bytes) * 8) / dt / 1000,
    dcMessagesPerS: messages / dt,
    wireBytesPerMessage: messages > 0 ? wireBytes / messages : NaN,
    videoPayloadKbps: (d((s) => s.video.bytes) * 8) / dt / 1000,
    videoWireKbps: ((videoSrtp + videoPackets * IP_UDP_HEADER) * 8) / dt / 1000,
    videoFps: frames / dt,
    videoSize: `${b.video.width}x${b.video.height}`,
    videoEncodeMs: frames > 0 ? (d((s) => s.video.encodeTime) * 1000) / frames : NaN,
    videoTargetKbps: b.video.target / 1000,
    videoLimitation: b.video.limitation,
    audioWireKbps: ((audioSrtp + audioPackets * IP_UDP_HEADER) * 8) / dt / 1000,
    srtpCipher: b.srtpCipher,
    dtlsCipher: b.dtlsCipher,
  };
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

/** Offset (page epoch − Node epoch) in ms, from the round trip with the smallest delay. */
async function clockOffset(page: CallPage): Promise<{ offsetMs: number; rttMs: number }> {
  let best = { offsetMs: 0, rttMs: Infinity };
  for (let i = 0; i < 25; i++) {
    const t0 = epochNow();
    const p = await page.page.evaluate(() => performance.timeOrigin + performance.now());
    const t1 = epochNow();
    if (t1 - t0 < best.rttMs) best = { offsetMs: p - (t0 + t1) / 2, rttMs: t1 - t0 };
  }
  return best;
}

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
  const identityId = viewer.peers.find((p) => p.peerId === aId)?.avatar?.identityId;
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

// ---------------------------------------------------------------- Node phase

export interface NodePhaseOptions {
  url: string;
  server: ServerProcess;
  photo: string;
  seconds: number;
  freeviewRepeats: number;
  killWorker: boolean;
  /** the Node owner also publishes an audio track (as browsers do in avatar mode) */
  ownerAudio: boolean;
  /** seconds between the viewer's first frames and the glass-to-glass window */
  settleS: number;
  log: (l: string) => void;
}

export interface NodePhaseResult {
  viewerRecv: ViewerRecv;
  g2g: number[];
  g2gSteps: number;
  g2gNoise: number;
  /** the browser-path analysis (alignToMotion) applied to Node-sent continuous motion */
  control: { p50: number; p95: number; samples: number; steps: number; noise: number };
  viewerFps: number;
  workerCpuPct: number;
  serverCpuPct: number;
  /** wrtc owner at 30 fps: data channel payload and wire (transport bytes + IPv4/UDP headers), kbit/s */
  ownerUplink: { dcPayloadKbps: number; wireKbps: number; messagesPerS: number; wireBytesPerMessage: number };
  freeview: { kind: string; ms: number | null; ackMs: number }[];
  recoveryMs: number | null;
}

async function wrtcSendStats(client: CallClient): Promise<{ at: number; bytes: number; packets: number; dcBytes: number; dcMessages: number }> {
  const out = { at: performance.now(), bytes: 0, packets: 0, dcBytes: 0, dcMessages: 0 };
  (await client.sendPeerConnection?.getStats())?.forEach((s: Record<string, unknown>) => {
    if (s['type'] === 'transport') {
      out.bytes += Number(s['bytesSent'] ?? 0);
      out.packets += Number(s['packetsSent'] ?? 0);
    } else if (s['type'] === 'data-channel') {
      out.dcBytes += Number(s['bytesSent'] ?? 0);
      out.dcMessages += Number(s['messagesSent'] ?? 0);
    }
  });
  return out;
}

export async function runNodePhase(o: NodePhaseOptions): Promise<NodePhaseResult> {
  const { log } = o;
  const room = 'kp-node';
  const identityId = await enrollPhoto(o.url, o.photo);
  const owner = new MotionOwner(o.url);
  let viewer: Awaited<ReturnType<typeof joinViewer>> | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    const ownerId = o.ownerAudio ? await joinWithAudio(owner, room, identityId, timers) : await owner.join(room, identityId, 30);
    viewer = await joinViewer(o.url, room, 'viewer-n', () => ownerId);
    const { rec, client } = viewer;
    await waitFor(() => rec.count > 20, { timeoutMs: 30_000, what: "the Node viewer decoding the Node owner's avatar" });
    const size = rec.width;
    const ref = await ReferenceRenderer.create(await loadIdentity(o.server, identityId), size);
    const motionOf = (jaw: number): AvatarMotion => {
      const expression = new Float32Array(EXPRESSION_SIZE);
      expression[0] = jaw;
      return throughWire({ pose: owner.pose, expression });
    };
    const refClosed = ref.luma(motionOf(0), undefined, JAW_BOX);
    const refOpen = ref.luma(motionOf(1), undefined, JAW_BOX);

    // ---- glass-to-glass: jaw steps at random intervals (uncorrelated with the 25 fps render clock)
    owner.expression.fill(0);
    await sleep(Math.max(0.8, o.settleS) * 1000);
    const wpid = workerPid(o.server);
    const w0 = wpid ? procCpuSeconds(wpid) : NaN, s0 = procCpuSeconds(o.server.pid), c0 = rec.count, tw = performance.now();
    const u0 = await wrtcSendStats(owner.client);
    const vr0 = await viewerRecvStats(client);
    rec.recording = true;
    const steps: { t: number; open: boolean }[] = [];
    let open = false;
    const end = performance.now() + o.seconds * 1000;
    while (performance.now() < end) {
      await sleep(450 + Math.random() * 300);
      open = !open;
      owner.expression[0] = open ? 1 : 0;
      const t = epochNow();
      owner.sendFrame();
      steps.push({ t, open });
    }
    await sleep(800);
    rec.recording = false;
    const u1 = await wrtcSendStats(owner.client);
    const viewerRecv = viewerRecvDelta(vr0, await viewerRecvStats(client));
    const wall = (performance.now() - tw) / 1000;
    const workerCpuPct = wpid ? ((procCpuSeconds(wpid) - w0) / wall) * 100 : NaN;
    const serverCpuPct = ((procCpuSeconds(o.server.pid) - s0) / wall) * 100;
    const viewerFps = (rec.count - c0) / wall;
    const g2g: number[] = [];
    steps.forEach((s, i) => {
      const until = steps[i + 1]?.t ?? s.t + 1000;
      const t = firstShowing(rec.frames, size, size, JAW_BOX, s.t, until, s.open ? refOpen : refClosed, [s.open ? refClosed : refOpen]);
      if (t !== null) g2g.push(t - s.t);
    });
    const noiseList = rec.frames.slice(-10).map((f) => meanAbsDiff(cropPlane(f.luma, size, size, JAW_BOX), open ? refOpen : refClosed));
    const udt = (u1.at - u0.at) / 1000;
    const msgs = u1.dcMessages - u0.dcMessages;
    const wireBytes = u1.bytes - u0.bytes + (u1.packets - u0.packets) * IP_UDP_HEADER;
    const ownerUplink = {
      dcPayloadKbps: ((u1.dcBytes - u0.dcBytes) * 8) / udt / 1000,
      wireKbps: (wireBytes * 8) / udt / 1000,
      messagesPerS: msgs / udt,
      wireBytesPerMessage: msgs > 0 ? wireBytes / msgs : NaN,
    };
    log(`glass-to-glass (Node owner): ${g2g.length}/${steps.length} steps seen, p50 ${quantile(g2g, 0.5).toFixed(0)} ms`);

    // ---- control for the browser-path method: continuous motion (head turns, nodding, jaw) sent at
    // 20 fps with known send times, analysed like the browser path (alignToMotion)
    const sent: { t: number; motion: AvatarMotion }[] = [];
    rec.frames.length = 0;
    rec.recording = true;
    const cStart = epochNow();
    const cEnd = performance.now() + Math.max(4, o.seconds / 2) * 1000;
    while (performance.now() < cEnd) {
      const tt = (epochNow() - cStart) / 1000;
      owner.pose = { yaw: 20 * DEG * Math.sin((2 * Math.PI * tt) / 2), pitch: 6 * DEG * Math.sin((2 * Math.PI * tt) / 1.33), roll: 0, tx: 0, ty: 0, scale: 1 };
      owner.expression.fill(0);
      owner.expression[0] = 0.7 * Math.max(0, Math.sin(2 * Math.PI * 1.6 * tt));
      const t = epochNow();
      owner.sendFrame();
      const expression = new Float32Array(owner.expression);
      sent.push({ t, motion: throughWire({ pose: { ...owner.pose }, expression }) });
      await sleep(50);
    }
    await sleep(800);
    rec.recording = false;
    owner.pose = { yaw: 0, pitch: 0, roll: 0, tx: 0, ty: 0, scale: 1 };
    const cont = alignToMotion(rec.frames, size, size, sent.map((x) => x.t), sent.map((x) => ref.luma(x.motion, undefined, FACE_BOX)), FACE_BOX, cStart);
    log(`control (Node owner, continuous motion, browser-path method): ${cont.latencies.length}/${cont.steps} steps, p50 ${quantile(cont.latencies, 0.5).toFixed(0)} ms`);

    // ---- free view: default → personal +25° → personal −25° → default, repeated
    owner.expression.fill(0);
    await sleep(600);
    const rest = motionOf(0);
    const viewRef = (yaw: number): Uint8Array => ref.luma(rest, { yaw: yaw * DEG, pitch: 0, roll: 0 }, FACE_BOX);
    const freeview: NodePhaseResult['freeview'] = [];
    let current = 0;
    const plan: { yaw: number | null; kind: string }[] = [];
    for (let i = 0; i < o.freeviewRepeats; i++) plan.push({ yaw: 25, kind: 'default→personal' }, { yaw: -25, kind: 'personal→personal' }, { yaw: null, kind: 'personal→default' });
    rec.recording = true;
    for (const step of plan) {
      const target = step.yaw ?? 0;
      const refNew = viewRef(target), refOld = viewRef(current);
      rec.frames.length = 0;
      const t0 = epochNow();
      await client.setAvatarView(ownerId, 'personal', step.yaw === null ? null : { yaw: step.yaw, pitch: 0, roll: 0 });
      const ackMs = epochNow() - t0;
      await sleep(1200);
      const t = firstShowing(rec.frames, size, size, FACE_BOX, t0, t0 + 1200, refNew, [refOld]);
      freeview.push({ kind: step.kind, ms: t === null ? null : t - t0, ackMs });
      current = target;
    }
    rec.recording = false;
    ref.close();
    log(`free view: ${freeview.map((f) => (f.ms === null ? 'miss' : f.ms.toFixed(0))).join(', ')} ms`);

    // ---- worker failover (single worker: includes its restart)
    let recoveryMs: number | null = null;
    const pid = workerPid(o.server);
    if (o.killWorker && pid) {
      const killedAt = epochNow();
      process.kill(pid, 'SIGKILL');
      const resumed = await waitFor(
        () => {
          // the end of the first gap > 300 ms that ends after the kill, once 10 frames followed it
          const ts = rec.times;
          let found: number | null = null;
          let after = 0;
          for (let i = ts.length - 1; i > 0 && ts[i]! > killedAt; i--) {
            if (ts[i]! - ts[i - 1]! > 300) {
              found = ts[i]!;
              after = ts.length - i;
            }
          }
          return found !== null && after >= 10 ? found : null;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: 'avatar video back after the worker was killed' },
      ).catch(() => null);
      recoveryMs = resumed === null ? null : resumed - killedAt;
      log(`recovery after killing worker ${pid}: ${recoveryMs === null ? 'no frames within 30 s' : `${recoveryMs.toFixed(0)} ms`}`);
    }
    return { viewerRecv, g2g, g2gSteps: steps.length, g2gNoise: quantile(noiseList, 0.5), control: { p50: quantile(cont.latencies, 0.5), p95: quantile(cont.latencies, 0.95), samples: cont.latencies.length, steps: cont.steps, noise: cont.noise }, viewerFps, workerCpuPct, serverCpuPct, ownerUplink, freeview, recoveryMs };
  } finally {
    for (const t of timers) clearInterval(t);
    viewer?.rec.stop();
    await viewer?.client.leave().catch(() => undefined);
    await owner.leave().catch(() => undefined);
  }
}

/**
 * MotionOwner.join, but also publishing a microphone-like audio track (wrtc RTCAudioSource, a
 * 440 Hz tone in 10 ms frames at exactly real-time rate), as the browser does in avatar mode.
 */
async function joinWithAudio(owner: MotionOwner, room: string, identityId: string, timers: NodeJS.Timeout[]): Promise<string> {
  const source = new wrtc.nonstandard.RTCAudioSource();
  const track = source.createTrack();
  const samples = new Int16Array(480);
  const t0 = performance.now();
  let frames = 0;
  timers.push(
    setInterval(() => {
      while (frames * 10 < performance.now() - t0) {
        for (let i = 0; i < 480; i++) samples[i] = Math.round(3000 * Math.sin((2 * Math.PI * 440 * (frames * 480 + i)) / 48000));
        source.onData({ samples, sampleRate: 48000, bitsPerSample: 16, channelCount: 1, numberOfFrames: 480 });
        frames++;
      }
    }, 5),
  );
  let opened!: () => void;
  const open = new Promise<void>((r) => (opened = r));
  await owner.client.join({
    roomId: room,
    displayName: 'owner',
    stream: new wrtc.MediaStream([track]) as unknown as MediaStream,
    avatar: { identityId },
    dataChannels: [{ label: 'motion', init: { ordered: false, maxRetransmits: 0 }, onOpen: (ch) => ((owner.channel = ch), opened()) }],
  });
  await open;
  timers.push(setInterval(() => owner.sendFrame(), 1000 / 30));
  return owner.client.peerId!;
}
