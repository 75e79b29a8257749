/**
 * `npm run bench -- keypoint --json [--photo PATH] [--driving VIDEO] [--seconds S] [...]`
 *
 * Keypoint-avatar benchmark: bandwidth, render cost, quality, free-view and glass-to-glass latency
 * of the whole path (browser tracker → motion data channel → SFU → avatar worker → VP8 → viewer).
 * Definitions and method: bench/README.md, section `keypoint`. Phases:
 *  1. quality (offline): the driving video (default: test/helpers/drivingVideo.ts clip rendered from
 *     astronaut.png, 480², 6 s) → Human per frame → landmarksToMotion → wire quantisation → render
 *     256² → Human on the render: akd_px, identity_cosine; without --photo the first driving frame
 *     is the source (self-reenactment) and each render is compared with the driving frame's own
 *     256² crop: self_psnr, self_ssim.
 *  2. cost (offline): benchRender 256² (render + I420, one thread) and VP8 encode time (wrtc
 *     RTCVideoSource on a loopback pair in this process, outbound-rtp totalEncodeTime).
 *  3. browser (server child process with AVATAR_WORKERS=1 + headless Chromium whose fake camera
 *     plays the driving clip): page A joins as an avatar, page V joins in camera mode in another
 *     room; uplinks from their send RTCPeerConnection getStats; a Node viewer decodes A's avatar
 *     (browser-path glass-to-glass).
 *  4. Node (same server): wrtc MotionOwner with jaw steps → Node viewer (glass_to_glass_ms_*), free
 *     view changes (freeview_apply_ms), worker kill (recovery_ms).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildClient } from '../scripts/build-client.ts';
import { launchChromium } from '../test/helpers/browser.ts';
import { makeDrivingVideo } from '../test/helpers/drivingVideo.ts';
import { runQuality, measureRenderCost, type QualityResult, type RenderCost } from './keypoint-quality.ts';
import { runBrowserPhase, runNodePhase, type BrowserPhaseResult, type NodePhaseResult } from './keypoint-live.ts';
import { machineLoad, newestMtime, num, quantile, ROOT, sampleMachine, startServerProcess, videoToY4m, type MachineSample } from './keypoint-util.ts';
import { intOption, UsageError, type Suite } from './suite.ts';
import { onTeardown } from './lifecycle.ts';

export const KEYPOINT_DEFAULTS = { seconds: 10, cameraSize: 480, fps: 30, warmup: 4, maxFrames: 180, freeviewRepeats: 3, renderSize: 256 } as const;

/** The default driving clip: a real film clip from Debian's opencv-doc (installed by the bench when root). */
export const REAL_DRIVING_CLIP = '/usr/share/doc/opencv-doc/examples/data/Megamind.avi';

export interface KeypointOptions {
  photo: string | undefined;
  /** A video file, 'synthetic' (the drivingVideo.ts clip the mesh generator renders), or undefined: the real default clip. */
  driving: string | 'synthetic' | undefined;
  seconds: number;
  cameraSize: number;
  fps: number;
  warmup: number;
  maxFrames: number;
  freeviewRepeats: number;
  skipBrowser: boolean;
  skipKill: boolean;
  ownerAudio: boolean;
  nodeSettle: number;
}

const ASTRONAUT = path.join(ROOT, 'test/fixtures/astronaut.png');

/**
 * The targets of the issue: [field, comparison, value]. Glass-to-glass is the browser path (camera
 * capture → tracker → … → viewer); the Node owner's figure starts at the motion frame, skipping
 * capture and tracking, and is only a diagnostic (diagnostics.glass_to_glass.node_owner_ms_*).
 */
export const TARGETS: readonly [string, '<=' | '>=', number][] = [
  ['uplink_kbps_avatar_at_30fps', '<=', 10],
  ['bandwidth_ratio_at_30fps', '>=', 30],
  ['render_fps_one_core', '>=', 25],
  ['glass_to_glass_browser_ms_p50', '<=', 120],
  ['akd_px', '<=', 3],
  ['identity_cosine', '>=', 0.7],
  ['self_psnr', '>=', 25],
  ['self_ssim', '>=', 0.82],
  ['freeview_apply_ms', '<=', 100],
];

