/**
 * Training jobs for personal (Gaussian-head) avatars: a bounded queue, one supervised low-priority
 * child process per running job (trainingProcess.ts), progress and previews, cancellation, a time
 * limit, and job records on disk that survive a restart.
 *
 * On disk, per job: `<root>/<jobId>/job.json` (the record, replaced atomically), `upload.avcu` (the
 * clip, deleted as soon as the job ends: it is the user's face), `asset.avgs` (written atomically by
 * the child; handed to `onAssetReady` and never loaded before the child said it is complete), and
 * `preview.jpg`. What clients see of a job is protocol/src/trainingJobs.ts. At start, a job that was running when the server stopped is marked failed
 * (INTERRUPTED) and its partial files are deleted; queued jobs are queued again.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { EnhancedEventEmitter } from '../../util/EnhancedEventEmitter.ts';
import { AppError, InvalidStateError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import { ClipUploadError, decodeClipUpload } from '../../../../protocol/src/clipUpload.ts';
import { ACTIVE_JOB_STATES, JOB_STATES, trainingJobSchema, type JobState, type TrainingJobInfo } from '../../../../protocol/src/trainingJobs.ts';
import { fromTrainingProcessSchema, TURNTABLE_FILE, type ToTrainingProcess, type TrainingSettings } from './trainingMessages.ts';

const PROCESS_MAIN = fileURLToPath(new URL('./trainingProcess.ts', import.meta.url));

const ACTIVE: ReadonlySet<JobState> = new Set(ACTIVE_JOB_STATES);
const DEFAULT_TIME_LIMIT_MS = 20 * 60_000;

export interface TrainingJobsOptions {
  /** jobs live in `<dir>/<jobId>/` */
  dir: string;
  logger: Logger;
  settings: TrainingSettings;
  /** jobs running at once, default 1 */
  concurrency?: number;
  /** jobs waiting behind the running ones; more get 503 BUSY. Default 4 */
  queueMax?: number;
  /** a job running longer is killed and fails with TIMEOUT; default 20 min */
  timeLimitMs?: number;
  /** nice value of the job processes (0..19), default 19 */
  nice?: number;
  /**
   * The child finished and its asset file is complete: store it (e.g. move it into the identity's
   * assets). A throw fails the job (STORE_FAILED).
   */
  onAssetReady?: (job: TrainingJobInfo, assetPath: string) => Promise<void>;
  /** the child's entry point (tests substitute a crashing or slow one) */
  processEntry?: string;
  registry?: Registry;
}

export type TrainingJobsEvents = {
  /** any change of a job: state, progress, preview */
  update: [job: TrainingJobInfo];
};

interface Running {
  child: ChildProcess;
  timer: NodeJS.Timeout;
  ended: boolean;
  cancelRequested: boolean;
  timedOut: boolean;
  /** resolves once the exit has been handled (the job's final state persisted) */
  finished: Promise<void>;
}

export class TrainingJobs extends EnhancedEventEmitter<TrainingJobsEvents> {
  readonly #opts: Required<Omit<TrainingJobsOptions, 'onAssetReady' | 'registry'>> & Pick<TrainingJobsOptions, 'onAssetReady'>;
  readonly #jobs = new Map<string, TrainingJobInfo>();
  readonly #queue: string[] = [];
  readonly #running = new Map<string, Running>();
  readonly #logger: Logger;
  readonly #metrics: { jobs: Gauge<'state'>; queue: Gauge; seconds: Histogram; assetBytes: Counter; ended: Counter<'state'> } | undefined;
  #closed = false;

