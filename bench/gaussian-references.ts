/**
 * Reference scores for the `gaussian` bench: how far any model fitted to the training frames could
 * be expected to go on the held-out frames of a clip, measured on the frames themselves.
 *
 * - `trainingMeanPsnr`: every held-out frame against the per-pixel mean of the training crops (what
 *   a model that knows nothing about motion would show).
 * - `trainingPcaPsnr`: every held-out frame against its own least-squares reconstruction from the
 *   mean and the first k principal components of the training crops. This is an oracle: the
 *   coefficients are computed from the held-out frame itself, so it is the best any linear
 *   recombination of what the training frames showed can do. It is not a bound for models that
 *   warp (the Gaussian head moves content), but when it stays low, the held-out frames show things
 *   the training frames never did (an arm in a new place, a moved camera).
 * - `truthInsidePsnr`: a render with the ground truth pasted inside a mask (the face outline): the
 *   whole-crop score that a perfect face alone would give; what is left is outside the face.
 *
 * Pure functions over RGBA byte images of one size; the PCA works on the m×m Gram matrix of the m
 * training frames (m ≪ pixels), diagonalised with cyclic Jacobi (models/linalg/symmetricEigen.ts).
 */
import { psnrBytes } from '../models/gaussian/metrics.ts';
import { symmetricEigen } from '../models/linalg/symmetricEigen.ts';

/** Mean and the first k principal images (unit length, RGB floats 0..1, pixels × 3) of RGBA frames. */
export function principalImages(frames: readonly Uint8Array[], pixels: number, k: number): { mean: Float32Array; components: Float32Array[] } {
  const m = frames.length;
  if (m === 0) throw new TypeError('principalImages: no frames');
  const D = pixels * 3;
  const X = frames.map((f) => {
    if (f.length !== pixels * 4) throw new TypeError(`principalImages: RGBA frames of ${pixels} pixels expected`);
    const v = new Float32Array(D);
    for (let p = 0; p < pixels; p++) for (let c = 0; c < 3; c++) v[p * 3 + c] = f[p * 4 + c]! / 255;
    return v;
  });
  const mean = new Float32Array(D);
  for (const v of X) for (let j = 0; j < D; j++) mean[j] += v[j]! / m;
  for (const v of X) for (let j = 0; j < D; j++) v[j] -= mean[j]!;
  const G = new Float64Array(m * m);
  for (let a = 0; a < m; a++) {
    for (let b = a; b < m; b++) {
      const xa = X[a]!, xb = X[b]!;
      let s = 0;
      for (let j = 0; j < D; j++) s += xa[j]! * xb[j]!;
      G[a * m + b] = s;
      G[b * m + a] = s;
    }
  }
  const { values, vectors } = symmetricEigen(G, m);
  const components: Float32Array[] = [];
  for (let r = 0; r < Math.min(k, m - 1); r++) {
    if (!(values[r]! > 1e-9)) break;
    const u = new Float32Array(D);
    for (let a = 0; a < m; a++) {
      const w = vectors[r * m + a]!, xa = X[a]!;
      for (let j = 0; j < D; j++) u[j] += w * xa[j]!;
    }
    const norm = Math.sqrt(values[r]!);
    for (let j = 0; j < D; j++) u[j] /= norm;
    components.push(u);
  }
  return { mean, components };
}

/** PSNR of `frame` against its projection on mean + the first `k` components (all when k exceeds them). */
export function projectionPsnr(frame: Uint8Array, basis: { mean: Float32Array; components: Float32Array[] }, k: number, pixels: number): number {
  const D = pixels * 3;
  const y = new Float32Array(D);
  for (let p = 0; p < pixels; p++) for (let c = 0; c < 3; c++) y[p * 3 + c] = frame[p * 4 + c]! / 255 - basis.mean[p * 3 + c]!;
  const r = Float32Array.from(basis.mean);
  for (const u of basis.components.slice(0, k)) {
    let s = 0;
    for (let j = 0; j < D; j++) s += u[j]! * y[j]!;
    for (let j = 0; j < D; j++) r[j] += s * u[j]!;
  }
  const img = new Uint8ClampedArray(pixels * 4);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) img[p * 4 + c] = r[p * 3 + c]! * 255 + 0.5;
    img[p * 4 + 3] = 255;
  }
  return psnrBytes(img, frame, pixels);
}

/** PSNR of `render` with `truth` pasted where `mask` is set (a perfect region, the rest as rendered). */
export function truthInsidePsnr(render: ArrayLike<number>, truth: Uint8Array, mask: Uint8Array, pixels: number): number {
  const img = new Uint8ClampedArray(pixels * 4);
  for (let p = 0; p < pixels; p++) {
    const src = mask[p] ? truth : render;
    for (let c = 0; c < 4; c++) img[p * 4 + c] = src[p * 4 + c]!;
  }
  return psnrBytes(img, truth, pixels);
}
