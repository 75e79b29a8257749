/**
 * EnrollmentService: runs enrollIdentityFromPhoto (decode + Human face detection, 0.5-2 s of CPU)
 * in a worker thread so the SFU's event loop keeps forwarding media while a photo is enrolled.
 *
 * - One worker, one enrollment at a time; further requests wait in a bounded FIFO queue
 *   (`maxQueue` waiting; one more is refused with AppError BUSY / 503).
 * - Each enrollment has a time limit (`timeoutMs`, counted from when the worker starts it, not
 *   while it waits in the queue): past it the request fails with TIMEOUT / 504 and the worker is
 *   terminated (Human cannot be interrupted) and replaced for the next job.
 * - When the worker dies on its own (crash, out of memory), the enrollment it was running fails
 *   with INTERNAL / 500 (it is not retried: the photo may be what killed it) and the worker is
 *   restarted once. If the replacement dies too before finishing an enrollment, the service
 *   gives up: queued and later requests fail with AVATAR_UNAVAILABLE / 503. A successful
 *   enrollment restores the restart allowance.
 * - The worker is started on the first request, or by `create({ preload: true })`, which resolves
 *   once Human's models are loaded.
 *
 * mediasoup-style lifecycle: `EnrollmentService.create(options)`, idempotent `close()`, methods
 * throw InvalidStateError after close, TypeError on bad arguments.
 */
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { AppError, InvalidStateError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import { EnrollError, type EnrolledIdentity } from './enroll.ts';
import { FACE_TRIANGLES } from '../../../../models/face/topology.ts';
import type { FromWorker, ToWorker } from './enrollMessages.ts';

export interface EnrollmentServiceOptions {
  /** largest photo in bytes (default 10 MiB) */
  maxPhotoBytes?: number;
  /** largest photo in pixels (default 16 777 216 = 4096²) */
  maxPhotoPixels?: number;
  /** time limit of one enrollment in the worker, ms (default 20 000) */
  timeoutMs?: number;
  /** enrollments that may wait behind the running one (default 8) */
  maxQueue?: number;
  /** start the worker now and resolve once its models are loaded (default false: on first use) */
  preload?: boolean;
  /** time limit for the worker to load its models, ms (default 60 000) */
  startTimeoutMs?: number;
  /** side of the enrolled square texture (default 512) */
  textureSize?: number;
  /**
   * Scheduling priority (nice, 0-19) of the worker thread on Linux (default 10): enrollment yields
   * the CPU to media forwarding on a busy machine. 0 leaves it at normal priority.
   */
  workerNice?: number;
  logger?: Logger;
}

export interface EnrollResult {
  identity: EnrolledIdentity;
  /** the enrolled crop (identity.texture) encoded as PNG, for previews/placeholders */
  cropPng: Uint8Array;
  /** time spent in the worker on this photo (decode, detection, crop, PNG), ms */
  enrollMs: number;
  /** time spent waiting in the queue (including a worker start), ms */
  queuedMs: number;
}

export interface EnrollmentStats {
  running: boolean;
  queued: number;
  completed: number;
  failed: number;
  timeouts: number;
  workerStarts: number;
  workerCrashes: number;
}

interface Job {
  bytes: Uint8Array;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  enqueuedAt: number;
  resolve: (r: EnrollResult) => void;
  reject: (e: unknown) => void;
}

interface Running {
  job: Job;
  jobId: number;
  startedAt: number;
  timer: NodeJS.Timeout;
}

interface WorkerHandle {
  worker: Worker;
  ready: Promise<void>;
  /** set when we terminate it ourselves (timeout, close): its exit is not a crash */
  retiring: boolean;
  isReady: boolean;
  /** OS thread id and scheduling priority, once ready (Linux) */
  tid: number | null;
  nice: number | null;
}

const BOOTSTRAP = new URL('../../../../models/worker-bootstrap.mjs', import.meta.url);
const WORKER_ENTRY = new URL('./enrollWorker.ts', import.meta.url).href;

function positiveInt(name: string, v: unknown, def: number, min = 1): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new TypeError(`${name} must be an integer ≥ ${min}`);
  return v;
}

function enrollErrorToApp(code: string | undefined, message: string): AppError {
  switch (code) {
    case 'NO_FACE': return new AppError('NO_FACE', message);
    case 'FACE_TOO_SMALL': return new AppError('FACE_TOO_SMALL', message);
    case 'TOO_LARGE': return new AppError('PAYLOAD_TOO_LARGE', message);
    case 'BAD_IMAGE': return new AppError('BAD_IMAGE', message);
    default: return new AppError('INTERNAL', `enrollment failed: ${message}`);
  }
}

