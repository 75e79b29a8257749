/**
 * Quality of service of one avatar session: when the worker cannot render and encode this
 * session's frames within the frame interval, the session steps down a ladder of levels instead of
 * dropping frames (and taking CPU from every other session on the worker); when the load allows,
 * it steps back up.
 *
 * The ladder lowers the **size first, then the frame rate**: level 0 is the nominal size and rate,
 * level 1 three quarters of the size, level 2 half the size, level 3 half the size at half the
 * rate. Size goes first because a renderer's cost (rasterizing, colour conversion, VP8 encode)
 * grows with the pixels while the frame rate is what viewers notice most (lips, blinks); a
 * renderer whose cost does not fall with the size still reaches level 3, unless its frames do not
 * fit in the longer interval either (then a lower rate would change nothing: it renders back to
 * back at its own pace at either rate, dropping the frames that come due meanwhile).
 *
 * Measured per window (`windowMs`, default 1 s): the mean cost of a frame (render batch wall time,
 * all views, plus their VP8 encode time from the sender's stats) relative to the frame interval,
 * and the share of frames that came due while the previous one still rendered (dropped; off by
 * default: a voice avatar's early frames are dropped while a regular one renders without any
 * overload, and a session that cannot keep up has a cost above the interval anyway).
 * Hysteresis: a level is lowered after `degradeWindows` (3) overloaded windows in a row (load above
 * `degradeLoad` or drops above `degradeDropShare`); it is raised only after `restoreWindows`
 * windows in a row in which the next level up is predicted (cost scaled by its pixels, over its
 * interval) to stay under `restoreLoad`, and never sooner than `holdMs` after the last change. A
 * restore that is undone before a single healthy window doubles the hold (up to `maxHoldMs`): a
 * session does not flap between two levels.
 */
export interface QualityLevel {
  level: number;
  size: number;
  fps: number;
}

export interface QualityChange extends QualityLevel {
  /** measured frame cost in % of the frame interval over the window that decided the change */
  loadPct: number;
  direction: 'down' | 'up';
}

export interface QualityControllerOptions {
  size: number;
  fps: number;
  windowMs?: number;
  degradeLoad?: number;
  degradeDropShare?: number;
  degradeWindows?: number;
  restoreLoad?: number;
  restoreWindows?: number;
  holdMs?: number;
  maxHoldMs?: number;
  now?: () => number;
}

/** Sizes stay multiples of 16 (VP8 macroblocks, even I420 planes). */
const round16 = (x: number): number => Math.max(16, Math.round(x / 16) * 16);

/** The levels for a nominal size and frame rate (level 0 is the nominal one). */
export function qualityLadder(size: number, fps: number): QualityLevel[] {
  if (!(Number.isInteger(size) && size >= 16)) throw new TypeError(`size must be an integer ≥ 16, got ${size}`);
  if (!(fps > 0)) throw new TypeError(`fps must be > 0, got ${fps}`);
  const levels: QualityLevel[] = [{ level: 0, size, fps }];
  for (const [s, f] of [[round16(size * 0.75), fps], [round16(size / 2), fps], [round16(size / 2), fps / 2]] as const) {
    const prev = levels[levels.length - 1]!;
    if (s === prev.size && f === prev.fps) continue;
    levels.push({ level: levels.length, size: s, fps: f });
  }
  return levels;
}

export class QualityController {
  readonly levels: readonly QualityLevel[];
  readonly windowMs: number;
  readonly #o: Required<Omit<QualityControllerOptions, 'size' | 'fps' | 'now' | 'windowMs'>>;
  readonly #now: () => number;
  #index = 0;
  #windowStart: number;
  #costMs = 0;
  #frames = 0;
  #dropped = 0;
  #overloaded = 0;
  #restorable = 0;
  #changedAt = Number.NEGATIVE_INFINITY;
  /** The last change was a restore and no window since has been healthy. */
  #restoreOnProbation = false;
  #holdMs: number;
  /** load of the last complete window (fraction of the interval) */
  lastLoad = 0;

