/**
 * One-Euro filter (Casiez, Roussel, Vogel, CHI 2012): an exponential low-pass filter whose cutoff
 * rises with the signal's speed. Still signals are smoothed hard (jitter suppressed); moving
 * signals pass with little lag. Causal, one sample in → one sample out: it never delays output by
 * buffering, the only lag is the low-pass phase lag analysed below.
 *
 *   dx̂ₜ = EMA(dCutoff)( (xₜ − x̂ₜ₋₁) / Δt )        speed estimate
 *   fcₜ = minCutoff + beta·|dx̂ₜ|                  adaptive cutoff (Hz)
 *   x̂ₜ  = EMA(fcₜ)(xₜ)                             output
 *   EMA(fc): α = Δt / (Δt + τ),  τ = 1 / (2π·fc)
 *
 * Lag. For a first-order low-pass the steady-state lag behind a ramp is τ seconds, i.e. τ/Δt
 * frames (discrete EMA: (1 − α)/α = τ/Δt samples). It is at most one frame exactly when
 * fc ≥ 1/(2π·Δt) (= 4.77 Hz at 30 fps, 2.39 Hz at 15 fps). With the adaptive cutoff that holds at
 * every speed |v| ≥ v₁ = (fps/2π − minCutoff)/beta. The positional error caused by lag,
 * v·τ(v) = v / (2π(minCutoff + beta·v)), grows with v but stays below 1/(2π·beta) at ANY speed
 * (and below v₁·Δt, one frame of motion at v₁, for |v| ≤ v₁). Choosing v₁ just above the speed
 * that tracker jitter fakes makes the filter "one frame or less" for every real motion while it
 * still smooths hard when the face holds still. This analysis is conservative: the speed estimate
 * (x − x̂ₜ₋₁)/Δt also contains the lag, so during a ramp the cutoff is higher than fc(v) and the lag
 * smaller (simulated at 30 fps: 0.66 frame at v₁; test/unit/one-euro.test.ts).
 * `lagBound()` computes these numbers.
 *
 * Pure TypeScript, no DOM: runs in the browser and in Node tests.
 */

export interface OneEuroParams {
  /** cutoff (Hz) while the signal is still: lower = less jitter, more lag for slow drifts */
  minCutoff: number;
  /** cutoff increase per unit/s of speed: higher = less lag while moving */
  beta: number;
  /** cutoff (Hz) of the speed estimate itself */
  dCutoff: number;
}

const TWO_PI = 2 * Math.PI;

function alpha(cutoffHz: number, dt: number): number {
  const tau = 1 / (TWO_PI * cutoffHz);
  return dt / (dt + tau);
}

export class OneEuroFilter {
  private x: number | null = null;
  private dx = 0;
  private t = 0;

  constructor(public params: OneEuroParams) {}

  /**
   * Filter one sample taken at time `tS` (seconds, monotonic). Non-increasing timestamps are
   * treated as one nominal frame (1/30 s) later. A non-finite sample is passed through and resets.
   */
  filter(value: number, tS: number): number {
    if (!Number.isFinite(value)) {
      this.reset();
      return value;
    }
    if (this.x === null) {
      this.x = value;
      this.dx = 0;
      this.t = tS;
      return value;
    }
    let dt = tS - this.t;
    if (!(dt > 1e-6) || !Number.isFinite(dt)) dt = 1 / 30;
    // a long gap (face lost, tab hidden): the history says nothing about the new value
    if (dt > 1) {
      this.x = value;
      this.dx = 0;
      this.t = tS;
      return value;
    }
    this.t = tS;
    const { minCutoff, beta, dCutoff } = this.params;
    const rawDx = (value - this.x) / dt;
    this.dx += alpha(dCutoff, dt) * (rawDx - this.dx);
    const cutoff = minCutoff + beta * Math.abs(this.dx);
    this.x += alpha(cutoff, dt) * (value - this.x);
    return this.x;
  }

  reset(): void {
    this.x = null;
    this.dx = 0;
  }

  /** last output, or null before the first sample */
  get value(): number | null {
    return this.x;
  }
}

/** A bank of independent One-Euro filters (one per channel, each with its own parameters). */
export class OneEuroBank {
  private readonly filters: OneEuroFilter[];

  constructor(params: readonly OneEuroParams[]) {
    this.filters = params.map((p) => new OneEuroFilter(p));
  }

  get size(): number {
    return this.filters.length;
  }

  /** Filters `values` in place (and returns them). */
  filter<T extends { [i: number]: number; length: number }>(values: T, tS: number): T {
    for (let i = 0; i < this.filters.length && i < values.length; i++) values[i] = this.filters[i]!.filter(values[i]!, tS);
    return values;
  }

  reset(): void {
    for (const f of this.filters) f.reset();
  }
}

/**
 * The lag numbers of a parameter set at a frame rate: the speed v₁ above which steady-state lag is
 * ≤ one frame, the bound 1/(2π·beta) of the positional lag error at any speed, and the lag of
 * slow drifts while (almost) still (τ at minCutoff).
 */
export function lagBound(p: OneEuroParams, fps: number): { oneFrameCutoffHz: number; v1: number; maxLagError: number; stillLagMs: number } {
  const oneFrameCutoffHz = fps / TWO_PI;
  const v1 = Math.max(0, oneFrameCutoffHz - p.minCutoff) / p.beta;
  return { oneFrameCutoffHz, v1, maxLagError: p.beta > 0 ? 1 / (TWO_PI * p.beta) : Infinity, stillLagMs: 1000 / (TWO_PI * p.minCutoff) };
}
