/**
 * The face engine of the browser tracker: Human with its models loaded and warmed up on the chosen
 * tfjs backend (FaceTracker.ts uses it; loaded lazily with it, see loadFaceTracker.ts).
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
 */
import { Human } from '@vladmandic/human';
import type { Config } from '@vladmandic/human';
import { median } from './median.ts';

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

/** The tfjs functions the tracker uses (Human types `human.tf` as any). */
export interface TfLike {
  getBackend(): string;
  browser: { fromPixels(px: HTMLVideoElement | HTMLCanvasElement, channels?: number): TensorLike };
  dispose(t: TensorLike | TensorLike[]): void;
  engine(): { memory(): { numTensors: number } };
}
export interface TensorLike {
  dispose(): void;
  shape: number[];
}

export interface FaceEngine {
  readonly human: Human;
  readonly backend: FaceBackend;
  readonly selection: BackendSelection;
  readonly tf: TfLike;
}

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
