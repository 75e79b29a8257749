/**
 * RenderThread: one avatar session's generator, running in its own worker thread so that frames
 * never stall the event loop that carries wrtc, socket.io and the audio tap.
 *
 * One batch at a time: render() renders every requested view of one motion in one round trip and
 * rejects with a {@link RenderBusyError} while the previous batch is still running. The caller
 * drops that frame (it would be late anyway) instead of queueing it: back-pressure, no backlog.
 */
import { Worker } from 'node:worker_threads';
import type { AvatarMotion, GeneratorCapabilities, GeneratorSource, PixelFormat, RenderedFrame, ViewOffset } from '../generator/generator.ts';
import type { GeneratorModule } from '../generator/registry.ts';
import { InvalidStateError } from '../errors.ts';
import type { FromRenderThread, ThreadFrame, ToRenderThread } from './renderMessages.ts';
import type { RenderThreadPool } from './RenderThreadPool.ts';

const BOOTSTRAP = new URL('../../../models/worker-bootstrap.mjs', import.meta.url);
const ENTRY = new URL('./renderThreadMain.ts', import.meta.url).href;

/** The previous batch is still rendering: this one is dropped. */
export class RenderBusyError extends Error {
  override name = 'RenderBusyError';
}

export interface RenderThreadOptions {
  generator: GeneratorModule;
  /** the generator's input; a promise lets the thread start while the asset is still being fetched */
  source: GeneratorSource | Promise<GeneratorSource>;
  /** booted spare threads (the worker's): the session takes one instead of starting a thread */
  pool?: RenderThreadPool;
}

/**
 * Starts a render thread and has it import `generator`'s module; resolves once it has (the
 * thread's start, tsx and the imports: most of a session's render-thread cost). Rejects with the
 * thread's error, or when it exits first.
 */
export async function bootRenderWorker(generator: GeneratorModule): Promise<Worker> {
  const worker = new Worker(BOOTSTRAP, { workerData: { entry: ENTRY } });
  try {
    await onceFromThread(worker, 'loaded', () => {
      const load: ToRenderThread = { type: 'load', generator };
      worker.postMessage(load);
    });
    return worker;
  } catch (err) {
    void worker.terminate();
    throw err;
  }
}

/** Resolves with the first `type` message from the thread (after `send`), rejects on its start error or exit. */
function onceFromThread<T extends FromRenderThread['type']>(worker: Worker, type: T, send: () => void): Promise<Extract<FromRenderThread, { type: T }>> {
  let cleanup = (): void => undefined;
  return new Promise<Extract<FromRenderThread, { type: T }>>((resolve, reject) => {
    const onMessage = (msg: FromRenderThread): void => {
      if (msg.type === type) resolve(msg as Extract<FromRenderThread, { type: T }>);
      else if (msg.type === 'error' && msg.id === null) reject(new Error(msg.message));
    };
    const onExit = (code: number): void => reject(new Error(`render thread exited during start (code ${code})`));
    worker.on('message', onMessage);
    worker.on('error', reject);
    worker.on('exit', onExit);
    cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', reject);
      worker.off('exit', onExit);
    };
    send();
  }).finally(() => cleanup());
}

export interface RenderBatchOptions {
  size: number;
  format: PixelFormat;
  /** previous frames (same order as the views) whose buffers the thread may render into; they are detached */
  reuse?: readonly (RenderedFrame | undefined)[];
}

export class RenderThread {
  readonly capabilities: GeneratorCapabilities;
  /** whether the generator renders several views in one call */
  readonly batch: boolean;
  readonly #worker: Worker;
  #pending: { id: number; resolve: (f: RenderedFrame[]) => void; reject: (e: Error) => void } | undefined;
  #nextId = 1;
  #closed = false;
  #exitError: Error | undefined;