/** Build the browser client only when its sources are newer than dist/client/app.js (others' servers may be serving it). */
async function ensureClient(log: (l: string) => void): Promise<void> {
  let built = 0;
  try {
    built = fs.statSync(path.join(ROOT, 'dist/client/app.js')).mtimeMs;
  } catch {
    // not built
  }
  const sources = newestMtime(['client', 'protocol/src', 'models/face'].map((d) => path.join(ROOT, d)));
  if (built > sources) return;
  log('building the client');
  await buildClient();
}

/**
 * The real default clip, installing Debian's opencv-doc when it is missing and we are root (as the
 * tests install chromium); null with the reason when it cannot be had.
 */
export function ensureRealClip(log: (l: string) => void): { path: string } | { path: null; reason: string } {
  if (fs.existsSync(REAL_DRIVING_CLIP)) return { path: REAL_DRIVING_CLIP };
  if (process.getuid?.() !== 0) return { path: null, reason: `${REAL_DRIVING_CLIP} missing (apt-get install opencv-doc as root)` };
  log('installing opencv-doc (Megamind.avi) with apt-get…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args: string[]): boolean => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
  if (!run(['install', '-y', '-qq', '--no-install-recommends', 'opencv-doc']) && !(run(['update', '-qq']) && run(['install', '-y', '-qq', '--no-install-recommends', 'opencv-doc']))) {
    return { path: null, reason: 'apt-get install opencv-doc failed' };
  }
  return fs.existsSync(REAL_DRIVING_CLIP) ? { path: REAL_DRIVING_CLIP } : { path: null, reason: `opencv-doc installed but ${REAL_DRIVING_CLIP} is missing` };
}

/**
 * Which clip drives the bench and how it is labelled in the JSON (`driving_kind`): a file (--driving
 * PATH, or by default the real clip) is 'real'; 'synthetic' is the generator's own render.
 */
export function resolveDriving(
  driving: KeypointOptions['driving'],
  log: (l: string) => void,
  ensureReal: typeof ensureRealClip = ensureRealClip,
): { file: string | undefined; kind: 'real' | 'synthetic'; note: string | null } {
  if (driving === 'synthetic') return { file: undefined, kind: 'synthetic', note: null };
  if (driving !== undefined) return { file: driving, kind: 'real', note: null };
  const real = ensureReal(log);
  if (real.path !== null) return { file: real.path, kind: 'real', note: null };
  const note = `default real clip unavailable (${real.reason}); fell back to the synthetic clip`;
  log(note);
  return { file: undefined, kind: 'synthetic', note };
}

async function runKeypoint(o: KeypointOptions, log: (line: string) => void): Promise<{ result: Record<string, unknown>; summary: string[] }> {
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
  };
  const unregisterSignals = onTeardown(cleanup);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-kpbench-'));
  cleanups.push(async () => fs.rmSync(tmp, { recursive: true, force: true }));
  const started = performance.now();
  const cores = os.cpus().length;
  const load0 = os.loadavg()[0]!;
  try {
    // ---- driving video and the source photo of the live phases
    let driving: string;
    let cameraY4m: string;
    let drivingLabel: string;
    // 'real': a camera recording (the default Megamind.avi or --driving FILE); 'synthetic': the mesh
    // generator's own render of the photo (self PSNR/SSIM then grade the generator on its own output).
    const { file: drivingFile, kind: drivingKind, note: drivingNote } = resolveDriving(o.driving, log);
    if (drivingFile) {
      driving = drivingFile;
      drivingLabel = drivingFile;
      cameraY4m = path.join(tmp, 'camera.y4m');
      await videoToY4m(drivingFile, cameraY4m, o.cameraSize, o.fps, 20);
    } else {
      // own cache file: the shared cache directory prunes clips of the same size made with other options
      const out = path.join(os.tmpdir(), 'avatar-sfu-kpbench-cache', `driving-${o.cameraSize}-${o.fps}x180-nocode.y4m`);
      fs.mkdirSync(path.dirname(out), { recursive: true });
      const clip = await makeDrivingVideo({ size: o.cameraSize, frames: 180, fps: o.fps, frameCode: false, out });
      driving = cameraY4m = clip.path;
      drivingLabel = `drivingVideo.ts clip of astronaut.png (${o.cameraSize}², ${clip.frames} frames @ ${o.fps})`;
      log(`driving clip ${clip.path}${clip.cached ? ' (cached)' : ` rendered in ${clip.renderMs.toFixed(0)} ms`}`);
    }
    // ---- 1. quality
    log(`quality: ${o.photo ? `photo ${o.photo}` : 'self-reenactment'} driven by ${drivingLabel}`);
    const mq0 = sampleMachine();
    const quality: QualityResult = await runQuality({ photo: o.photo, driving, maxFrames: o.maxFrames, size: KEYPOINT_DEFAULTS.renderSize }, log);
    const qualityLoad = machineLoad(mq0, sampleMachine(), cores);
    // the avatar's photo in the live phases: --photo, else the self-reenactment source frame of a
    // custom driving video, else astronaut.png (the default clip was rendered from it)
    let livePhoto = o.photo ?? ASTRONAUT;
    if (!o.photo && drivingFile && quality.sourcePng) {
      livePhoto = path.join(tmp, 'source-frame.png');
      fs.writeFileSync(livePhoto, quality.sourcePng);
    }
    log(`quality: akd ${quality.akdPx.toFixed(2)} px, identity ${quality.identityCosine.toFixed(3)}, psnr ${quality.selfPsnr?.toFixed(2) ?? '-'} dB, ssim ${quality.selfSsim?.toFixed(3) ?? '-'} (${(quality.elapsedMs / 1000).toFixed(0)} s)`);

    // ---- 2. render / encode cost
    const mc0 = sampleMachine();
    const cost: RenderCost = await measureRenderCost(quality.identity, KEYPOINT_DEFAULTS.renderSize, 25, 3);
    const costLoad = machineLoad(mc0, sampleMachine(), cores);
    log(`render ${cost.renderMsMean.toFixed(2)} ms mean (p95 ${cost.renderMsP95.toFixed(2)}), encode ${cost.encodeMsMean?.toFixed(2) ?? '-'} ms`);

    // ---- 3./4. live
    await ensureClient(log);
    const server = await startServerProcess({ AVATAR_WORKERS: '1' }, path.join(tmp, 'data'), log);
    cleanups.push(() => server.stop());
    log(`server ${server.url} (pid ${server.pid})`);

    let browser: BrowserPhaseResult | null = null;
    let browserLoad: ReturnType<typeof machineLoad> | null = null;
    if (!o.skipBrowser) {
      const { browser: context, close } = await launchChromium({ fakeVideo: cameraY4m, fakeFps: o.fps });
      cleanups.push(close);
      let mb0: MachineSample | undefined;
      browser = await runBrowserPhase({
        url: server.url,
        server,
        context,
        photo: livePhoto,
        cameraSize: o.cameraSize,
        fps: o.fps,
        warmupS: o.warmup,
        rampMaxS: 45,
        seconds: o.seconds,
        log: (l) => {
          if (l.startsWith('page V joined')) mb0 = sampleMachine();
          log(l);
        },
      });
      if (mb0) browserLoad = machineLoad(mb0, sampleMachine(), cores);
      await close();
      log(`browser: avatar ${browser.avatar.wireKbps.toFixed(1)} kbit/s (${browser.avatar.dcMessagesPerS.toFixed(1)} motion frames/s), video ${browser.video.videoPayloadKbps.toFixed(0)} kbit/s`);
    }

    const mn0 = sampleMachine();
    const node: NodePhaseResult = await runNodePhase({ url: server.url, server, photo: livePhoto, seconds: o.seconds, freeviewRepeats: o.freeviewRepeats, killWorker: !o.skipKill, ownerAudio: o.ownerAudio, settleS: o.nodeSettle, log });
    const nodeLoad = machineLoad(mn0, sampleMachine(), cores);
    await cleanup();

    return report(o, { label: drivingLabel, kind: drivingKind, note: drivingNote }, quality, cost, browser, node, { quality: qualityLoad, cost: costLoad, browser: browserLoad, node: nodeLoad, load0, cores, elapsedS: (performance.now() - started) / 1000 });
  } finally {
    await cleanup();
    unregisterSignals();
  }
}