  private constructor(opts: TrainingJobsOptions) {
    super();
    this.#opts = {
      dir: opts.dir,
      logger: opts.logger,
      settings: opts.settings,
      concurrency: opts.concurrency ?? 1,
      queueMax: opts.queueMax ?? 4,
      timeLimitMs: opts.timeLimitMs ?? DEFAULT_TIME_LIMIT_MS,
      nice: opts.nice ?? 19,
      onAssetReady: opts.onAssetReady,
      processEntry: opts.processEntry ?? PROCESS_MAIN,
    };
    this.#logger = opts.logger.child({ component: 'training-jobs' });
    if (opts.registry) {
      const registers = [opts.registry];
      const jobsGauge: Gauge<'state'> = new Gauge({ name: 'avatar_training_jobs', help: 'Training jobs by state (kept records)', labelNames: ['state'] as const, registers, collect: (): void => this.#collect(jobsGauge) });
      this.#metrics = {
        jobs: jobsGauge,
        queue: new Gauge({ name: 'avatar_training_queue_length', help: 'Training jobs waiting to start', registers }),
        seconds: new Histogram({ name: 'avatar_training_seconds', help: 'Wall time of finished training jobs', buckets: [30, 60, 120, 300, 600, 1200], registers }),
        assetBytes: new Counter({ name: 'avatar_training_asset_bytes_total', help: 'Bytes of Gaussian-head assets written by training jobs', registers }),
        ended: new Counter({ name: 'avatar_training_jobs_ended_total', help: 'Training jobs that ended, by final state', labelNames: ['state'] as const, registers }),
      };
    }
  }

