/**
 * RenderThreadPool: keeps one booted render thread per generator module ready (started, tsx
 * registered, the generator's module imported), so that a session start takes a thread that is
 * already up instead of paying for its start (0.4–0.7 s on the 2-core test machine, the largest part
 * of a cached Gaussian session's start). Taking a spare boots the next one in the background; a
 * spare that dies while it waits is replaced on the next take. One idle thread per kind costs its
 * heap (tens of MB), so the worker asks for spares of the kinds it renders only.
 */
import type { Worker } from 'node:worker_threads';
import type { GeneratorModule } from '../generator/registry.ts';
import { InvalidStateError } from '../errors.ts';
import { bootRenderWorker } from './RenderThread.ts';

interface Spare {
  generator: GeneratorModule;
  /** the booted thread; settles once it has imported the module */
  worker: Promise<Worker>;
  /** set when the thread exited or failed while it waited */
  dead: boolean;
  /** the pool's own exit/error listener on the thread (removed when the thread is taken) */
  died?: () => void;
}

export class RenderThreadPool {
  readonly #spares = new Map<string, Spare>();
  readonly #boot: (generator: GeneratorModule) => Promise<Worker>;
  #closed = false;

  /** `boot` starts one thread (tests pass doubles); default: RenderThread's. */
  constructor(opts: { boot?: (generator: GeneratorModule) => Promise<Worker> } = {}) {
    this.#boot = opts.boot ?? bootRenderWorker;
  }

  /** Boots a spare for `generator` now (idempotent per module). */
  prepare(generator: GeneratorModule): void {
    if (this.#closed) throw new InvalidStateError('render thread pool closed');
    if (!generator || typeof generator.module !== 'string') throw new TypeError('prepare: a generator module is required');
    const key = keyOf(generator);
    const have = this.#spares.get(key);
    if (have && !have.dead) return;
    const spare: Spare = { generator, worker: this.#boot(generator), dead: false };
    spare.worker.then(
      (w) => {
        const died = (): void => {
          spare.dead = true;
        };
        spare.died = died;
        w.once('exit', died);
        w.once('error', died);
        // an idle spare never holds the process open
        w.unref();
      },
      () => (spare.dead = true),
    );
    this.#spares.set(key, spare);
  }

  /**
   * A booted thread for `generator` (the spare when there is one, else a fresh boot), and the next
   * spare starts booting. The caller owns the thread (terminates it when done).
   */
  async take(generator: GeneratorModule): Promise<Worker> {
    if (this.#closed) throw new InvalidStateError('render thread pool closed');
    const key = keyOf(generator);
    const spare = this.#spares.get(key);
    this.#spares.delete(key);
    this.prepare(generator);
    if (spare && !spare.dead) {
      try {
        const w = await spare.worker;
        if (!spare.dead) {
          if (spare.died) {
            w.off('exit', spare.died);
            w.off('error', spare.died);
          }
          w.ref();
          return w;
        }
      } catch {
        // the spare failed to boot: boot one for this session below
      }
    }
    return this.#boot(generator);
  }

  /** Booted or booting spares (for tests and metrics). */
  get spareCount(): number {
    let n = 0;
    for (const s of this.#spares.values()) if (!s.dead) n++;
    return n;
  }

  /** Idempotent: terminates the spares. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#spares.values()) s.worker.then((w) => void w.terminate(), () => undefined);
    this.#spares.clear();
  }
}

function keyOf(g: GeneratorModule): string {
  return `${g.module}#${g.exportName}`;
}