export class EnrollmentService {
  private readonly maxPhotoBytes: number;
  private readonly maxPhotoPixels: number;
  private readonly timeoutMs: number;
  private readonly maxQueue: number;
  private readonly startTimeoutMs: number;
  private readonly textureSize: number | undefined;
  private readonly workerNice: number;
  private readonly logger: Logger | undefined;
  private readonly queue: Job[] = [];
  private handle: WorkerHandle | null = null;
  private running: Running | null = null;
  private nextJobId = 1;
  private closed_ = false;
  /** worker deaths since the last successful enrollment */
  private crashesSinceSuccess = 0;
  private failedReason: string | null = null;
  private readonly stats_: EnrollmentStats = { running: false, queued: 0, completed: 0, failed: 0, timeouts: 0, workerStarts: 0, workerCrashes: 0 };

  static async create(options: EnrollmentServiceOptions = {}): Promise<EnrollmentService> {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const svc = new EnrollmentService(options);
    if (options.preload) {
      try {
        await svc.ensureWorker().ready;
      } catch (err) {
        svc.close();
        throw err;
      }
    }
    return svc;
  }

  private constructor(o: EnrollmentServiceOptions) {
    this.maxPhotoBytes = positiveInt('maxPhotoBytes', o.maxPhotoBytes, 10 * 1024 * 1024);
    this.maxPhotoPixels = positiveInt('maxPhotoPixels', o.maxPhotoPixels, 16_777_216);
    this.timeoutMs = positiveInt('timeoutMs', o.timeoutMs, 20_000);
    this.maxQueue = positiveInt('maxQueue', o.maxQueue, 8, 0);
    this.startTimeoutMs = positiveInt('startTimeoutMs', o.startTimeoutMs, 60_000);
    this.textureSize = o.textureSize === undefined ? undefined : positiveInt('textureSize', o.textureSize, 512, 64);
    this.workerNice = positiveInt('workerNice', o.workerNice, 10, 0);
    if (this.workerNice > 19) throw new TypeError('workerNice must be ≤ 19');
    this.logger = o.logger;
  }

  get closed(): boolean {
    return this.closed_;
  }

  /** Counters for metrics and tests (a copy). */
  get stats(): EnrollmentStats {
    return { ...this.stats_, running: this.running !== null, queued: this.queue.length };
  }

  /** Thread id of the current worker (null when none is running); changes when it is replaced. */
  get workerThreadId(): number | null {
    return this.handle ? this.handle.worker.threadId : null;
  }

  /** The ready worker's OS thread id and nice value (Linux; nulls elsewhere or before it is ready). */
  get workerScheduling(): { tid: number | null; nice: number | null } | null {
    return this.handle?.isReady ? { tid: this.handle.tid, nice: this.handle.nice } : null;
  }

