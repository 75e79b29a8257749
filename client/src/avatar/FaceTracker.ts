/**
 * Browser face tracker: camera MediaStream → Human (478 landmarks) → head pose + expression code
 * → smoothed motion frames (protocol/src/motion.ts) for the keypoint avatar.
 *
 * Loaded lazily (see loadFaceTracker.ts): this module pulls in Human's browser build with tfjs
 * (1.56 MB minified, 420 KB gzip) and then ~4.9 MB of model files (blazeface, facemesh, iris) and a
 * 415 KB wasm binary, none of which the plain call page must pay for.
 *
 * Engine
 * ------
 * Human and tfjs are page-wide singletons, so the engine (Human instance, backend, loaded models)
 * is created once per page (`loadFaceEngine`, also called by `FaceTracker.create`). Model files and
 * wasm binaries come from OUR server (`modelBaseUrl`, `wasmBaseUrl`; server/src/http/vendorAssets.ts
 * serves them), never from a CDN: Human's CDN defaults are overwritten before anything loads.
 *
 * Backend ('auto'): 'webgl' on a real GPU; 'wasm' without WebGL or when WebGL is a software
 * rasteriser (SwiftShader, llvmpipe: e.g. headless Chromium with --disable-gpu). Measured in
 * headless Chromium 156 with SwiftShader on a 2-core machine: webgl needs ~6–8 s for the first
 * detection and then 1.5–4 s per frame on Human's built-in image (5 s per 480² camera frame in the
 * tracking loop); wasm (SIMD, single thread: the page is not cross-origin isolated) needs ~35–50 ms
 * on the built-in image and 25–56 ms p50 per camera frame in the loop (23 fps on a quiet machine,
 * 11–14 fps with other work running). That is 30–100× apart, so the software case takes wasm
 * without re-measuring (`benchmark: true` measures both and keeps the faster). With 'auto', if the
 * chosen backend fails to initialise the other is tried. The choice, the reason and the timings
 * are in `engine.selection`.
 *
 * Capture loop
 * ------------
 * requestVideoFrameCallback on a private <video> element (tfjs writes width/height attributes on
 * the elements it reads, so the caller's self-view element is never used directly). At each new
 * camera frame: if the previous detection is still running the frame is DROPPED (counted), never
 * queued; otherwise the frame is copied into a tensor synchronously inside the callback (so the
 * pixels are exactly the frame that the timestamp describes) and detection runs asynchronously.
 * captureMs = performance.timeOrigin + the frame's capture time (rVFC `captureTime` when the browser
 * gives it for camera frames, otherwise performance.now() in the callback), modulo 2^32.
 *
 * Neutral reference
 * -----------------
 * Expressions and tx/ty/scale are measured against the user's resting face. The first
 * `autoCalibrateMs` (500 ms) of face-found frames after start() build it automatically (per-feature
 * median over the frames, so a blink inside the window does not count); frames in that window are
 * emitted against the median so far. `calibrateNeutral()` re-does it on request.
 *
 * No face → no motion frame (nothing is emitted, `onFace(false)` fires once). Faces with a low mesh
 * score, too small, or producing non-finite numbers count as "no face": no garbage goes out.
 *
 * Smoothing: one One-Euro filter per channel (yaw, pitch, roll, tx, ty, ln scale, 12 expression
 * coefficients), parameters from each channel's measured jitter so that the filter adds at most one
 * frame of lag to any real motion (rule and numbers in motionFilter.ts and OneEuroFilter.ts). Filters
 * run on the capture timestamps, are reset when the face is lost and after calibration.
 */
import { Human } from '@vladmandic/human';
import type { Config, FaceResult, Result } from '@vladmandic/human';
import {
  EXPRESSION_SIZE, LANDMARK_COUNT, computeNeutralReference, landmarksToMotion,
  type Motion, type NeutralReference,
} from '../../../models/face/expression-code.ts';
import type { MotionFrame } from '../../../protocol/src/motion.ts';
import { OneEuroBank } from './OneEuroFilter.ts';
import { WIRE_LIMITS as MOTION_LIMITS, motionFilterParams, type JitterRule, type MotionChannel } from './motionFilter.ts';

export type { MotionFrame } from '../../../protocol/src/motion.ts';
export type { NeutralReference } from '../../../models/face/expression-code.ts';
export { DEFAULT_MOTION_JITTER, MOTION_CHANNELS, motionFilterParams, type JitterRule, type MotionChannel } from './motionFilter.ts';

