/**
 * Browser face tracker: camera MediaStream → Human (478 landmarks) → head pose + expression code
 * → smoothed motion frames (protocol/src/motion.ts) for the keypoint avatar.
 *
 * Loaded lazily (see loadFaceTracker.ts): this module pulls in Human's browser build with tfjs
 * (1.56 MB minified, 420 KB gzip) and then ~4.9 MB of model files (blazeface, facemesh, iris) and a
 * 415 KB wasm binary, none of which the plain call page must pay for.
 *
 * The parts live next to it: faceEngine.ts (Human, the tfjs backend choice, model loading),
 * TrackingLoop.ts (camera frames → detections, dropping frames while one runs),
 * NeutralCalibration.ts (the resting-face reference) and TrackerStats.ts (counters, stats()).
 * This class turns each detection into a smoothed motion frame.
 *
 * No face → no motion frame (nothing is emitted, `onFace(false)` fires once). Faces with a low mesh
 * score, too small, or producing non-finite numbers count as "no face": no garbage goes out.
 *
 * Smoothing: one One-Euro filter per channel (yaw, pitch, roll, tx, ty, ln scale, 12 expression
 * coefficients), parameters from each channel's measured jitter so that the filter adds at most one
 * frame of lag to any real motion (rule and numbers in motionFilter.ts and OneEuroFilter.ts). Filters
 * run on the capture timestamps, are reset when the face is lost and after calibration.
 */
import type { FaceResult, Result } from '@vladmandic/human';
import { EXPRESSION_SIZE, LANDMARK_COUNT, landmarksToMotion, type Motion, type NeutralReference } from '../../../models/face/expression-code.ts';
import type { MotionFrame } from '../../../protocol/src/motion.ts';
import { OneEuroBank } from './OneEuroFilter.ts';
import { WIRE_LIMITS as MOTION_LIMITS, motionFilterParams, type JitterRule, type MotionChannel } from './motionFilter.ts';
import { loadFaceEngine, type FaceBackend, type FaceEngine, type FaceEngineOptions } from './faceEngine.ts';
import { NeutralCalibration } from './NeutralCalibration.ts';
import { TrackerStats, type FaceTrackerStats } from './TrackerStats.ts';
import { TrackingLoop, type AnalysedFrame, type TrackingLoopOptions } from './TrackingLoop.ts';

export type { MotionFrame } from '../../../protocol/src/motion.ts';
export type { NeutralReference } from '../../../models/face/expression-code.ts';
export { DEFAULT_MOTION_JITTER, MOTION_CHANNELS, motionFilterParams, type JitterRule, type MotionChannel } from './motionFilter.ts';
export {
  DEFAULT_MODEL_BASE_URL, DEFAULT_WASM_BASE_URL, loadFaceEngine,
  type BackendChoice, type BackendSelection, type FaceBackend, type FaceEngine, type FaceEngineOptions,
} from './faceEngine.ts';
export type { FaceTrackerStats } from './TrackerStats.ts';

export interface FaceTrackerOptions extends FaceEngineOptions, TrackingLoopOptions {
  /** camera stream (its first video track is read) */
  stream?: MediaStream;
  /** or a playing <video>; with a MediaStream srcObject the stream is read through a private element */
  video?: HTMLVideoElement;
  /** duration of the automatic neutral calibration after start(), ms (default 500; 0 = off) */
  autoCalibrateMs?: number;
  /**
   * Smoothing (motionFilter.ts): per-channel jitter overrides and/or the rule turning jitter into
   * One-Euro parameters; `false` turns smoothing off.
   */
  filter?: false | { jitter?: Partial<Record<MotionChannel, number>>; rule?: JitterRule };
  /** minimum mesh confidence (Human's faceScore) for a face to count, default 0.5 */
  minFaceScore?: number;
  /** minimum inter-ocular distance in pixels for a face to count, default 12 */
  minIodPx?: number;
  /** re-run the face detector (blazeface) at least this often while tracking, ms (default 1000) */
  redetectMs?: number;
}

export interface MotionInfo {
  /** ms from the frame's capture to the motion being ready (copy + detection + filtering) */
  latencyMs: number;
  /** ms spent in detection (tensor copy + Human) */
  detectMs: number;
  /** Human's mesh confidence */
  faceScore: number;
  /** the motion before smoothing */
  raw: Motion;
  /** rVFC metadata of the frame (mediaTime: media timestamp in seconds; presentedFrames) */
  mediaTime: number | null;
  presentedFrames: number | null;
  /** true while the frame belongs to a (automatic or requested) neutral calibration window */
  calibrating: boolean;
  /** what options.frameTag returned for this frame */
  tag: unknown;
}

