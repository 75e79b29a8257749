/**
 * When an avatar session renders: regular frames at the session's frame rate, plus an early frame
 * when the motion jumps (a voice avatar's mouth opening at the start of a word), so that a change
 * does not wait up to a whole frame interval (40 ms at 25 fps) for the next regular frame.
 *
 * Early frames are at least `minIntervalMs` after the previous frame (default half the interval, so
 * the rate stays below twice the frame rate), and the regular cadence restarts from the early frame.
 */
export interface FrameSchedulerOptions {
  fps: number;
  render: () => void;
  /** Shortest time between two frames; default half the frame interval. */
  minIntervalMs?: number;
  now?: () => number;
}

export class FrameScheduler {
  readonly intervalMs: number;
  readonly minIntervalMs: number;
  readonly #render: () => void;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #lastFrameAt = Number.NEGATIVE_INFINITY;
  /** When the current regular frame was due (the cadence does not drift with timer lateness). */
  #due = 0;
  #running = false;
  earlyFrames = 0;

  constructor(opts: FrameSchedulerOptions) {
    if (!(opts.fps > 0 && opts.fps <= 120)) throw new TypeError(`fps must be in (0, 120], got ${opts.fps}`);
    this.intervalMs = 1000 / opts.fps;
    this.minIntervalMs = opts.minIntervalMs ?? this.intervalMs / 2;
    if (!(this.minIntervalMs >= 0 && this.minIntervalMs <= this.intervalMs)) throw new TypeError(`minIntervalMs must be in [0, ${this.intervalMs}]`);
    this.#render = opts.render;
    this.#now = opts.now ?? (() => performance.now());
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#due = this.#now();
    this.#frame(this.#due);
  }

  /**
   * The motion changed a lot: render now unless the last frame is younger than `minIntervalMs`.
   * Returns whether a frame was rendered.
   */
  nudge(): boolean {
    if (!this.#running || this.#now() - this.#lastFrameAt < this.minIntervalMs) return false;
    this.earlyFrames++;
    this.#frame(this.#now());
    return true;
  }

  /** Renders the frame due at `due` and schedules the next regular one an interval later. */
  #frame(due: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#lastFrameAt = this.#now();
    try {
      this.#render();
    } finally {
      if (this.#running) {
        // One interval after this frame was due; if that is already past (a stall), from now: no backlog.
        const now = this.#now();
        this.#due = due + this.intervalMs < now ? now : due + this.intervalMs;
        this.#timer = setTimeout(() => this.#frame(this.#due), Math.max(0, this.#due - now));
      }
    }
  }

  /** Idempotent. */
  stop(): void {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
