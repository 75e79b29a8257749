/**
 * Node phase of the keypoint bench: a wrtc MotionOwner with jaw-open steps (glass-to-glass), the
 * browser-path method on continuous Node-sent motion (control), a wrtc viewer's free-view changes
 * (freeview_apply_ms), worker kill (recovery_ms), the worker's CPU.
 */
import wrtc from '@roamhq/wrtc';
import type { CallClient } from '../../call/src/CallClient.ts';
import type { AvatarMotion } from '../../worker/src/generator/generator.ts';
import { EXPRESSION_SIZE } from '../../models/face/expression-code.ts';
import { MotionOwner, ownerKeyOf, uploadPhotoFile } from '../../test/helpers/avatarPeers.ts';
import { sleep, waitFor } from '../../test/helpers/wait.ts';
import { throughWire } from '../keypoint-quality.ts';
import { cropPlane, meanAbsDiff, procCpuSeconds, quantile, type ServerProcess } from '../keypoint-util.ts';
import { FACE_BOX, JAW_BOX, alignToMotion, firstShowing } from './alignment.ts';
import { epochNow } from './clock.ts';
import { ReferenceRenderer } from './reference.ts';
import { loadIdentity, workerPid } from './server.ts';
import { IP_UDP_HEADER } from './uplink.ts';
import { joinViewer, viewerRecvDelta, viewerRecvStats, type ViewerRecv } from './viewer.ts';

const DEG = Math.PI / 180;

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
  /** an identity already enrolled (default: `photo` is enrolled) */
  identityId?: string;
  /** the reference renderer of the identity at the received size (default: the mesh generator of the enrolled photo) */
  reference?: (identityId: string, size: number) => Promise<ReferenceRenderer>;
  /** room name (default "kp-node") */
  room?: string;
  /** run the browser-path control on Node-sent motion (default true; a slow reference renderer blocks this event loop) */
  control?: boolean;
  log: (l: string) => void;
}

export interface NodePhaseResult {
  /** width of the avatar video the measurements were made on */
  size: number;
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
  const room = o.room ?? 'kp-node';
  const identityId = o.identityId ?? (await uploadPhotoFile(o.url, o.photo));
  const owner = new MotionOwner(o.url);
  let viewer: Awaited<ReturnType<typeof joinViewer>> | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    const ownerId = o.ownerAudio ? await joinWithAudio(owner, room, identityId, timers) : await owner.join(room, identityId, 30);
    viewer = await joinViewer(o.url, room, 'viewer-n', () => ownerId);
    const { rec, client } = viewer;
    await waitFor(() => rec.count > 20, { timeoutMs: 30_000, what: "the Node viewer decoding the Node owner's avatar" });
    // the size after the settle time: a worker that cannot hold the frame rate lowers it in the first seconds (QoS)
    await sleep(Math.max(0.8, o.settleS) * 1000);
    const size = rec.width;
    const ref = o.reference ? await o.reference(identityId, size) : await ReferenceRenderer.create(await loadIdentity(o.server, identityId), size);
    const motionOf = (jaw: number): AvatarMotion => {
      const expression = new Float32Array(EXPRESSION_SIZE);
      expression[0] = jaw;
      return throughWire({ pose: owner.pose, expression });
    };
    const refClosed = ref.luma(motionOf(0), undefined, JAW_BOX);
    const refOpen = ref.luma(motionOf(1), undefined, JAW_BOX);

    // ---- glass-to-glass: jaw steps at random intervals (uncorrelated with the 25 fps render clock)
    owner.expression.fill(0);
    await sleep(800);
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
    const cEnd = performance.now() + (o.control === false ? 0 : Math.max(4, o.seconds / 2)) * 1000;
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
    return { size, viewerRecv, g2g, g2gSteps: steps.length, g2gNoise: quantile(noiseList, 0.5), control: { p50: quantile(cont.latencies, 0.5), p95: quantile(cont.latencies, 0.95), samples: cont.latencies.length, steps: cont.steps, noise: cont.noise }, viewerFps, workerCpuPct, serverCpuPct, ownerUplink, freeview, recoveryMs };
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
    avatar: { identityId, ownerKey: ownerKeyOf(identityId) },
    dataChannels: [{ label: 'motion', init: { ordered: false, maxRetransmits: 0 }, onOpen: (ch) => ((owner.channel = ch), opened()) }],
  });
  await open;
  timers.push(setInterval(() => owner.sendFrame(), 1000 / 30));
  return owner.client.peerId!;
}