export type FaceBackend = 'webgl' | 'wasm';
export type BackendChoice = FaceBackend | 'auto';

export const DEFAULT_MODEL_BASE_URL = '/vendor/human/models/';
export const DEFAULT_WASM_BASE_URL = '/vendor/tfjs-wasm/';

export interface FaceEngineOptions {
  /** where Human's *.json/*.bin live (default '/vendor/human/models/') */
  modelBaseUrl?: string;
  /** where tfjs-backend-wasm's *.wasm live (default '/vendor/tfjs-wasm/') */
  wasmBaseUrl?: string;
  /** default 'auto' (see file comment) */
  backend?: BackendChoice;
  /**
   * With backend 'auto' and a software WebGL (SwiftShader, llvmpipe): time both backends on Human's
   * built-in face image and keep the faster, instead of taking wasm directly. Costs ~12 s on a
   * 2-core machine (SwiftShader compiles ~6 s and then runs ~1.5 s per frame), default false.
   */
  benchmark?: boolean;
  /** timed runs per backend when benchmarking (default 3, after 1 warm-up run) */
  benchmarkRuns?: number;
}

export interface BackendSelection {
  backend: FaceBackend;
  reason: string;
  /** UNMASKED_RENDERER_WEBGL, or null without WebGL */
  webglRenderer: string | null;
  /** median ms per detection on Human's built-in face image, per backend measured */
  benchmarkMs: Partial<Record<FaceBackend, number>>;
  /** first (compile/upload) run, ms */
  firstRunMs: Partial<Record<FaceBackend, number>>;
  /** time from loadFaceEngine() to ready, ms */
  loadMs: number;
}

/** The tfjs functions this module uses (Human types `human.tf` as any). */
interface TfLike {
  getBackend(): string;
  browser: { fromPixels(px: HTMLVideoElement | HTMLCanvasElement, channels?: number): TensorLike };
  dispose(t: TensorLike | TensorLike[]): void;
  engine(): { memory(): { numTensors: number } };
}
interface TensorLike {
  dispose(): void;
  shape: number[];
}

export interface FaceEngine {
  readonly human: Human;
  readonly backend: FaceBackend;
  readonly selection: BackendSelection;
  readonly tf: TfLike;
}