  /**
   * Enroll one photo (PNG or JPEG bytes). Rejects with AppError: BUSY 503 (queue full),
   * TIMEOUT 504, NO_FACE / FACE_TOO_SMALL 422, BAD_IMAGE 400, PAYLOAD_TOO_LARGE 413,
   * INTERNAL 500 (worker crashed), AVATAR_UNAVAILABLE 503 (worker keeps dying), or the signal's
   * reason when `signal` aborts before the job starts (a started job runs to its end; its result
   * is then dropped).
   */
  enroll(bytes: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<EnrollResult> {
    if (this.closed_) return Promise.reject(new InvalidStateError('EnrollmentService closed'));
    if (!(bytes instanceof Uint8Array)) return Promise.reject(new TypeError('bytes must be a Uint8Array'));
    if (opts === null || typeof opts !== 'object') return Promise.reject(new TypeError('opts must be an object'));
    const { signal } = opts;
    if (signal !== undefined && !(signal instanceof AbortSignal)) return Promise.reject(new TypeError('opts.signal must be an AbortSignal'));
    if (bytes.length === 0) return Promise.reject(new AppError('BAD_IMAGE', 'empty photo'));
    if (bytes.length > this.maxPhotoBytes) return Promise.reject(new AppError('PAYLOAD_TOO_LARGE', `photo is ${bytes.length} bytes, limit ${this.maxPhotoBytes}`));
    if (this.failedReason) return Promise.reject(new AppError('AVATAR_UNAVAILABLE', this.failedReason));
    if (signal?.aborted) return Promise.reject(signal.reason);
    // capacity: the running job (or the one waiting for the worker to start) + maxQueue waiting
    if (this.queue.length + (this.running ? 1 : 0) > this.maxQueue) {
      return Promise.reject(new AppError('BUSY', `enrollment queue is full (${this.maxQueue} waiting); try again later`));
    }
    return new Promise<EnrollResult>((resolve, reject) => {
      // own copy: the worker receives it by transfer, and the caller's buffer may be pooled
      const job: Job = { bytes: new Uint8Array(bytes), signal, onAbort: undefined, enqueuedAt: performance.now(), resolve, reject };
      if (signal) {
        job.onAbort = () => {
          const i = this.queue.indexOf(job);
          if (i >= 0) {
            this.queue.splice(i, 1);
            reject(signal.reason);
            this.updateRef();
          }
        };
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.pump();
    });
  }

  /** Stop the worker; queued and running enrollments fail with InvalidStateError. Idempotent. */
  close(): void {
    if (this.closed_) return;
    this.closed_ = true;
    const err = new InvalidStateError('EnrollmentService closed');
    if (this.running) {
      clearTimeout(this.running.timer);
      this.settle(this.running.job, err);
      this.running = null;
    }
    for (const job of this.queue.splice(0)) this.settle(job, err);
    this.retireWorker();
  }

  /** Terminate the current worker as if it had crashed (tests of the restart path). */
  async simulateWorkerCrashForTesting(): Promise<void> {
    const h = this.handle;
    if (!h) return;
    await h.worker.terminate();
  }

  /** The worker keeps the process alive only while there is work (or while it starts). */
  private updateRef(): void {
    const h = this.handle;
    if (!h) return;
    if (this.running || this.queue.length > 0 || !h.isReady) h.worker.ref();
    else h.worker.unref();
  }

  private settle(job: Job, result: EnrollResult | unknown, ok = false): void {
    if (job.signal && job.onAbort) job.signal.removeEventListener('abort', job.onAbort);
    if (ok) job.resolve(result as EnrollResult);
    else job.reject(result);
  }

  private ensureWorker(): WorkerHandle {
    if (this.handle) return this.handle;
    this.stats_.workerStarts++;
    const worker = new Worker(BOOTSTRAP, { workerData: { entry: WORKER_ENTRY, nice: this.workerNice }, execArgv: [], name: 'avatar-enroll' });
    let onReady!: () => void;
    let onFail!: (e: unknown) => void;
    const ready = new Promise<void>((res, rej) => {
      onReady = res;
      onFail = rej;
    });
    ready.catch(() => undefined); // observed through pump()
    const handle: WorkerHandle = { worker, ready, retiring: false, isReady: false, tid: null, nice: null };
    this.handle = handle;
    let lastError: Error | undefined;
    const startTimer = setTimeout(() => {
      // terminating without `retiring`: the exit counts as a crash
      lastError = new Error(`enrollment worker did not start within ${this.startTimeoutMs} ms`);
      void worker.terminate();
    }, this.startTimeoutMs);
    startTimer.unref();
    worker.on('message', (msg: FromWorker) => {
      if (msg.type === 'ready') {
        clearTimeout(startTimer);
        this.logger?.info({ loadMs: Math.round(msg.loadMs), threadId: worker.threadId, nice: msg.nice }, 'enrollment worker ready');
        handle.isReady = true;
        handle.nice = msg.nice;
        handle.tid = msg.threadTid;
        onReady();
        this.updateRef();
        return;
      }
      this.onResult(handle, msg);
    });
    worker.on('error', (err) => {
      lastError = err;
      this.logger?.error({ err }, 'enrollment worker error');
    });
    worker.on('exit', (code) => {
      clearTimeout(startTimer);
      onFail(new AppError('INTERNAL', `enrollment worker stopped during startup (exit code ${code})${lastError ? `: ${lastError.message}` : ''}`));
      this.onExit(handle, code, lastError);
    });
    return handle;
  }

  private retireWorker(): void {
    const h = this.handle;
    if (!h) return;
    h.retiring = true;
    this.handle = null;
    void h.worker.terminate();
  }

  private onExit(h: WorkerHandle, code: number, lastError: Error | undefined): void {
    if (h.retiring) return;
    if (this.handle === h) this.handle = null;
    this.stats_.workerCrashes++;
    this.crashesSinceSuccess++;
    this.logger?.warn({ code, err: lastError, crashesSinceSuccess: this.crashesSinceSuccess }, 'enrollment worker died');
    if (this.running) {
      clearTimeout(this.running.timer);
      this.stats_.failed++;
      this.settle(this.running.job, new AppError('INTERNAL', `enrollment worker died (exit code ${code})${lastError ? `: ${lastError.message}` : ''}`));
      this.running = null;
    }
    if (this.crashesSinceSuccess > 1) {
      // the one restart was used and the replacement died too
      this.failedReason = `enrollment worker keeps dying (last exit code ${code}); enrollment is unavailable until the server restarts`;
      this.logger?.error({ code }, 'enrollment disabled: worker died again after its restart');
      const err = new AppError('AVATAR_UNAVAILABLE', this.failedReason);
      for (const job of this.queue.splice(0)) {
        this.stats_.failed++;
        this.settle(job, err);
      }
      return;
    }
    if (!this.closed_) {
      // the restart: start the replacement now, so it is warm for the next request
      this.ensureWorker();
      this.pump();
    }
  }

  private onResult(h: WorkerHandle, msg: FromWorker): void {
    const run = this.running;
    if (h !== this.handle || !run || msg.type === 'ready' || msg.jobId !== run.jobId) return; // stale
    clearTimeout(run.timer);
    this.running = null;
    // the worker answered: it is healthy, whatever the photo was
    this.crashesSinceSuccess = 0;
    const aborted = run.job.signal?.aborted === true;
    if (msg.type === 'done') {
      this.stats_.completed++;
      const w = msg.identity;
      const identity: EnrolledIdentity = { ...w, background: w.texture, mesh: { triangles: FACE_TRIANGLES, vertexCount: 468 } };
      const queuedMs = run.startedAt - run.job.enqueuedAt;
      if (aborted) this.settle(run.job, run.job.signal!.reason);
      else this.settle(run.job, { identity, cropPng: msg.cropPng, enrollMs: msg.enrollMs, queuedMs }, true);
    } else {
      this.stats_.failed++;
      const e = msg.error;
      this.settle(run.job, e.name === 'EnrollError' ? enrollErrorToApp(e.code, e.message) : new AppError('INTERNAL', `enrollment failed: ${e.message}`));
    }
    this.pump();
  }

  private pump(): void {
    if (this.closed_ || this.running || this.queue.length === 0 || this.failedReason) {
      this.updateRef();
      return;
    }
    const h = this.ensureWorker();
    this.updateRef();
    if (h.isReady) {
      this.dispatch(h);
      return;
    }
    if (this.starting === h) return;
    this.starting = h;
    h.ready.then(
      () => {
        if (this.starting === h) this.starting = null;
        this.dispatch(h);
      },
      (err: unknown) => {
        // the exit handler has counted the crash and started a replacement (or given up);
        // the job at the head of the queue waited for this start: it fails, the rest wait on
        if (this.starting === h) this.starting = null;
        const job = this.queue.shift();
        if (job) {
          this.stats_.failed++;
          this.settle(job, err);
        }
        this.pump();
        this.updateRef();
      },
    );
  }

  private starting: WorkerHandle | null = null;

  private dispatch(h: WorkerHandle): void {
    if (this.closed_ || this.running || h !== this.handle) {
      this.pump();
      return;
    }
    const job = this.queue.shift();
    if (!job) {
      this.updateRef();
      return;
    }
    if (job.signal && job.onAbort) job.signal.removeEventListener('abort', job.onAbort);
    job.onAbort = undefined;
    if (job.signal?.aborted) {
      job.reject(job.signal.reason);
      this.pump();
      return;
    }
    const jobId = this.nextJobId++;
    const timer = setTimeout(() => this.onTimeout(h, jobId), this.timeoutMs);
    this.running = { job, jobId, startedAt: performance.now(), timer };
    this.updateRef();
    const msg: ToWorker = {
      type: 'enroll',
      jobId,
      bytes: job.bytes,
      opts: { maxBytes: this.maxPhotoBytes, maxPixels: this.maxPhotoPixels, textureSize: this.textureSize },
    };
    h.worker.postMessage(msg, [job.bytes.buffer as ArrayBuffer]);
  }

  private onTimeout(h: WorkerHandle, jobId: number): void {
    const run = this.running;
    if (!run || run.jobId !== jobId) return;
    this.running = null;
    this.stats_.timeouts++;
    this.stats_.failed++;
    this.logger?.warn({ timeoutMs: this.timeoutMs }, 'enrollment timed out; replacing the worker');
    this.settle(run.job, new AppError('TIMEOUT', `enrollment took longer than ${this.timeoutMs} ms`));
    if (this.handle === h) this.retireWorker();
    this.pump();
  }
}

export { EnrollError };