  constructor(opts: QualityControllerOptions) {
    this.levels = qualityLadder(opts.size, opts.fps);
    this.windowMs = opts.windowMs ?? 1000;
    this.#o = {
      degradeLoad: opts.degradeLoad ?? 0.9,
      degradeDropShare: opts.degradeDropShare ?? 1,
      degradeWindows: opts.degradeWindows ?? 3,
      restoreLoad: opts.restoreLoad ?? 0.6,
      restoreWindows: opts.restoreWindows ?? 3,
      holdMs: opts.holdMs ?? 5000,
      maxHoldMs: opts.maxHoldMs ?? 60_000,
    };
    if (!(this.windowMs > 0)) throw new TypeError('windowMs must be > 0');
    if (!(this.#o.restoreLoad < this.#o.degradeLoad)) throw new TypeError('restoreLoad must be below degradeLoad (hysteresis)');
    this.#holdMs = this.#o.holdMs;
    this.#now = opts.now ?? (() => performance.now());
    this.#windowStart = this.#now();
  }

  get current(): QualityLevel {
    return this.levels[this.#index]!;
  }

  /** One frame (all its views) rendered and encoded in `costMs`. */
  recordFrame(costMs: number): void {
    if (!(costMs >= 0)) return;
    this.#costMs += costMs;
    this.#frames++;
  }

  /** Cost that is only known per window (the encoder's time from the sender's stats). */
  addCost(costMs: number): void {
    if (costMs > 0) this.#costMs += costMs;
  }

  /** A frame came due while the previous one still rendered. */
  recordDrop(): void {
    this.#dropped++;
  }

  /** Ends the window when it is complete; returns the change it decided, if any. */
  evaluate(): QualityChange | undefined {
    const now = this.#now();
    if (now - this.#windowStart < this.windowMs) return undefined;
    const cur = this.current;
    const interval = 1000 / cur.fps;
    const frames = this.#frames;
    const load = frames > 0 ? this.#costMs / frames / interval : this.#dropped > 0 ? Number.POSITIVE_INFINITY : 0;
    const dropShare = this.#dropped / Math.max(1, frames + this.#dropped);
    this.#windowStart = now;
    this.#costMs = 0;
    this.#frames = 0;
    this.#dropped = 0;
    if (frames === 0 && dropShare === 0) return undefined; // nothing rendered (not started, stalled elsewhere)
    this.lastLoad = Number.isFinite(load) ? load : 0;
    const loadPct = Math.min(100_000, Math.round(this.lastLoad * 1000) / 10);
    if (load > this.#o.degradeLoad || dropShare > this.#o.degradeDropShare) {
      this.#restorable = 0;
      if (++this.#overloaded < this.#o.degradeWindows || this.#index === this.levels.length - 1) return undefined;
      const down = this.levels[this.#index + 1]!;
      // A lower frame rate only helps a session whose frames fit in the longer interval: one whose
      // renderer is slower than that renders back to back at either rate (same CPU, same frames).
      if (down.fps < cur.fps && frames > 0 && this.#costOf(load * interval, cur, down) >= 1000 / down.fps) return undefined;
      // a restore undone before a single healthy window: wait longer before the next one
      if (this.#restoreOnProbation) this.#holdMs = Math.min(this.#o.maxHoldMs, this.#holdMs * 2);
      this.#restoreOnProbation = false;
      return this.#change(this.#index + 1, now, loadPct, 'down');
    }
    this.#overloaded = 0;
    this.#restoreOnProbation = false;
    if (this.#index === 0) return undefined;
    const up = this.levels[this.#index - 1]!;
    const predicted = ((frames > 0 ? this.#costOf(load * interval, cur, up) : 0) * up.fps) / 1000;
    if (predicted >= this.#o.restoreLoad) {
      this.#restorable = 0;
      return undefined;
    }
    if (++this.#restorable < this.#o.restoreWindows || now - this.#changedAt < this.#holdMs) return undefined;
    const change = this.#change(this.#index - 1, now, loadPct, 'up');
    this.#restoreOnProbation = true;
    return change;
  }

  /** A frame's cost at `to`, from its cost at `from` (proportional to the pixels). */
  #costOf(costMs: number, from: QualityLevel, to: QualityLevel): number {
    return costMs * (to.size / from.size) ** 2;
  }

  #change(index: number, now: number, loadPct: number, direction: 'down' | 'up'): QualityChange {
    this.#index = index;
    this.#changedAt = now;
    this.#overloaded = 0;
    this.#restorable = 0;
    return { ...this.current, loadPct, direction };
  }
}