export interface FaceTrackerOptions extends FaceEngineOptions {
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
  /** skip camera frames so that at most this many are analysed per second (default: camera rate) */
  maxFps?: number;
  /** re-run the face detector (blazeface) at least this often while tracking, ms (default 1000) */
  redetectMs?: number;
  /**
   * Called synchronously for every analysed frame, right after its pixels were copied, with the
   * private <video> showing exactly that frame; the return value comes back as MotionInfo.tag.
   * For frame ids, latency probes and tests (keep it cheap: it runs in the capture callback).
   */
  frameTag?: (video: HTMLVideoElement, meta: VideoFrameCallbackMetadata | null) => unknown;
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

export interface FaceTrackerStats {
  backend: FaceBackend;
  /** motion-producing analyses per second over the last 2 s (face found or not) */
  fps: number;
  /** camera frames per second over the last 2 s (from rVFC presentedFrames where available) */
  cameraFps: number;
  /** detection time (tensor copy + Human), ms, over the last 120 analyses */
  detectMsP50: number;
  detectMsP95: number;
  /** share of analysed frames with a usable face since start() */
  faceFoundRatio: number;
  framesCaptured: number;
  framesAnalysed: number;
  /**
   * camera frames not analysed because detection was busy (or maxFps): callbacks skipped plus
   * frames the browser presented without a callback (main thread busy), from rVFC presentedFrames
   */
  framesDropped: number;
  framesWithFace: number;
  motionFramesEmitted: number;
  errors: number;
  calibrated: boolean;
  tensors: number;
}

type MotionListener = (frame: MotionFrame, info: MotionInfo) => void;
type FaceListener = (present: boolean) => void;

// ---------------------------------------------------------------------------------------------
// engine
// ---------------------------------------------------------------------------------------------

let enginePromise: Promise<FaceEngine> | null = null;
let engineOpts: (FaceEngineOptions & { modelBaseUrl: string; wasmBaseUrl: string; backend: BackendChoice }) | null = null;

function withSlash(u: string): string {
  return u.endsWith('/') ? u : u + '/';
}

/** Absolute URL (Human joins modelBasePath + file name; tfjs-wasm prefixes the wasm file name). */
function absolute(u: string): string {
  return withSlash(new URL(u, document.baseURI).href);
}

function webglInfo(): { available: boolean; renderer: string | null; software: boolean } {
  try {
    const c = document.createElement('canvas');
    const gl = (c.getContext('webgl2') ?? c.getContext('webgl')) as WebGLRenderingContext | null;
    if (!gl) return { available: false, renderer: null, software: false };
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    const software = /swiftshader|llvmpipe|softpipe|software|basic render|mesa offscreen/i.test(renderer);
    return { available: true, renderer, software };
  } catch {
    return { available: false, renderer: null, software: false };
  }
}

function humanConfig(o: Required<Pick<FaceEngineOptions, 'modelBaseUrl' | 'wasmBaseUrl'>>, backend: FaceBackend): Partial<Config> {
  const off = { enabled: false };
  const cfg = {
    backend,
    modelBasePath: absolute(o.modelBaseUrl),
    wasmPath: absolute(o.wasmBaseUrl),
    wasmPlatformFetch: false,
    // the HTTP cache (long max-age from vendorAssets.ts) already keeps the files; IndexedDB copies
    // would outlive a model upgrade
    cacheModels: false,
    validateModels: true,
    debug: false,
    async: true,
    warmup: 'none',
    // > 0 lets Human reuse the mesh-derived face box instead of re-running the detector on every
    // frame (MediaPipe-style tracking: faster and steadier). 0.7 = Human's default input-change
    // threshold; skipFrames/skipTime below bound how long a box is reused.
    cacheSensitivity: 0.7,
    deallocate: false,
    filter: { enabled: false, equalization: false, autoBrightness: false, return: false, flip: false, width: 0, height: 0 },
    face: {
      enabled: true,
      detector: { enabled: true, rotation: true, maxDetected: 1, skipFrames: 30, skipTime: 1000, minConfidence: 0.3, return: false, mask: false },
      mesh: { enabled: true, keepInvalid: false },
      iris: { enabled: true },
      attention: off,
      emotion: off,
      description: off,
      antispoof: off,
      liveness: off,
      gear: off,
    },
    body: off,
    hand: off,
    object: off,
    gesture: off,
    segmentation: off,
  };
  return cfg as unknown as Partial<Config>;
}

async function switchBackend(human: Human, backend: FaceBackend): Promise<boolean> {
  human.config.backend = backend;
  try {
    await human.init();
  } catch {
    return false;
  }
  return (human.tf as TfLike).getBackend() === backend;
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function timeWarmups(human: Human, runs: number): Promise<{ first: number; median: number }> {
  let t = performance.now();
  await human.warmup({ warmup: 'face' } as Partial<Config>);
  const first = performance.now() - t;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    t = performance.now();
    await human.warmup({ warmup: 'face' } as Partial<Config>);
    times.push(performance.now() - t);
  }
  return { first, median: median(times) };
}

async function createEngine(opts: FaceEngineOptions): Promise<FaceEngine> {
  const t0 = performance.now();
  const urls = { modelBaseUrl: opts.modelBaseUrl ?? DEFAULT_MODEL_BASE_URL, wasmBaseUrl: opts.wasmBaseUrl ?? DEFAULT_WASM_BASE_URL };
  const choice = opts.backend ?? 'auto';
  const gl = webglInfo();
  const runs = Math.max(1, opts.benchmarkRuns ?? 3);
  const benchmarkMs: Partial<Record<FaceBackend, number>> = {};
  const firstRunMs: Partial<Record<FaceBackend, number>> = {};
  let backend: FaceBackend;
  let reason: string;
  let toBenchmark: FaceBackend[] = [];
  if (choice !== 'auto') {
    backend = choice;
    reason = 'requested';
  } else if (!gl.available) {
    backend = 'wasm';
    reason = 'no WebGL';
  } else if (!gl.software) {
    backend = 'webgl';
    reason = 'hardware WebGL';
  } else if (opts.benchmark) {
    backend = 'wasm';
    reason = 'software WebGL: benchmarked';
    toBenchmark = ['wasm', 'webgl'];
  } else {
    // measured (headless Chromium 156, SwiftShader, 2 cores): webgl ~1.5 s per frame, wasm ~50 ms
    backend = 'wasm';
    reason = 'software WebGL: wasm';
  }
  const human = new Human(humanConfig(urls, toBenchmark[0] ?? backend));
  // Human's constructor set CDN defaults; make sure ours stand (mergeDeep above already did).
  human.config.modelBasePath = absolute(urls.modelBaseUrl);
  human.config.wasmPath = absolute(urls.wasmBaseUrl);
  if (toBenchmark.length > 0) {
    for (const b of toBenchmark) {
      if (!(await switchBackend(human, b))) continue;
      await human.load();
      const r = await timeWarmups(human, runs);
      firstRunMs[b] = Math.round(r.first);
      benchmarkMs[b] = Math.round(r.median * 10) / 10;
    }
    const measured = (Object.entries(benchmarkMs) as [FaceBackend, number][]).sort((a, b) => a[1] - b[1]);
    if (measured.length === 0) throw new Error('face tracker: no tfjs backend could be initialised');
    backend = measured[0]![0];
    if ((human.tf as TfLike).getBackend() !== backend && !(await switchBackend(human, backend))) {
      throw new Error(`face tracker: could not switch back to the ${backend} backend`);
    }
    await human.warmup({ warmup: 'face' } as Partial<Config>);
  } else {
    if (!(await switchBackend(human, backend))) {
      const fallback: FaceBackend = backend === 'webgl' ? 'wasm' : 'webgl';
      if (choice !== 'auto' || !(await switchBackend(human, fallback))) throw new Error(`face tracker: cannot initialise the ${backend} backend`);
      reason = `${backend} failed to initialise`;
      backend = fallback;
    }
    await human.load();
    const r = await timeWarmups(human, 1);
    firstRunMs[backend] = Math.round(r.first);
    benchmarkMs[backend] = Math.round(r.median * 10) / 10;
  }
  human.config.warmup = 'none' as Config['warmup'];
  const selection: BackendSelection = { backend, reason, webglRenderer: gl.renderer, benchmarkMs, firstRunMs, loadMs: Math.round(performance.now() - t0) };
  return { human, backend, selection, tf: human.tf as TfLike };
}

/**
 * Create (once per page) and return the face engine: Human with its models loaded and warmed up
 * on the chosen backend. Call early (e.g. while the user types a room name) to hide the model
 * load (~1–3 s). Later calls return the same engine; options left out match whatever the first
 * call used, options that contradict it are an error (tfjs is a page-wide singleton).
 */
export function loadFaceEngine(opts: FaceEngineOptions = {}): Promise<FaceEngine> {
  if (enginePromise && engineOpts) {
    const first = engineOpts;
    const clash = (['modelBaseUrl', 'wasmBaseUrl', 'backend'] as const).filter((k) => opts[k] !== undefined && opts[k] !== first[k]);
    if (clash.length > 0) return Promise.reject(new Error(`face engine already loaded with ${JSON.stringify(first)}; conflicting ${clash.join(', ')}`));
    return enginePromise;
  }
  const resolved = { ...opts, modelBaseUrl: opts.modelBaseUrl ?? DEFAULT_MODEL_BASE_URL, wasmBaseUrl: opts.wasmBaseUrl ?? DEFAULT_WASM_BASE_URL, backend: opts.backend ?? 'auto' };
  engineOpts = resolved;
  const p = createEngine(resolved);
  enginePromise = p;
  p.catch(() => {
    if (enginePromise === p) {
      enginePromise = null;
      engineOpts = null;
    }
  });
  return p;
}

// ---------------------------------------------------------------------------------------------
// tracker
// ---------------------------------------------------------------------------------------------

/** Per-component median of neutral references (robust to a blink or a word inside the window). */
function medianNeutral(refs: NeutralReference[]): NeutralReference {
  const n = refs[0]!.features.length;
  const features = new Float32Array(n);
  for (let i = 0; i < n; i++) features[i] = median(refs.map((r) => r.features[i]!));
  const center: [number, number, number] = [0, 1, 2].map((k) => median(refs.map((r) => r.center[k]!))) as [number, number, number];
  return { features, center, scale: median(refs.map((r) => r.scale)) };
}

const clamp = (v: number, l: number) => (v > l ? l : v < -l ? -l : v);

interface Calibration {
  untilMs: number | null;
  durationMs: number;
  refs: NeutralReference[];
  resolve?: (r: NeutralReference) => void;
  reject?: (e: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
}

export class FaceTracker {
  private readonly video: HTMLVideoElement;
  private readonly ownsVideo: boolean;
  private running = false;
  private busy = false;
  private closed = false;
  private rvfcHandle: number | null = null;
  private fallbackTimer: ReturnType<typeof setTimeout> | null = null;
  private seq = 0;
  private neutralRef: NeutralReference | null = null;
  private calibration: Calibration | null = null;
  private readonly filters: OneEuroBank | null;
  private readonly motionListeners = new Set<MotionListener>();
  private readonly faceListeners = new Set<FaceListener>();
  private facePresent: boolean | null = null;
  private lastAnalysedAt = -Infinity;
  private lastMediaTime = -1;
  private lastPresented: number | null = null;
  private readonly presentedAt: [number, number][] = [];
  private readonly channel = new Float64Array(6 + EXPRESSION_SIZE);
  // stats
  private captured = 0;
  private analysed = 0;
  private dropped = 0;
  private withFace = 0;
  private emitted = 0;
  private errors = 0;
  private readonly detectTimes: number[] = [];
  private readonly analysedAt: number[] = [];
  private readonly capturedAt: number[] = [];

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
    return this.neutralRef;
  }