function report(
  o: KeypointOptions,
  drivingInfo: { label: string; kind: 'real' | 'synthetic'; note: string | null },
  q: QualityResult,
  cost: RenderCost,
  b: BrowserPhaseResult | null,
  n: NodePhaseResult,
  env: { quality: ReturnType<typeof machineLoad>; cost: ReturnType<typeof machineLoad>; browser: ReturnType<typeof machineLoad> | null; node: ReturnType<typeof machineLoad>; load0: number; cores: number; elapsedS: number },
): { result: Record<string, unknown>; summary: string[] } {
  const drivingLabel = drivingInfo.label;
  const frameMs = cost.renderMsMean + (cost.encodeMsMean ?? 0);
  const avatarAt30 = b ? (b.avatar.wireBytesPerMessage * 30 * 8) / 1000 : NaN;
  const fv = n.freeview.filter((f) => f.ms !== null).map((f) => f.ms!);
  const fvKinds: Record<string, { p50: number | null; max: number | null; missed: number }> = {};
  for (const kind of new Set(n.freeview.map((f) => f.kind))) {
    const v = n.freeview.filter((f) => f.kind === kind);
    const ms = v.filter((f) => f.ms !== null).map((f) => f.ms!);
    fvKinds[kind] = { p50: num(quantile(ms, 0.5), 0), max: ms.length ? num(Math.max(...ms), 0) : null, missed: v.length - ms.length };
  }
  const result: Record<string, unknown> = {
    suite: 'keypoint',
    photo: o.photo ?? null,
    driving: drivingLabel,
    driving_kind: drivingInfo.kind,
    ...(drivingInfo.note ? { driving_note: drivingInfo.note } : {}),
    seconds: o.seconds,
    ...(o.ownerAudio ? { node_owner_audio: true } : {}),
    camera: `${o.cameraSize}x${o.cameraSize}@${o.fps}`,
    uplink_kbps_avatar: b ? num(b.avatar.wireKbps, 2) : null,
    uplink_kbps_video: b ? num(b.video.videoPayloadKbps, 1) : null,
    bandwidth_ratio: b ? num(b.video.videoPayloadKbps / b.avatar.wireKbps, 1) : null,
    uplink_kbps_avatar_at_30fps: b ? num(avatarAt30, 2) : null,
    bandwidth_ratio_at_30fps: b ? num(b.video.videoPayloadKbps / avatarAt30, 1) : null,
    render_fps_one_core: num(1000 / frameMs, 0),
    render_ms_p95: num(cost.renderMsP95, 2),
    akd_px: num(q.akdPx, 2),
    identity_cosine: num(q.identityCosine, 3),
    self_psnr: q.selfPsnr === null ? null : num(q.selfPsnr, 2),
    self_ssim: q.selfSsim === null ? null : num(q.selfSsim, 3),
    freeview_apply_ms: num(quantile(fv, 0.5), 0),
    glass_to_glass_browser_ms_p50: b?.g2g ? num(b.g2g.p50, 0) : null,
    glass_to_glass_browser_ms_p95: b?.g2g ? num(b.g2g.p95, 0) : null,
    recovery_ms: num(n.recoveryMs, 0),
    diagnostics: {
      uplink: b
        ? {
            motion_frames_per_s: num(b.avatar.dcMessagesPerS, 1),
            motion_frames_accepted_by_worker_per_s: num(b.motionAcceptedPerS, 1),
            motion_channel_buffered_bytes_p50: num(b.motionBufferedP50, 0),
            motion_channel_buffered_bytes_max: num(b.motionBufferedMax, 0),
            avatar_dc_payload_kbps: num(b.avatar.dcPayloadKbps, 2),
            avatar_wire_bytes_per_motion_frame: num(b.avatar.wireBytesPerMessage, 1),
            avatar_audio_kbps_excluded: num(b.avatar.audioWireKbps, 1),
            video_wire_kbps: num(b.video.videoWireKbps, 1),
            bandwidth_ratio_wire_at_30fps: num(b.video.videoWireKbps / avatarAt30, 1),
            video_fps: num(b.video.videoFps, 1),
            video_size: b.video.videoSize,
            video_encode_ms: num(b.video.videoEncodeMs, 2),
            video_target_kbps: num(b.video.videoTargetKbps, 0),
            video_quality_limitation: b.video.videoLimitation,
            video_bitrate_ramp_s: num(b.rampS, 0),
            window_s: num(b.avatar.seconds, 1),
            srtp_cipher: b.avatar.srtpCipher,
            dtls_cipher: b.avatar.dtlsCipher,
            node_owner_30fps: {
              motion_frames_per_s: num(n.ownerUplink.messagesPerS, 1),
              dc_payload_kbps: num(n.ownerUplink.dcPayloadKbps, 2),
              wire_kbps: num(n.ownerUplink.wireKbps, 2),
              wire_bytes_per_motion_frame: num(n.ownerUplink.wireBytesPerMessage, 1),
            },
          }
        : null,
      render: {
        size: KEYPOINT_DEFAULTS.renderSize,
        render_ms_mean: num(cost.renderMsMean, 2),
        render_ms_p50: num(cost.renderMsP50, 2),
        render_only_fps_one_core: num(cost.renderFps, 0),
        vp8_encode_ms_mean: num(cost.encodeMsMean, 2),
        vp8_encoded_frames: cost.encodeFramesMeasured,
        vp8_kbps_at_25fps: num(cost.encodeKbps, 0),
        pipeline_cpu_ms_per_frame: num(cost.pipelineCpuMsPerFrame, 2),
        render_fps_includes_encode: cost.encodeMsMean !== null,
      },
      quality: {
        mode: q.mode,
        source_frame_index: q.mode === 'self' ? q.sourceIndex : null,
        driving_frames: q.drivingFrames,
        driving_size: `${q.drivingWidth}x${q.drivingHeight}`,
        frames_with_face: q.drivenFrames,
        renders_with_face: q.analysedFrames,
        akd_px_p95: num(q.akdPxP95, 2),
        akd_px_max: num(q.akdPxMax, 2),
        identity_cosine_min: num(q.identityCosineMin, 3),
        self_psnr_p5: q.selfPsnrP5 === null ? null : num(q.selfPsnrP5, 2),
        self_psnr_p50: q.selfPsnrP50 === null ? null : num(q.selfPsnrP50, 2),
        tracked_yaw_range_deg: num(q.yawRangeDeg, 1),
        tracked_pitch_range_deg: num(q.pitchRangeDeg, 1),
        tracked_jaw_open_max: num(q.jawOpenMax, 2),
        tracked_blink_max: num(q.blinkMax, 2),
        human_ms_p50: num(q.humanMsP50, 0),
        elapsed_s: num(q.elapsedMs / 1000, 0),
      },
      glass_to_glass: {
        // Node owner: from handing the motion frame to the data channel (no camera, no tracker).
        node_owner_ms_p50: num(quantile(n.g2g, 0.5), 0),
        node_owner_ms_p95: num(quantile(n.g2g, 0.95), 0),
        node_steps: n.g2gSteps,
        node_steps_seen: n.g2g.length,
        node_min_ms: n.g2g.length ? num(Math.min(...n.g2g), 0) : null,
        node_max_ms: n.g2g.length ? num(Math.max(...n.g2g), 0) : null,
        node_ref_noise: num(n.g2gNoise, 2),
        node_viewer_fps: num(n.viewerFps, 1),
        control_continuous_motion_alignment: { p50_ms: num(n.control.p50, 0), p95_ms: num(n.control.p95, 0), steps: n.control.steps, seen: n.control.samples, ref_noise: num(n.control.noise, 2) },
        browser: b?.g2g
          ? { send_to_viewer_ms_p50: num(b.g2g.fromSendP50, 0), send_to_viewer_ms_p95: num(b.g2g.fromSendP95, 0), tracker_latency_ms_p50: num(b.g2g.trackerP50, 0), steps: b.g2g.steps, seen: b.g2g.samples, ref_noise: num(b.g2g.noise, 2), path_distance: num(b.g2g.refDistance, 2), clock_rtt_ms: num(b.g2g.clockRttMs, 2), clock_offset_ms: num(b.g2g.clockOffsetMs, 2) }
          : null,
        browser_tracker_latency_ms_p50: b ? num(b.trackerLatencyMsP50, 0) : null,
        node_viewer_recv: recvDiag(n.viewerRecv),
        browser_viewer_recv: b ? recvDiag(b.viewerRecv) : null,
        browser_viewer_fps: b ? num(b.viewerFps, 1) : null,
      },
      tracker: b?.tracker ? { ...b.tracker, fps: num(b.tracker.fps, 1), cameraFps: num(b.tracker.cameraFps, 1), detectMsP50: num(b.tracker.detectMsP50, 0), detectMsP95: num(b.tracker.detectMsP95, 0), faceFoundRatio: num(b.tracker.faceFoundRatio, 3) } : null,
      freeview: { trials: n.freeview.map((f) => ({ kind: f.kind, ms: num(f.ms, 0), ack_ms: num(f.ackMs, 0) })), by_kind: fvKinds },
      worker_cpu_pct_node_session: num(n.workerCpuPct),
      worker_cpu_pct_browser_session: b ? num(b.workerCpuPct) : null,
      server_cpu_pct_browser_phase: b ? num(b.serverCpuPct) : null,
      server_cpu_pct_node_phase: num(n.serverCpuPct),
      join_as_avatar_ms: b ? num(b.joinMs, 0) : null,
      page_errors: b?.pageErrors ?? [],
      machine: { cores: env.cores, loadavg_1m_at_start: num(env.load0, 2), quality_phase: env.quality, cost_phase: env.cost, browser_phase: env.browser, node_phase: env.node },
      elapsed_s: num(env.elapsedS, 0),
    },
  };
  const targets: Record<string, { value: unknown; target: string; met: boolean | null }> = {};
  for (const [k, cmp, v] of TARGETS) {
    const value = result[k];
    targets[k] = { value, target: `${cmp} ${v}`, met: typeof value === 'number' ? (cmp === '<=' ? value <= v : value >= v) : null };
  }
  result['targets'] = targets;
  const d = result['diagnostics'] as Record<string, unknown>;
  const summary = [
    `keypoint: ${q.mode === 'self' ? 'self-reenactment' : `photo ${o.photo}`}, driving ${drivingLabel} (${drivingInfo.kind})`,
    b
      ? `  uplink         avatar ${result['uplink_kbps_avatar']} kbit/s at ${num(b.avatar.dcMessagesPerS, 1)} motion frames/s (${num(b.avatar.wireBytesPerMessage, 0)} B/frame on the wire, payload ${num(b.avatar.dcPayloadKbps, 2)} kbit/s) → ${result['uplink_kbps_avatar_at_30fps']} kbit/s at 30 fps; video ${result['uplink_kbps_video']} kbit/s (${b.video.videoSize} @ ${num(b.video.videoFps, 1)} fps); ratio ${result['bandwidth_ratio']} (${result['bandwidth_ratio_at_30fps']} at 30 fps)`
      : '  uplink         (browser phase skipped)',
    `  render 256²    ${result['render_fps_one_core']} fps on one core incl. VP8 encode (render+I420 mean ${num(cost.renderMsMean, 2)} ms, p95 ${result['render_ms_p95']} ms; encode ${num(cost.encodeMsMean, 2)} ms)`,
    `  quality        akd ${result['akd_px']} px, identity ${result['identity_cosine']}, self PSNR ${result['self_psnr']} dB, SSIM ${result['self_ssim']} (${q.analysedFrames}/${q.drivingFrames} frames)`,
    `  latency        glass-to-glass (browser path: camera capture, Chromium tracker, …, viewer) p50 ${result['glass_to_glass_browser_ms_p50']} ms, p95 ${result['glass_to_glass_browser_ms_p95']} ms; diagnostic: Node owner from the motion frame p50 ${num(quantile(n.g2g, 0.5), 0)} ms, p95 ${num(quantile(n.g2g, 0.95), 0)} ms (${n.g2g.length}/${n.g2gSteps} steps)` + (b ? ` (viewer jitter buffer ${num(b.viewerRecv.jitterBufferMs, 0)} ms vs ${num(n.viewerRecv.jitterBufferMs, 0)} ms in the Node phase)` : ''),
    `  free view      ${result['freeview_apply_ms']} ms median (${n.freeview.map((f) => (f.ms === null ? 'miss' : f.ms.toFixed(0))).join(', ')})`,
    `  recovery       ${result['recovery_ms']} ms after killing the only worker`,
    `  CPU            worker ${d['worker_cpu_pct_node_session']} % of a core (one session, Node phase); machine ${JSON.stringify(env.node)} in the Node phase, ${JSON.stringify(env.browser)} in the browser phase`,
    `  targets        ${Object.entries(targets).map(([k, t]) => `${k} ${t.met === null ? '?' : t.met ? 'ok' : 'MISSED'}`).join(', ')}`,
  ];
  return { result, summary };
}

