/**
 * Image scores of the Gaussian head on held-out frames: PSNR over RGB bytes, SSIM on luma (the
 * loss's definition: 11×11 Gaussian window, σ 1.5, valid windows), and PSNR inside the face
 * outline (the SILHOUETTE polygon of the ground-truth frame's landmarks).
 */
import { SILHOUETTE } from '../face/expression-code.ts';
import { LossState } from './loss.ts';

/** PSNR (dB) over R, G, B of two RGBA byte images, optionally only where mask[p] ≠ 0. */
export function psnrBytes(a: ArrayLike<number>, b: ArrayLike<number>, n: number, mask?: Uint8Array): number {
  let se = 0, count = 0;
  for (let p = 0; p < n; p++) {
    if (mask && !mask[p]) continue;
    for (let c = 0; c < 3; c++) {
      const d = a[p * 4 + c]! - b[p * 4 + c]!;
      se += d * d;
    }
    count += 3;
  }
  if (count === 0) return NaN;
  const mse = se / count;
  return mse === 0 ? 100 : 10 * Math.log10((255 * 255) / mse);
}

/** Mean SSIM of two RGBA byte images (luma). */
export function ssimBytes(a: ArrayLike<number>, b: ArrayLike<number>, size: number, state = new LossState(size)): number {
  const n = size * size;
  const fa = new Float32Array(n * 3), fb = new Float32Array(n * 3);
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) { fa[p * 3 + c] = a[p * 4 + c]! / 255; fb[p * 3 + c] = b[p * 4 + c]! / 255; }
  return state.evaluate(fa, fb, null, 1).ssim;
}

/** Face-outline mask (1 inside the SILHOUETTE polygon of 478×3 landmarks in pixels). */
export function faceMask(landmarks: ArrayLike<number>, size: number, out = new Uint8Array(size * size)): Uint8Array {
  out.fill(0);
  const xs = SILHOUETTE.map((i) => landmarks[i * 3]!), ys = SILHOUETTE.map((i) => landmarks[i * 3 + 1]!);
  const m = xs.length;
  const cross: number[] = [];
  for (let y = 0; y < size; y++) {
    const yc = y + 0.5;
    cross.length = 0;
    for (let i = 0, j = m - 1; i < m; j = i++) {
      const yi = ys[i]!, yj = ys[j]!;
      if ((yi > yc) !== (yj > yc)) cross.push(xs[i]! + ((yc - yi) / (yj - yi)) * (xs[j]! - xs[i]!));
    }
    cross.sort((a, b) => a - b);
    for (let k = 0; k + 1 < cross.length; k += 2) {
      const x0 = Math.max(0, Math.ceil(cross[k]! - 0.5)), x1 = Math.min(size - 1, Math.floor(cross[k + 1]! - 0.5));
      for (let x = x0; x <= x1; x++) out[y * size + x] = 1;
    }
  }
  return out;
}