  /** Use a stored neutral reference (e.g. from a previous session); null = calibrate again. */
  setNeutral(ref: NeutralReference | null): void {
    this.neutralRef = ref;
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
    if (!this.running) return Promise.reject(new Error('calibrateNeutral: tracker is not running'));
    this.cancelCalibration(new Error('calibrateNeutral: superseded by a new calibration'));
    return new Promise<NeutralReference>((resolve, reject) => {
      const c: Calibration = { untilMs: null, durationMs, refs: [], resolve, reject };
      c.timer = setTimeout(() => {
        if (this.calibration === c) {
          this.calibration = null;
          reject(new Error('calibrateNeutral: no face long enough to calibrate'));
        }
      }, durationMs + 5000);
      this.calibration = c;
    });
  }

  start(): void {
    if (this.closed) throw new Error('FaceTracker: closed');
    if (this.running) return;
    this.running = true;
    this.captured = this.analysed = this.dropped = this.withFace = this.emitted = this.errors = 0;
    this.detectTimes.length = this.analysedAt.length = this.capturedAt.length = this.presentedAt.length = 0;
    this.lastPresented = null;
    this.facePresent = null;
    this.filters?.reset();
    const auto = this.opts.autoCalibrateMs ?? 500;
    if (!this.neutralRef && auto > 0 && !this.calibration) this.calibration = { untilMs: null, durationMs: auto, refs: [] };
    if (this.video.paused) void this.video.play().catch(() => undefined);
    this.schedule();
  }