function recvDiag(r: { jitterBufferMs: number; decodeMs: number; framesDropped: number; nacks: number; plis: number; packetsLost: number }): Record<string, number | null> {
  return { jitter_buffer_ms: num(r.jitterBufferMs, 0), decode_ms: num(r.decodeMs, 2), frames_dropped: r.framesDropped, nacks: r.nacks, plis: r.plis, packets_lost: r.packetsLost };
}

function fileOption(values: Record<string, string | boolean | undefined>, key: string): string | undefined {
  const v = values[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !fs.existsSync(v) || !fs.statSync(v).isFile()) throw new UsageError(`--${key}=${String(v)}: no such file`);
  return path.resolve(v);
}

export const keypointSuite: Suite<KeypointOptions> = {
  name: 'keypoint',
  summary: 'keypoint avatar: uplink vs camera video, render cost, quality (akd, identity, self PSNR/SSIM), free view and glass-to-glass latency',
  needsLoopbackNetns: true,
  options: {
    photo: { type: 'string' },
    driving: { type: 'string' },
    seconds: { type: 'string', short: 's' },
    'camera-size': { type: 'string' },
    fps: { type: 'string' },
    warmup: { type: 'string' },
    'max-frames': { type: 'string' },
    'freeview-repeats': { type: 'string' },
    'skip-browser': { type: 'boolean', default: false },
    'skip-kill': { type: 'boolean', default: false },
    'owner-audio': { type: 'boolean', default: false },
    'node-settle': { type: 'string' },
  },
  usage: [
    '--photo PATH        source photo (PNG/JPEG); without it the driving video\'s first frame is the source (self-reenactment: self_psnr/self_ssim)',
    `--driving VIDEO     any video ffmpeg reads, or "synthetic" (the test/helpers/drivingVideo.ts clip the mesh generator renders from astronaut.png); also the fake camera (square crop). Default: ${REAL_DRIVING_CLIP} (Debian opencv-doc, installed with apt-get when root)`,
    `--seconds S         uplink window and glass-to-glass window (default ${KEYPOINT_DEFAULTS.seconds})`,
    `--camera-size N     fake camera side, square (default ${KEYPOINT_DEFAULTS.cameraSize}); --fps F (default ${KEYPOINT_DEFAULTS.fps})`,
    `--warmup S          at least this long after both pages send before the uplink window (default ${KEYPOINT_DEFAULTS.warmup}); it also waits (≤ 45 s) until the camera page's bitrate stops growing`,
    `--max-frames N      driving frames analysed for quality (default ${KEYPOINT_DEFAULTS.maxFrames})`,
    `--freeview-repeats N  cycles of default→+25°→−25°→default (default ${KEYPOINT_DEFAULTS.freeviewRepeats})`,
    '--skip-browser      no Chromium phase (no uplink numbers); --skip-kill: do not kill the worker',
    '--owner-audio       the Node owner also publishes an audio track (like a browser in avatar mode; see README: the viewer then delays the avatar video)',
    '--node-settle S     seconds between the Node viewer\'s first frames and the glass-to-glass window (default 0)',
  ],
  parse(values) {
    const o: KeypointOptions = {
      photo: fileOption(values, 'photo'),
      driving: values['driving'] === 'synthetic' ? 'synthetic' : fileOption(values, 'driving'),
      seconds: intOption(values, 'seconds', KEYPOINT_DEFAULTS.seconds, 2, 600),
      cameraSize: intOption(values, 'camera-size', KEYPOINT_DEFAULTS.cameraSize, 128, 1080),
      fps: intOption(values, 'fps', KEYPOINT_DEFAULTS.fps, 5, 60),
      warmup: intOption(values, 'warmup', KEYPOINT_DEFAULTS.warmup, 0, 120),
      maxFrames: intOption(values, 'max-frames', KEYPOINT_DEFAULTS.maxFrames, 2, 10_000),
      freeviewRepeats: intOption(values, 'freeview-repeats', KEYPOINT_DEFAULTS.freeviewRepeats, 1, 20),
      skipBrowser: values['skip-browser'] === true,
      skipKill: values['skip-kill'] === true,
      ownerAudio: values['owner-audio'] === true,
      nodeSettle: intOption(values, 'node-settle', 0, 0, 600),
    };
    if (o.cameraSize % 2) throw new UsageError('--camera-size must be even');
    return o;
  },
  run: runKeypoint,
};