  static async create(opts: TrainingJobsOptions): Promise<TrainingJobs> {
    if (!opts || typeof opts.dir !== 'string' || !opts.dir) throw new TypeError('TrainingJobs needs a dir');
    const c = opts.concurrency ?? 1, q = opts.queueMax ?? 4, t = opts.timeLimitMs ?? DEFAULT_TIME_LIMIT_MS, n = opts.nice ?? 19;
    if (!Number.isInteger(c) || c < 1) throw new TypeError(`concurrency must be a positive integer, got ${c}`);
    if (!Number.isInteger(q) || q < 0) throw new TypeError(`queueMax must be a non-negative integer, got ${q}`);
    if (!(t > 0)) throw new TypeError(`timeLimitMs must be positive, got ${t}`);
    if (!Number.isInteger(n) || n < 0 || n > 19) throw new TypeError(`nice must be an integer in 0..19, got ${n}`);
    const jobs = new TrainingJobs(opts);
    await jobs.#recover();
    jobs.#pump();
    return jobs;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Jobs waiting (not running). */
  get queueLength(): number {
    return this.#queue.length;
  }

  /**
   * Queue a job for `identityId` from a clip upload. 400 BAD_REQUEST for a malformed upload (with
   * the reason), 409 INVALID_STATE when the identity already has an active job, 503 BUSY when the
   * queue is full.
   */
  async submit(identityId: string, upload: Uint8Array): Promise<TrainingJobInfo> {
    if (this.#closed) throw new InvalidStateError('training jobs closed');
    if (typeof identityId !== 'string' || identityId.length === 0) throw new TypeError('identityId must be a non-empty string');
    if (!(upload instanceof Uint8Array)) throw new TypeError('upload must be a Uint8Array');
    try {
      decodeClipUpload(upload);
    } catch (e) {
      if (e instanceof ClipUploadError) throw new AppError(e.code === 'TOO_LARGE' ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST', `clip upload: ${e.message}`);
      throw e;
    }
    const active = [...this.#jobs.values()].find((j) => j.identityId === identityId && ACTIVE.has(j.state));
    if (active) throw new AppError('INVALID_STATE', `a training job for this identity is already ${active.state} (${active.id}); cancel it first`);
    if (this.#running.size >= this.#opts.concurrency && this.#queue.length >= this.#opts.queueMax) {
      throw new AppError('BUSY', `the training queue is full (${this.#running.size} running, ${this.#queue.length} waiting): try again later`);
    }
    const job: TrainingJobInfo = { id: randomUUID(), identityId, state: 'queued', createdAt: new Date().toISOString(), progress: 0, previewVersion: 0 };
    const dir = this.#dirOf(job.id);
    await fs.promises.mkdir(dir, { recursive: true });
    await writeAtomic(path.join(dir, 'upload.avcu'), upload);
    await this.#persist(job);
    this.#jobs.set(job.id, job);
    this.#queue.push(job.id);
    this.#logger.info({ jobId: job.id, identityId, bytes: upload.length }, 'training job queued');
    this.#changed(job);
    this.#pump();
    return this.get(job.id)!;
  }

  /** A snapshot of the job (with its queue position while queued), or undefined. */
  get(jobId: string): TrainingJobInfo | undefined {
    const j = this.#jobs.get(jobId);
    if (!j) return undefined;
    const pos = this.#queue.indexOf(jobId);
    return structuredClone(pos >= 0 ? { ...j, queuePosition: pos + 1 } : j);
  }

  /** The identity's jobs, newest first. */
  list(identityId: string): TrainingJobInfo[] {
    return [...this.#jobs.values()].filter((j) => j.identityId === identityId).sort((a, b) => b.createdAt.localeCompare(a.createdAt)).map((j) => this.get(j.id)!);
  }

  /** Path of the job's latest preview (ground truth | model JPEG), if one was written. */
  previewPath(jobId: string): string | undefined {
    const j = this.#jobs.get(jobId);
    return j && j.previewVersion > 0 ? path.join(this.#dirOf(jobId), 'preview.jpg') : undefined;
  }

  /** Path of a finished job's turntable strip (yaw −45° … +45°, JPEG), if its job is done (the file may be missing). */
  turntablePath(jobId: string): string | undefined {
    const j = this.#jobs.get(jobId);
    return j?.state === 'done' ? path.join(this.#dirOf(jobId), TURNTABLE_FILE) : undefined;
  }

  /** Cancel a queued or running job (idempotent for ended ones: returns them as they are). */
  async cancel(jobId: string): Promise<TrainingJobInfo> {
    const j = this.#jobs.get(jobId);
    if (!j) throw new AppError('NOT_FOUND', 'no such training job');
    if (!ACTIVE.has(j.state)) return this.get(jobId)!;
    const qi = this.#queue.indexOf(jobId);
    if (qi >= 0) {
      this.#queue.splice(qi, 1);
      await this.#end(j, 'cancelled', undefined, 'cancelled before it started');
      return this.get(jobId)!;
    }
    const r = this.#running.get(jobId);
    if (r && !r.ended) {
      r.cancelRequested = true;
      r.child.send({ type: 'cancel' } satisfies ToTrainingProcess, () => undefined);
      const kill = setTimeout(() => r.child.kill('SIGKILL'), 2000);
      r.child.kill('SIGTERM');
      await r.finished;
      clearTimeout(kill);
    } else if (r) {
      await r.finished;
    }
    return this.get(jobId)!;
  }

  /** Delete every job of an identity (its identity is being deleted): running ones are killed. */
  async deleteForIdentity(identityId: string): Promise<number> {
    const jobs = [...this.#jobs.values()].filter((j) => j.identityId === identityId);
    for (const j of jobs) {
      if (ACTIVE.has(j.state)) await this.cancel(j.id);
      this.#jobs.delete(j.id);
      await fs.promises.rm(this.#dirOf(j.id), { recursive: true, force: true });
    }
    return jobs.length;
  }

  /** Idempotent. Running jobs are killed and recorded as failed (INTERRUPTED); queued ones stay queued on disk. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(
      [...this.#running.entries()].map(async ([id, r]) => {
        if (!r.ended) r.child.kill('SIGKILL');
        await r.finished;
        const j = this.#jobs.get(id);
        if (j && ACTIVE.has(j.state)) await this.#end(j, 'failed', { code: 'INTERRUPTED', message: 'the server stopped during this job' });
      }),
    );
    this.removeAllListeners();
  }

  // ------------------------------------------------------------------------------------------

  #dirOf(jobId: string): string {
    return path.join(this.#opts.dir, jobId);
  }

  async #recover(): Promise<void> {
    await fs.promises.mkdir(this.#opts.dir, { recursive: true });
    const queued: TrainingJobInfo[] = [];
    for (const name of await fs.promises.readdir(this.#opts.dir)) {
      const dir = path.join(this.#opts.dir, name);
      let job: TrainingJobInfo;
      try {
        job = trainingJobSchema.parse(JSON.parse(await fs.promises.readFile(path.join(dir, 'job.json'), 'utf8')));
      } catch (err) {
        // no or a broken record: leftovers of a job that never got one (or garbage); remove
        this.#logger.warn({ dir, err: (err as Error).message }, 'removing a training job directory without a valid record');
        await fs.promises.rm(dir, { recursive: true, force: true });
        continue;
      }
      this.#jobs.set(job.id, job);
      if (job.state === 'queued' && fs.existsSync(path.join(dir, 'upload.avcu'))) queued.push(job);
      else if (ACTIVE.has(job.state)) await this.#end(job, 'failed', { code: 'INTERRUPTED', message: 'the server restarted during this job' });
    }
    for (const j of queued.sort((a, b) => a.createdAt.localeCompare(b.createdAt))) this.#queue.push(j.id);
    if (this.#jobs.size) this.#logger.info({ jobs: this.#jobs.size, requeued: queued.length }, 'training jobs recovered');
  }

  #pump(): void {
    while (!this.#closed && this.#running.size < this.#opts.concurrency && this.#queue.length > 0) {
      const id = this.#queue.shift()!;
      const j = this.#jobs.get(id);
      if (j && j.state === 'queued') this.#start(j);
    }
    for (const id of this.#queue) this.#changed(this.#jobs.get(id)!);
  }

  #start(job: TrainingJobInfo): void {
    const dir = this.#dirOf(job.id);
    const child = fork(this.#opts.processEntry, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    if (child.pid !== undefined) {
      try {
        os.setPriority(child.pid, this.#opts.nice);
      } catch (err) {
        this.#logger.warn({ jobId: job.id, err: (err as Error).message }, 'could not lower the training process priority');
      }
    }
    let finish!: () => void;
    const r: Running = {
      child,
      finished: new Promise<void>((resolve) => (finish = resolve)),
      ended: false,
      cancelRequested: false,
      timedOut: false,
      timer: setTimeout(() => {
        r.timedOut = true;
        this.#logger.warn({ jobId: job.id, limitMs: this.#opts.timeLimitMs }, 'training job over its time limit: killing it');
        child.kill('SIGKILL');
      }, this.#opts.timeLimitMs),
    };
    this.#running.set(job.id, r);
    job.state = 'preparing';
    job.startedAt = new Date().toISOString();
    job.message = 'starting';
    void this.#persist(job);
    this.#changed(job);
    this.#logger.info({ jobId: job.id, identityId: job.identityId, pid: child.pid }, 'training job started');
    let done: Extract<import('./trainingMessages.ts').FromTrainingProcess, { type: 'done' }> | undefined;
    let failed: { code: string; message: string } | undefined;
    child.on('message', (raw: unknown) => {
      const parsed = fromTrainingProcessSchema.safeParse(raw);
      if (!parsed.success || r.ended) return;
      const m = parsed.data;
      if (m.type === 'stage') {
        job.state = m.stage === 'preparing' ? 'preparing' : 'training';
        job.message = m.message;
        void this.#persist(job);
      } else if (m.type === 'progress') {
        // preparing is ~5 % of a job; training the rest
        job.progress = Math.min(0.99, 0.05 + 0.95 * m.progress);
        job.etaSeconds = m.etaSeconds;
        job.iteration = m.iteration;
        if (m.heldOutPsnr !== null) job.heldOutPsnr = m.heldOutPsnr;
        if (m.heldOutFacePsnr !== null) job.heldOutFacePsnr = m.heldOutFacePsnr;
        if (m.preview) job.previewVersion++;
      } else if (m.type === 'done') {
        done = m;
      } else {
        failed = { code: m.code, message: m.message };
      }
      this.#changed(job);
    });
    child.on('error', (err) => this.#logger.error({ jobId: job.id, err }, 'training process error'));
    child.once('exit', (code, signal) => {
      r.ended = true;
      clearTimeout(r.timer);
      void this.#onExit(job, r, { code, signal, done, failed, dir }).finally(finish);
    });
    child.send({ type: 'start', jobId: job.id, uploadPath: path.join(dir, 'upload.avcu'), assetPath: path.join(dir, 'asset.avgs'), previewPath: path.join(dir, 'preview.jpg'), settings: this.#opts.settings } satisfies ToTrainingProcess);
  }

  async #onExit(job: TrainingJobInfo, r: Running, x: { code: number | null; signal: NodeJS.Signals | null; done: Extract<import('./trainingMessages.ts').FromTrainingProcess, { type: 'done' }> | undefined; failed: { code: string; message: string } | undefined; dir: string }): Promise<void> {
    try {
      if (this.#closed && !x.done) return; // close() records it
      if (r.cancelRequested) await this.#end(job, 'cancelled', undefined, 'cancelled');
      else if (r.timedOut) await this.#end(job, 'failed', { code: 'TIMEOUT', message: `the job ran longer than its limit of ${Math.round(this.#opts.timeLimitMs / 1000)} s` });
      else if (x.done) {
        const assetPath = path.join(x.dir, 'asset.avgs');
        job.asset = { bytes: x.done.assetBytes, sha256: x.done.assetSha256, iterations: x.done.iterations, trainSeconds: x.done.trainSeconds, heldOut: x.done.heldOut };
        if (x.done.heldOut) {
          job.heldOutPsnr = x.done.heldOut.psnr;
          job.heldOutFacePsnr = x.done.heldOut.facePsnr;
        }
        try {
          await this.#opts.onAssetReady?.(structuredClone(job), assetPath);
          this.#metrics?.assetBytes.inc(x.done.assetBytes);
          await this.#end(job, 'done', undefined, 'ready');
        } catch (err) {
          await this.#end(job, 'failed', { code: 'STORE_FAILED', message: `the asset could not be stored: ${(err as Error).message}` });
        }
      } else if (x.failed) await this.#end(job, x.failed.code === 'CANCELLED' ? 'cancelled' : 'failed', x.failed.code === 'CANCELLED' ? undefined : x.failed);
      else await this.#end(job, 'failed', { code: 'CRASHED', message: `the training process ended unexpectedly (${x.signal ? `signal ${x.signal}` : `exit code ${x.code}`})` });
    } finally {
      this.#running.delete(job.id);
      this.#pump();
    }
  }

  /** Final state: persisted, the upload (face data) and any partial asset deleted. */
  async #end(job: TrainingJobInfo, state: 'done' | 'failed' | 'cancelled', error?: { code: string; message: string }, message?: string): Promise<void> {
    job.state = state;
    job.endedAt = new Date().toISOString();
    if (state === 'done') job.progress = 1;
    delete job.etaSeconds;
    if (error) job.error = error;
    job.message = message ?? error?.message;
    const dir = this.#dirOf(job.id);
    await fs.promises.rm(path.join(dir, 'upload.avcu'), { force: true });
    if (state !== 'done') delete job.asset;
    await fs.promises.rm(path.join(dir, 'asset.avgs'), { force: true });
    await this.#persist(job);
    if (job.startedAt) this.#metrics?.seconds.observe((Date.parse(job.endedAt) - Date.parse(job.startedAt)) / 1000);
    this.#metrics?.ended.inc({ state });
    this.#logger.info({ jobId: job.id, identityId: job.identityId, state, error }, 'training job ended');
    this.#changed(job);
  }

  async #persist(job: TrainingJobInfo): Promise<void> {
    const dir = this.#dirOf(job.id);
    try {
      await fs.promises.mkdir(dir, { recursive: true });
      await writeAtomic(path.join(dir, 'job.json'), Buffer.from(JSON.stringify(job)));
    } catch (err) {
      this.#logger.error({ jobId: job.id, err }, 'could not write the training job record');
    }
  }

  #changed(job: TrainingJobInfo): void {
    this.#metrics?.queue.set(this.#queue.length);
    const snap = this.get(job.id) ?? structuredClone(job);
    this.safeEmit('update', snap);
  }

  #collect(g: Gauge<'state'>): void {
    g.reset();
    for (const s of JOB_STATES) g.set({ state: s }, 0);
    for (const j of this.#jobs.values()) g.inc({ state: j.state });
  }
}

async function writeAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  const fh = await fs.promises.open(tmp, 'w');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.promises.rename(tmp, file);
}
