/**
 * ClipTracker: a pool of worker threads, each running Human (server/src/avatar/face/human-node.ts,
 * wasm backend) on the frames it is sent, so face tracking of a clip never blocks the caller's
 * event loop and uses up to `threads` cores.
 *
 * Human's tfjs-wasm backend has no threads in Node (NOTES), so parallelism comes from one Human per
 * worker. Frames go to the worker with the fewest jobs in flight; each job has its own promise,
 * so the caller gets results per frame and can keep them in frame order. Human is run with caching
 * off (createFaceAnalyzer sets skipFrames 0, cacheSensitivity 0): every frame is analysed from
 * scratch, so which worker got a frame does not change its result.
 *
 * A worker that crashes fails its jobs and every later one (the pool is not repaired: offline
 * preprocessing is simply retried). close() terminates all workers and fails pending jobs.
 */
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type { FromTrackWorker, ToTrackWorker } from './trackMessages.ts';

export interface TrackedFace {
  /** 478 × [x, y, z]: x, y in frame pixels, z in Human's raw units */
  landmarks: Float32Array;
  /** Human's detector box: x, y, width, height in pixels */
  box: [number, number, number, number];
  score: number;
}

export interface ClipTrackerOptions {
  /** worker threads (default 1) */
  threads?: number;
  /** most faces per frame (default 4) */
  maxFaces?: number;
  /** time limit for the workers to load Human, ms (default 60 000) */
  startTimeoutMs?: number;
  signal?: AbortSignal;
}

const BOOTSTRAP = new URL('../../../../models/worker-bootstrap.mjs', import.meta.url);
const ENTRY = new URL('./trackWorker.ts', import.meta.url).href;

interface Job {
  resolve: (faces: TrackedFace[]) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Job>;
  dead: Error | null;
}

export class ClipTracker {
  readonly threads: number;
  private readonly slots: Slot[];
  private nextId = 1;
  private closed = false;
  private loaded = 0;

  private constructor(slots: Slot[]) {
    this.slots = slots;
    this.threads = slots.length;
  }

  /** wall time until every worker had loaded Human, ms */
  get loadMs(): number {
    return this.loaded;
  }

  /** Start the workers and resolve once every one has loaded Human's models (~1-2 s). */
  static async create(opts: ClipTrackerOptions = {}): Promise<ClipTracker> {
    const threads = opts.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new TypeError(`threads must be an integer in 1..64, got ${String(threads)}`);
    const maxFaces = opts.maxFaces ?? 4;
    if (!Number.isInteger(maxFaces) || maxFaces < 1) throw new TypeError(`maxFaces must be a positive integer, got ${String(maxFaces)}`);
    const t0 = performance.now();
    const slots: Slot[] = [];
    const ready: Promise<void>[] = [];
    for (let i = 0; i < threads; i++) {
      const w = new Worker(BOOTSTRAP, { workerData: { entry: ENTRY, maxFaces }, execArgv: [], name: `clip-track-${i}` });
      const slot: Slot = { worker: w, jobs: new Map(), dead: null };
      slots.push(slot);
      ready.push(new Promise<void>((resolve, reject) => {
        const onMessage = (m: FromTrackWorker): void => {
          if (m.type === 'ready') { cleanup(); resolve(); }
          else if (m.type === 'fatal') { cleanup(); reject(new Error(`clip tracker worker failed to start: ${m.message}`)); }
        };
        const onError = (e: Error): void => { cleanup(); reject(new Error(`clip tracker worker failed to start: ${e.message}`, { cause: e })); };
        const onExit = (code: number): void => { cleanup(); reject(new Error(`clip tracker worker exited (${code}) while starting`)); };
        const cleanup = (): void => { w.off('message', onMessage); w.off('error', onError); w.off('exit', onExit); };
        w.on('message', onMessage);
        w.on('error', onError);
        w.on('exit', onExit);
      }));
    }
    // the permanent handlers go on at once: a worker 'error' with no listener would crash the process
    const tracker = new ClipTracker(slots);
    for (const slot of slots) tracker.watch(slot);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const startTimeoutMs = opts.startTimeoutMs ?? 60000;
    const stop = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`clip tracker workers did not load Human within ${startTimeoutMs} ms`)), startTimeoutMs);
      onAbort = () => reject(Object.assign(new Error('clip tracker start aborted'), { name: 'AbortError' }));
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([Promise.all(ready), stop]);
    } catch (e) {
      await tracker.close();
      throw e;
    } finally {
      clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
      stop.catch(() => undefined);
      for (const r of ready) r.catch(() => undefined);
    }
    tracker.loaded = performance.now() - t0;
    return tracker;
  }

  private watch(slot: Slot): void {
    const fail = (err: Error): void => {
      slot.dead ??= err;
      for (const job of slot.jobs.values()) job.reject(slot.dead);
      slot.jobs.clear();
    };
    slot.worker.on('message', (m: FromTrackWorker) => {
      if (m.type === 'result') {
        const job = slot.jobs.get(m.id);
        if (!job) return;
        slot.jobs.delete(m.id);
        job.resolve(m.faces);
      } else if (m.type === 'error') {
        const job = slot.jobs.get(m.id);
        if (!job) return;
        slot.jobs.delete(m.id);
        job.reject(new Error(`face tracking failed: ${m.message}`));
      }
    });
    slot.worker.on('error', (e) => fail(new Error(`clip tracker worker crashed: ${e.message}`, { cause: e })));
    slot.worker.on('exit', (code) => fail(new Error(this.closed ? 'clip tracker closed' : `clip tracker worker exited (${code})`)));
  }

  /** Jobs not yet answered, over all workers. */
  get pending(): number {
    let n = 0;
    for (const s of this.slots) n += s.jobs.size;
    return n;
  }

  /**
   * Faces in an RGB24 (3 channels) or RGBA frame, largest box first. The pixel buffer is moved to
   * the worker (the caller's view is detached afterwards) when it covers its whole ArrayBuffer.
   */
  detect(pixels: Uint8Array, width: number, height: number, channels: 3 | 4 = 3): Promise<TrackedFace[]> {
    if (this.closed) return Promise.reject(new Error('clip tracker is closed'));
    if (!(pixels instanceof Uint8Array)) throw new TypeError('pixels must be a Uint8Array');
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new TypeError(`bad frame size ${width}×${height}`);
    if (pixels.length < width * height * channels) throw new TypeError(`pixel buffer too small for ${width}×${height}×${channels}`);
    const live = this.slots.filter((s) => !s.dead);
    if (live.length === 0) return Promise.reject(this.slots[0]?.dead ?? new Error('clip tracker has no workers'));
    let slot = live[0]!;
    for (const s of live) if (s.jobs.size < slot.jobs.size) slot = s;
    const id = this.nextId++;
    return new Promise<TrackedFace[]>((resolve, reject) => {
      slot.jobs.set(id, { resolve, reject });
      const whole = pixels.buffer instanceof ArrayBuffer && pixels.byteOffset === 0 && pixels.byteLength === pixels.buffer.byteLength;
      const msg: ToTrackWorker = { type: 'detect', id, pixels, width, height, channels };
      slot.worker.postMessage(msg, whole ? [pixels.buffer as ArrayBuffer] : []);
    });
  }

  /** Terminate every worker (idempotent); jobs still pending fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('clip tracker closed');
    for (const s of this.slots) {
      for (const job of s.jobs.values()) job.reject(err);
      s.jobs.clear();
      s.dead ??= err;
    }
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
