/**
 * Offline (non-causal) temporal smoothing of per-frame tracks: every sample is replaced by a
 * Gaussian-weighted combination of the samples around it in time, within its own segment only
 * (a segment is one shot of one range, so nothing is ever averaged across a cut). Missing frames
 * (no face) are simply absent: the weights are over the samples that exist, by their time.
 *
 * - gaussianSmooth: weighted mean (landmarks, σ ≈ 1 frame: removes Human's frame-to-frame jitter
 *   while keeping fast mouth and eye motion).
 * - localLinearSmooth: Gaussian-weighted linear fit evaluated at each sample (the crop, σ ≈ 0.3 s).
 *   In the middle of a segment it equals the weighted mean; at the ends it keeps a steady pan or
 *   zoom instead of pulling the first and last crops towards the segment's inside (a plain
 *   truncated mean lags by ~0.8σ·velocity there, which would push the face off-centre).
 */

export interface Series {
  /** sample times, seconds, ascending within a segment */
  t: ArrayLike<number>;
  /** segment id of each sample; samples of different segments never mix */
  segment: ArrayLike<number>;
  /** n × dim values, row-major */
  values: ArrayLike<number>;
  dim: number;
}

function check(s: Series, sigma: number): number {
  const n = s.t.length;
  if (s.segment.length !== n || s.values.length !== n * s.dim) throw new TypeError('series arrays disagree in length');
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new TypeError(`sigma must be a positive number, got ${sigma}`);
  return n;
}

/** Index range [lo, hi] of the samples within `reach` seconds of sample i in its segment. */
function window(s: Series, i: number, reach: number): [number, number] {
  const n = s.t.length, seg = s.segment[i], ti = s.t[i]!;
  let lo = i, hi = i;
  while (lo > 0 && s.segment[lo - 1] === seg && ti - s.t[lo - 1]! <= reach) lo--;
  while (hi < n - 1 && s.segment[hi + 1] === seg && s.t[hi + 1]! - ti <= reach) hi++;
  return [lo, hi];
}

/** Gaussian-weighted mean over ±3σ (seconds). */
export function gaussianSmooth(s: Series, sigma: number): Float64Array {
  const n = check(s, sigma), d = s.dim;
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const [lo, hi] = window(s, i, 3 * sigma);
    let wsum = 0;
    for (let j = lo; j <= hi; j++) {
      const dt = s.t[j]! - s.t[i]!;
      const w = Math.exp(-(dt * dt) / (2 * sigma * sigma));
      wsum += w;
      for (let k = 0; k < d; k++) out[i * d + k]! += w * s.values[j * d + k]!;
    }
    for (let k = 0; k < d; k++) out[i * d + k]! /= wsum;
  }
  return out;
}

/** Gaussian-weighted least-squares line over ±3σ, evaluated at each sample's time. */
export function localLinearSmooth(s: Series, sigma: number): Float64Array {
  const n = check(s, sigma), d = s.dim;
  const out = new Float64Array(n * d);
  const sy = new Float64Array(d), sty = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const [lo, hi] = window(s, i, 3 * sigma);
    let S0 = 0, S1 = 0, S2 = 0;
    sy.fill(0);
    sty.fill(0);
    for (let j = lo; j <= hi; j++) {
      // times relative to sample i, so the fit's intercept is the value at t_i
      const dt = s.t[j]! - s.t[i]!;
      const w = Math.exp(-(dt * dt) / (2 * sigma * sigma));
      S0 += w; S1 += w * dt; S2 += w * dt * dt;
      for (let k = 0; k < d; k++) {
        const v = s.values[j * d + k]!;
        sy[k]! += w * v;
        sty[k]! += w * dt * v;
      }
    }
    const det = S0 * S2 - S1 * S1;
    // fewer than two distinct times (or nearly so): a line is undetermined, use the mean
    const linear = det > 1e-9 * S0 * S0 * sigma * sigma;
    for (let k = 0; k < d; k++) out[i * d + k] = linear ? (S2 * sy[k]! - S1 * sty[k]!) / det : sy[k]! / S0;
  }
  return out;
}