type MotionListener = (frame: MotionFrame, info: MotionInfo) => void;
type FaceListener = (present: boolean) => void;

const clamp = (v: number, l: number) => (v > l ? l : v < -l ? -l : v);

export class FaceTracker {
  private readonly video: HTMLVideoElement;
  private readonly ownsVideo: boolean;
  private closed = false;
  private seq = 0;
  private readonly calibration = new NeutralCalibration();
  private readonly filters: OneEuroBank | null;
  private readonly motionListeners = new Set<MotionListener>();
  private readonly faceListeners = new Set<FaceListener>();
  private facePresent: boolean | null = null;
  private readonly channel = new Float64Array(6 + EXPRESSION_SIZE);
  private readonly counters = new TrackerStats();
  private readonly loop: TrackingLoop;

  private constructor(
    readonly engine: FaceEngine,
    video: HTMLVideoElement,
    ownsVideo: boolean,
    private readonly opts: FaceTrackerOptions,
  ) {
    this.video = video;
    this.ownsVideo = ownsVideo;
    const f = opts.filter;
    this.filters = f === false ? null : new OneEuroBank(motionFilterParams(f?.jitter, f?.rule));
    const h = engine.human;
    const redetect = opts.redetectMs ?? 1000;
    h.config.face.detector = { ...h.config.face.detector!, skipTime: redetect, skipFrames: Math.max(1, Math.round(redetect / 33)) };
    this.loop = new TrackingLoop(video, engine, opts, this.counters, {
      onResult: (res, frame) => this.onResult(res, frame),
      onError: (err) => this.fail(err),
    });
  }

  /** Load the engine (if not yet) and attach to a camera stream or video element. */
  static async create(opts: FaceTrackerOptions): Promise<FaceTracker> {
    if (!opts.stream && !opts.video) throw new Error('FaceTracker.create: pass a stream or a video element');
    const enginePending = loadFaceEngine(opts);
    let video: HTMLVideoElement;
    let owns = true;
    const src = opts.stream ?? (opts.video!.srcObject instanceof MediaStream ? opts.video!.srcObject : null);
    if (src) {
      if (src.getVideoTracks().length === 0) throw new Error('FaceTracker.create: the stream has no video track');
      video = document.createElement('video');
      video.muted = true;
      video.playsInline = true;
      video.autoplay = true;
      video.srcObject = src;
    } else {
      video = opts.video!;
      owns = false;
    }
    const engine = await enginePending;
    if (owns) await video.play().catch(() => undefined);
    return new FaceTracker(engine, video, owns, opts);
  }

  get backend(): FaceBackend {
    return this.engine.backend;
  }

  /** The neutral reference in use (null before the first calibrated frame). */
  get neutral(): NeutralReference | null {
    return this.calibration.reference;
  }

  /** Use a stored neutral reference (e.g. from a previous session); null = calibrate again. */
  setNeutral(ref: NeutralReference | null): void {
    this.calibration.reference = ref;
    this.filters?.reset();
  }

  onMotion(fn: MotionListener): () => void {
    this.motionListeners.add(fn);
    return () => this.motionListeners.delete(fn);
  }

  /** Called with false when the face is lost (no motion frames follow) and true when it is back. */
  onFace(fn: FaceListener): () => void {
    this.faceListeners.add(fn);
    return () => this.faceListeners.delete(fn);
  }

  /**
   * Take the neutral (resting face) reference from the next `durationMs` of face-found frames.
   * Frames keep flowing against the previous reference until it completes. Rejects after
   * `durationMs + 5 s` without enough face frames, or when the tracker stops.
   */
  calibrateNeutral(durationMs = 500): Promise<NeutralReference> {
    if (!this.loop.running) return Promise.reject(new Error('calibrateNeutral: tracker is not running'));
    return this.calibration.request(durationMs);
  }

  start(): void {
    if (this.closed) throw new Error('FaceTracker: closed');
    if (this.loop.running) return;
    this.counters.reset();
    this.facePresent = null;
    this.filters?.reset();
    this.calibration.startAutomatic(this.opts.autoCalibrateMs ?? 500);
    if (this.video.paused) void this.video.play().catch(() => undefined);
    this.loop.start();
  }

  /** Stop analysing (the camera keeps running; it belongs to the caller). */
  stop(): void {
    this.loop.stop();
    this.calibration.cancel(new Error('calibrateNeutral: tracker stopped'));
  }

  /** stop() and release the private video element. The engine stays loaded for the page. */
  close(): void {
    this.stop();
    this.closed = true;
    if (this.ownsVideo) {
      this.video.pause();
      this.video.srcObject = null;
    }
    this.motionListeners.clear();
    this.faceListeners.clear();
  }

