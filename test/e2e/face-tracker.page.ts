/**
 * Browser side of test/e2e/face-tracker.test.ts (bundled by the test with esbuild, code splitting
 * on, so the tracker arrives through loadFaceTracker()'s lazy chunk exactly as on the call page).
 * Exposes `window.faceTest`; every result is plain JSON.
 */
import { loadFaceTracker } from '../../client/src/avatar/loadFaceTracker.ts';
import type { BackendSelection, FaceTrackerStats } from '../../client/src/avatar/loadFaceTracker.ts';
import { decodeMotionFrame, encodeMotionFrame } from '../../protocol/src/motion.ts';
import { decodeFrameCode, frameCodeRect } from '../helpers/frameCode.ts';

export interface TrackedFrame {
  seq: number;
  captureMs: number;
  /** performance.now() timeline, for intervals */
  emittedAt: number;
  yaw: number;
  pitch: number;
  roll: number;
  tx: number;
  ty: number;
  scale: number;
  expression: number[];
  rawYaw: number;
  rawExpression: number[];
  bytes: number;
  roundTripOk: boolean;
  mediaTime: number | null;
  latencyMs: number;
  calibrating: boolean;
  /** clip frame index read from the analysed frame's pixels (null if unreadable) */
  clipFrame: number | null;
}

export interface TrackResult {
  frames: TrackedFrame[];
  stats: FaceTrackerStats;
  /** stats() after the first ~40 % of the run (tensor count there vs at the end: no leak) */
  midStats: FaceTrackerStats;
  faceEvents: { at: number; present: boolean }[];
  trackSettings: MediaTrackSettings;
  startedAt: number;
}

async function load(backend: 'auto' | 'webgl' | 'wasm' = 'auto'): Promise<BackendSelection> {
  const mod = await loadFaceTracker();
  const engine = await mod.loadFaceEngine({ backend });
  return engine.selection;
}

/** Reads the clip's frame-index code from the frame the tracker is analysing (same callback). */
function frameCodeReader(): (video: HTMLVideoElement) => number | null {
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  return (video) => {
    const [x, y, w, h] = frameCodeRect(video.videoHeight);
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    ctx.drawImage(video, x, y, w, h, 0, 0, w, h);
    const px = ctx.getImageData(0, 0, w, h).data;
    return decodeFrameCode((cx, cy) => px[(cy * w + cx) * 4]!);
  };
}

async function track(durationMs: number): Promise<TrackResult> {
  const { FaceTracker } = await loadFaceTracker();
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  const tracker = await FaceTracker.create({ stream, frameTag: frameCodeReader() });
  const frames: TrackedFrame[] = [];
  const faceEvents: { at: number; present: boolean }[] = [];
  tracker.onFace((present) => faceEvents.push({ at: performance.now(), present }));
  tracker.onMotion((f, info) => {
    const bytes = encodeMotionFrame(f);
    let roundTripOk = false;
    try {
      const d = decodeMotionFrame(bytes);
      roundTripOk = d.seq === f.seq && d.captureMs === f.captureMs && Math.abs(d.pose.yaw - f.pose.yaw) < 1e-3;
    } catch {
      roundTripOk = false;
    }
    frames.push({
      seq: f.seq,
      captureMs: f.captureMs,
      emittedAt: performance.now(),
      yaw: f.pose.yaw,
      pitch: f.pose.pitch,
      roll: f.pose.roll,
      tx: f.pose.tx,
      ty: f.pose.ty,
      scale: f.pose.scale,
      expression: Array.from(f.expression),
      rawYaw: info.raw.pose.yaw,
      rawExpression: Array.from(info.raw.expression),
      bytes: bytes.length,
      roundTripOk,
      mediaTime: info.mediaTime,
      latencyMs: info.latencyMs,
      calibrating: info.calibrating,
      clipFrame: typeof info.tag === 'number' ? info.tag : null,
    });
  });
  const startedAt = performance.now();
  tracker.start();
  await new Promise((r) => setTimeout(r, durationMs * 0.4));
  const midStats = tracker.stats();
  await new Promise((r) => setTimeout(r, durationMs * 0.6));
  const stats = tracker.stats();
  tracker.close();
  const trackSettings = stream.getVideoTracks()[0]!.getSettings();
  for (const t of stream.getTracks()) t.stop();
  return { frames, stats, midStats, faceEvents, trackSettings, startedAt };
}

/** Track a camera-like stream that shows no face (a slowly changing gray canvas). */
async function trackNoFace(durationMs: number): Promise<{ motionFrames: number; faceEvents: boolean[]; stats: FaceTrackerStats }> {
  const { FaceTracker } = await loadFaceTracker();
  const canvas = document.createElement('canvas');
  canvas.width = 320;
  canvas.height = 240;
  const ctx = canvas.getContext('2d')!;
  let n = 0;
  const paint = setInterval(() => {
    n++;
    ctx.fillStyle = `rgb(${100 + (n % 50)}, 110, 120)`;
    ctx.fillRect(0, 0, 320, 240);
    ctx.fillStyle = '#333';
    ctx.fillRect(40 + (n % 100), 60, 60, 60);
  }, 33);
  const stream = canvas.captureStream(30);
  const tracker = await FaceTracker.create({ stream });
  let motionFrames = 0;
  const faceEvents: boolean[] = [];
  tracker.onMotion(() => motionFrames++);
  tracker.onFace((p) => faceEvents.push(p));
  tracker.start();
  await new Promise((r) => setTimeout(r, durationMs));
  const stats = tracker.stats();
  tracker.close();
  clearInterval(paint);
  for (const t of stream.getTracks()) t.stop();
  return { motionFrames, faceEvents, stats };
}

declare global {
  interface Window {
    faceTest: { load: typeof load; track: typeof track; trackNoFace: typeof trackNoFace; ready: true };
  }
}

window.faceTest = { load, track, trackNoFace, ready: true };