  /** Stop analysing (the camera keeps running; it belongs to the caller). */
  stop(): void {
    this.running = false;
    if (this.rvfcHandle !== null && 'cancelVideoFrameCallback' in this.video) this.video.cancelVideoFrameCallback(this.rvfcHandle);
    this.rvfcHandle = null;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = null;
    this.cancelCalibration(new Error('calibrateNeutral: tracker stopped'));
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
    const now = performance.now();
    const rate = (ts: number[]) => {
      const recent = ts.filter((t) => t > now - 2000);
      if (recent.length < 2) return 0;
      return ((recent.length - 1) * 1000) / (recent[recent.length - 1]! - recent[0]!);
    };
    const pr = this.presentedAt.filter(([t]) => t > now - 2000);
    const cameraFps = pr.length >= 2 ? ((pr[pr.length - 1]![1] - pr[0]![1]) * 1000) / (pr[pr.length - 1]![0] - pr[0]![0]) : rate(this.capturedAt);
    const sorted = [...this.detectTimes].sort((a, b) => a - b);
    const pct = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);
    return {
      backend: this.engine.backend,
      fps: rate(this.analysedAt),
      cameraFps,
      detectMsP50: pct(0.5),
      detectMsP95: pct(0.95),
      faceFoundRatio: this.analysed ? this.withFace / this.analysed : 0,
      framesCaptured: this.captured,
      framesAnalysed: this.analysed,
      framesDropped: this.dropped,
      framesWithFace: this.withFace,
      motionFramesEmitted: this.emitted,
      errors: this.errors,
      calibrated: this.neutralRef !== null && this.calibration === null,
      tensors: this.engine.tf.engine().memory().numTensors,
    };
  }

  // ---- capture loop ----