  private constructor(worker: Worker, ready: { capabilities: GeneratorCapabilities; batch: boolean }) {
    this.#worker = worker;
    this.capabilities = ready.capabilities;
    this.batch = ready.batch;
    worker.on('message', (msg: FromRenderThread) => {
      const p = this.#pending;
      if (msg.type === 'ready' || msg.type === 'loaded' || !p || msg.id !== p.id) return;
      this.#pending = undefined;
      if (msg.type === 'error') p.reject(new Error(msg.message));
      else p.resolve(msg.frames.map(toRendered));
    });
    const fail = (err: Error): void => {
      this.#exitError ??= err;
      const p = this.#pending;
      this.#pending = undefined;
      p?.reject(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`render thread exited (code ${code})`)));
  }

  /**
   * Starts the thread (or takes a booted one from `pool`), loads the generator and initialises it
   * from `source`. Rejects with the generator's error, or with the source promise's own error
   * (unchanged) when the source fails; the thread is then terminated.
   */
  static async create(opts: RenderThreadOptions): Promise<RenderThread> {
    if (!opts || !opts.generator || !opts.source) throw new TypeError('RenderThread: generator and source are required');
    const booting = opts.pool ? opts.pool.take(opts.generator) : bootRenderWorker(opts.generator);
    let worker: Worker | undefined;
    try {
      // the asset fetch and the thread's start run at the same time
      const [w, source] = await Promise.allSettled([booting, Promise.resolve(opts.source)]);
      if (w.status === 'fulfilled') worker = w.value;
      if (source.status === 'rejected') throw source.reason;
      if (w.status === 'rejected') throw w.reason;
      const thread = worker!;
      const ready = await onceFromThread(thread, 'ready', () => {
        const init: ToRenderThread = { type: 'init', generator: opts.generator, source: source.value };
        thread.postMessage(init);
      });
      return new RenderThread(thread, ready);
    } catch (err) {
      if (worker) void worker.terminate();
      throw err;
    }
  }

  /** A batch is rendering (a render() now would be refused). */
  get busy(): boolean {
    return this.#pending !== undefined;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Renders `views` of one motion in one batch; RenderBusyError while the previous batch runs. */
  render(motion: AvatarMotion, views: readonly ViewOffset[], opts: RenderBatchOptions): Promise<RenderedFrame[]> {
    if (this.#closed) return Promise.reject(new InvalidStateError('render thread closed'));
    if (this.#exitError) return Promise.reject(this.#exitError);
    if (this.#pending) return Promise.reject(new RenderBusyError('previous frame still rendering'));
    const id = this.#nextId++;
    const transfer: ArrayBuffer[] = [];
    const reuse = views.map((_, i) => {
      const f = opts.reuse?.[i];
      if (!f?.i420 || f.i420.buffer.byteLength === 0) return undefined;
      transfer.push(f.i420.buffer as ArrayBuffer);
      return { i420: f.i420 };
    });
    const msg: ToRenderThread = {
      type: 'render',
      id,
      motion: { pose: { ...motion.pose }, expression: Float32Array.from(motion.expression), ...(motion.detail ? { detail: Float32Array.from(motion.detail) } : {}) },
      views: views.map((v) => ({ yaw: v.yaw, pitch: v.pitch, roll: v.roll })),
      size: opts.size,
      format: opts.format,
      reuse,
    };
    return new Promise<RenderedFrame[]>((resolve, reject) => {
      this.#pending = { id, resolve, reject };
      this.#worker.postMessage(msg, transfer);
    });
  }

  /** Idempotent; a batch in flight is rejected. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const p = this.#pending;
    this.#pending = undefined;
    p?.reject(new InvalidStateError('render thread closed'));
    const msg: ToRenderThread = { type: 'close' };
    this.#worker.postMessage(msg);
    // a generator stuck in a frame does not hold the process
    setTimeout(() => void this.#worker.terminate(), 1000).unref();
    this.#worker.unref();
  }
}

function toRendered(f: ThreadFrame): RenderedFrame {
  return { width: f.width, height: f.height, renderMs: f.renderMs, ...(f.i420 ? { i420: f.i420 } : {}), ...(f.rgba ? { rgba: f.rgba } : {}) };
}