  stats(): FaceTrackerStats {
    return this.counters.snapshot(this.engine.backend, this.calibration.reference !== null && !this.calibration.active, this.engine.tf.engine().memory().numTensors);
  }

  // ---- detections → motion frames ----

  private fail(err: unknown): void {
    this.counters.errors++;
    if (this.counters.errors <= 3) console.warn('face tracker: detection failed', err);
  }

  private setFace(present: boolean): void {
    if (this.facePresent === present) return;
    this.facePresent = present;
    if (!present) this.filters?.reset();
    for (const fn of this.faceListeners) {
      try {
        fn(present);
      } catch (err) {
        console.error(err);
      }
    }
  }

  private usableFace(res: Result): { face: FaceResult; landmarks: Float32Array } | null {
    if (res.error) return null;
    const face = res.face?.[0];
    if (!face || !face.mesh || face.mesh.length < LANDMARK_COUNT) return null;
    if (!(face.faceScore >= (this.opts.minFaceScore ?? 0.5))) return null;
    const lm = new Float32Array(LANDMARK_COUNT * 3);
    for (let i = 0; i < LANDMARK_COUNT; i++) {
      const p = face.mesh[i]!;
      // Human truncates pixel coordinates to integers: +0.5 removes the bias (as in human-node.ts)
      lm[i * 3] = p[0] + 0.5;
      lm[i * 3 + 1] = p[1] + 0.5;
      lm[i * 3 + 2] = p[2] ?? 0;
    }
    for (let i = 0; i < lm.length; i++) if (!Number.isFinite(lm[i]!)) return null;
    const iod = Math.hypot(lm[263 * 3]! - lm[33 * 3]!, lm[263 * 3 + 1]! - lm[33 * 3 + 1]!);
    if (!(iod >= (this.opts.minIodPx ?? 12))) return null;
    return { face, landmarks: lm };
  }

  private onResult(res: Result, { captureTime, detectMs, meta, tag }: AnalysedFrame): void {
    const usable = this.usableFace(res);
    if (!usable) {
      this.setFace(false);
      return;
    }
    let motion: Motion;
    let calibrating = false;
    try {
      // neutral calibration window
      const c = this.calibration.addFrame(usable.landmarks, captureTime);
      calibrating = c.calibrating;
      if (c.completed) this.filters?.reset();
      const neutral = this.calibration.reference;
      motion = landmarksToMotion(usable.landmarks, neutral ? { neutral } : {});
    } catch (err) {
      this.fail(err);
      this.setFace(false);
      return;
    }
    const p = motion.pose;
    const ch = this.channel;
    ch[0] = p.yaw; ch[1] = p.pitch; ch[2] = p.roll; ch[3] = p.tx; ch[4] = p.ty; ch[5] = Math.log(p.scale);
    for (let i = 0; i < EXPRESSION_SIZE; i++) ch[6 + i] = motion.expression[i]!;
    for (let i = 0; i < ch.length; i++) {
      if (!Number.isFinite(ch[i]!)) {
        this.setFace(false);
        return;
      }
    }
    this.counters.withFace++;
    this.setFace(true);
    this.filters?.filter(ch, captureTime / 1000);
    const expression = new Float32Array(EXPRESSION_SIZE);
    for (let i = 0; i < EXPRESSION_SIZE; i++) expression[i] = clamp(ch[6 + i]!, MOTION_LIMITS.expression);
    const frame: MotionFrame = {
      seq: this.seq,
      captureMs: Math.round(performance.timeOrigin + captureTime) >>> 0,
      pose: {
        yaw: clamp(ch[0]!, MOTION_LIMITS.angle),
        pitch: clamp(ch[1]!, MOTION_LIMITS.angle),
        roll: clamp(ch[2]!, MOTION_LIMITS.angle),
        tx: clamp(ch[3]!, MOTION_LIMITS.translation),
        ty: clamp(ch[4]!, MOTION_LIMITS.translation),
        scale: Math.exp(clamp(ch[5]!, MOTION_LIMITS.logScale)),
      },
      expression,
    };
    this.seq = (this.seq + 1) >>> 0;
    this.counters.emitted++;
    const info: MotionInfo = {
      latencyMs: performance.now() - captureTime,
      detectMs,
      faceScore: usable.face.faceScore,
      raw: motion,
      mediaTime: meta?.mediaTime ?? null,
      presentedFrames: meta?.presentedFrames ?? null,
      calibrating,
      tag,
    };
    for (const fn of this.motionListeners) {
      try {
        fn(frame, info);
      } catch (err) {
        console.error(err);
      }
    }
  }
}