  private schedule(): void {
    if (!this.running) return;
    if ('requestVideoFrameCallback' in this.video) {
      this.rvfcHandle = this.video.requestVideoFrameCallback((_now, meta) => this.onFrame(meta));
    } else {
      // no rVFC (old browsers): poll for a new frame at ~60 Hz using currentTime
      this.fallbackTimer = setTimeout(() => {
        const mt = this.video.currentTime;
        if (mt !== this.lastMediaTime && this.video.readyState >= 2) {
          this.lastMediaTime = mt;
          this.onFrame(null);
        } else {
          this.schedule();
        }
      }, 16);
    }
  }

  private push(arr: number[], v: number, max: number): void {
    arr.push(v);
    if (arr.length > max) arr.splice(0, arr.length - max);
  }

  private onFrame(meta: VideoFrameCallbackMetadata | null): void {
    if (!this.running) return;
    this.schedule();
    const pnow = performance.now();
    this.captured++;
    this.push(this.capturedAt, pnow, 240);
    const presented = meta?.presentedFrames;
    if (typeof presented === 'number') {
      // frames presented while no callback could run (main thread busy) were never analysed
      if (this.lastPresented !== null && presented > this.lastPresented + 1) this.dropped += presented - this.lastPresented - 1;
      this.lastPresented = presented;
      this.presentedAt.push([pnow, presented]);
      if (this.presentedAt.length > 240) this.presentedAt.splice(0, this.presentedAt.length - 240);
    }
    const maxFps = this.opts.maxFps;
    if (this.busy || (maxFps && pnow - this.lastAnalysedAt < 1000 / maxFps - 4)) {
      this.dropped++;
      return;
    }
    const w = this.video.videoWidth, h = this.video.videoHeight;
    if (!w || !h || this.video.readyState < 2) return;
    // the frame's capture time: the camera's own timestamp when the browser reports it (in the
    // performance.now() timeline), else now; never a time in the future
    const ct = meta?.captureTime;
    const captureTime = typeof ct === 'number' && Number.isFinite(ct) && ct <= pnow + 1 && ct > pnow - 1000 ? ct : pnow;
    this.busy = true;
    this.lastAnalysedAt = pnow;
    const t0 = performance.now();
    let input: TensorLike;
    try {
      // synchronous copy of exactly this frame
      input = this.engine.tf.browser.fromPixels(this.video, 3);
    } catch (err) {
      this.busy = false;
      this.fail(err);
      return;
    }
    let tag: unknown;
    try {
      tag = this.opts.frameTag?.(this.video, meta);
    } catch (err) {
      console.error(err);
    }
    this.engine.human
      .detect(input as unknown as Parameters<Human['detect']>[0])
      .then((res) => this.onResult(res, captureTime, t0, meta, tag))
      .catch((err) => this.fail(err))
      .finally(() => {
        this.engine.tf.dispose(input);
        this.busy = false;
      });
  }

  private fail(err: unknown): void {
    this.errors++;
    if (this.errors <= 3) console.warn('face tracker: detection failed', err);
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

  private onResult(res: Result, captureTime: number, t0: number, meta: VideoFrameCallbackMetadata | null, tag: unknown): void {
    const detectMs = performance.now() - t0;
    this.analysed++;
    this.push(this.detectTimes, detectMs, 120);
    this.push(this.analysedAt, performance.now(), 240);
    if (!this.running) return;
    const usable = this.usableFace(res);
    if (!usable) {
      this.setFace(false);
      return;
    }
    let motion: Motion;
    let calibrating = false;
    try {
      // neutral calibration window
      const c = this.calibration;
      if (c) {
        calibrating = true;
        if (c.untilMs === null) c.untilMs = captureTime + c.durationMs;
        c.refs.push(computeNeutralReference(usable.landmarks));
        const done = captureTime >= c.untilMs && c.refs.length >= 3;
        if (done || !c.resolve || !this.neutralRef) {
          // automatic calibration (or no reference yet): use the median so far right away
          this.neutralRef = medianNeutral(c.refs);
        }
        if (done) {
          this.calibration = null;
          if (c.timer) clearTimeout(c.timer);
          this.filters?.reset();
          c.resolve?.(this.neutralRef);
        }
      }
      motion = landmarksToMotion(usable.landmarks, this.neutralRef ? { neutral: this.neutralRef } : {});
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
    this.withFace++;
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
    this.emitted++;
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

  private cancelCalibration(err: Error): void {
    const c = this.calibration;
    if (!c) return;
    if (c.timer) clearTimeout(c.timer);
    this.calibration = null;
    c.reject?.(err);
  }
}
