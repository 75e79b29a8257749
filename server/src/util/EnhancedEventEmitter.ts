import { EventEmitter } from 'node:events';

/** An EventEmitter with a typed event map. Listener exceptions are isolated and reported. */
export class EnhancedEventEmitter<E extends Record<string, unknown[]>> {
  readonly #emitter = new EventEmitter();

  constructor() {
    this.#emitter.setMaxListeners(Infinity);
  }

  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#emitter.on(event, listener as (...a: unknown[]) => void);
    return this;
  }

  once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#emitter.once(event, listener as (...a: unknown[]) => void);
    return this;
  }

  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#emitter.off(event, listener as (...a: unknown[]) => void);
    return this;
  }

  listenerCount<K extends keyof E & string>(event: K): number {
    return this.#emitter.listenerCount(event);
  }

  removeAllListeners(): void {
    this.#emitter.removeAllListeners();
  }

  /** Emit; a throwing listener does not break the emitter or the other listeners. */
  protected safeEmit<K extends keyof E & string>(event: K, ...args: E[K]): boolean {
    const listeners = this.#emitter.listeners(event);
    for (const l of listeners) {
      try {
        (l as (...a: E[K]) => void)(...args);
      } catch (err) {
        process.emitWarning(`listener for "${event}" threw: ${(err as Error)?.stack ?? String(err)}`);
      }
    }
    return listeners.length > 0;
  }
}
