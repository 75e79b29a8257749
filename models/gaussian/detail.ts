/**
 * Clip-specific detail code: what the 12-coefficient expression rig cannot express of this person.
 *
 * For every training frame, the tracked face in head space minus the rig's reconstruction from
 * that frame's 12 coefficients is a 478×3 residual (a person's own smile, asymmetries, lip shapes,
 * Human's depth bias). Their mean is a fixed correction of the rig; a PCA of the rest gives K
 * components. A frame's detail code is its residual projected on them, each divided by 3σ of the
 * training frames and clamped to [−1, 1], then quantised like the expression code (int8 ÷ 127) so
 * it can ride in the motion frame (protocol/src/motion.ts, version 2). Without a code (the
 * 12-coefficient path) the mean correction alone is used.
 */
import { applyExpression, estimateHeadFrame, toHeadSpace, type ExpressionRig } from '../face/expression-code.ts';
import { symmetricEigen } from '../linalg/symmetricEigen.ts';

export const DETAIL_MAX = 16;
const D = 478 * 3;

export interface DetailBasis {
  k: number;
  /** D = 478·3 */
  mean: Float32Array;
  /** k × D, each row = 3σₖ·uₖ (so a coefficient of 1 is three standard deviations) */
  comps: Float32Array;
}

export function emptyDetailBasis(): DetailBasis {
  return { k: 0, mean: new Float32Array(D), comps: new Float32Array(0) };
}

/** Head-space residual of tracked landmarks (pixel-unit z) against the rig at `expression`. */
export function detailResidual(rig: ExpressionRig, landmarks: Float32Array, expression: ArrayLike<number>, out = new Float32Array(D)): Float32Array {
  const f = estimateHeadFrame(landmarks);
  const h = toHeadSpace(landmarks, f, new Float32Array(D));
  const H = applyExpression(rig, expression);
  for (let i = 0; i < D; i++) out[i] = h[i]! - H[i]!;
  return out;
}

/** PCA of the residuals (Gram-matrix eigenvectors by Jacobi rotations; frames ≤ ~600). */
export function fitDetailBasis(residuals: Float32Array[], k = DETAIL_MAX, minShare = 0.98): DetailBasis {
  const F = residuals.length;
  const mean = new Float32Array(D);
  for (const r of residuals) for (let i = 0; i < D; i++) mean[i] += r[i]! / F;
  if (F < 3 || k <= 0) return { k: 0, mean, comps: new Float32Array(0) };
  const X = residuals.map((r) => Float64Array.from(r, (v, i) => v - mean[i]!));
  const G = new Float64Array(F * F);
  for (let a = 0; a < F; a++) for (let b = a; b < F; b++) {
    let s = 0;
    const xa = X[a]!, xb = X[b]!;
    for (let i = 0; i < D; i++) s += xa[i]! * xb[i]!;
    G[a * F + b] = G[b * F + a] = s;
  }
  const { values, vectors } = symmetricEigen(G, F); // descending
  const total = values.reduce((s, v) => s + Math.max(0, v), 0);
  const comps: number[] = [];
  let kept = 0, acc = 0;
  for (let j = 0; j < F; j++) {
    if (kept >= Math.min(k, F - 1) || values[j]! <= 1e-12 * total || (kept > 0 && acc >= minShare * total)) break;
    const lam = values[j]!;
    const u = new Float64Array(D);
    for (let a = 0; a < F; a++) {
      const v = vectors[j * F + a]!;
      const xa = X[a]!;
      for (let i = 0; i < D; i++) u[i] += v * xa[i]!;
    }
    const norm = Math.sqrt(lam);
    const sigma = Math.sqrt(lam / F);
    for (let i = 0; i < D; i++) comps.push((u[i]! / norm) * 3 * sigma);
    kept++;
    acc += lam;
  }
  return { k: kept, mean, comps: Float32Array.from(comps) };
}

/** Detail code of a residual: least squares on the (orthogonal) components, clamped, int8-quantised. */
export function detailCode(b: DetailBasis, residual: Float32Array, out = new Float32Array(b.k)): Float32Array {
  for (let j = 0; j < b.k; j++) {
    let s = 0, nn = 0;
    for (let i = 0; i < D; i++) {
      const c = b.comps[j * D + i]!;
      s += c * (residual[i]! - b.mean[i]!);
      nn += c * c;
    }
    const v = nn > 0 ? s / nn : 0;
    out[j] = Math.round(Math.max(-1, Math.min(1, v)) * 127) / 127;
  }
  return out;
}

/** Add mean + Σ code·comp to head-space points H (478×3) in place. */
export function applyDetail(b: DetailBasis, code: ArrayLike<number> | undefined, H: Float32Array): void {
  const m = b.mean;
  for (let i = 0; i < D; i++) H[i] += m[i]!;
  if (!code) return;
  const k = Math.min(b.k, code.length);
  for (let j = 0; j < k; j++) {
    const c = code[j]!;
    if (!Number.isFinite(c) || c === 0) continue;
    const o = j * D;
    for (let i = 0; i < D; i++) H[i] += c * b.comps[o + i]!;
  }
}
