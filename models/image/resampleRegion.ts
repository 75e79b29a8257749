/** Image resampling shared by enrollment (server), clip preparation and the generators (worker). */

/** Resample an RGBA image region to a square of side `size` (box prefilter when shrinking, then bilinear). */
export function resampleRegion(
  src: Uint8Array | Uint8ClampedArray, sw: number, sh: number,
  rx: number, ry: number, rsize: number, size: number,
): Uint8ClampedArray {
  const out = new Uint8ClampedArray(size * size * 4);
  const scale = rsize / size; // source pixels per output pixel
  const taps = Math.max(1, Math.ceil(scale - 1e-6));
  const step = scale / taps;
  const maxX = sw - 1.0001, maxY = sh - 1.0001;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let r = 0, g = 0, b = 0;
      for (let j = 0; j < taps; j++) {
        for (let i = 0; i < taps; i++) {
          let u = rx + x * scale + (i + 0.5) * step - 0.5;
          let v = ry + y * scale + (j + 0.5) * step - 0.5;
          u = u < 0 ? 0 : u > maxX ? maxX : u;
          v = v < 0 ? 0 : v > maxY ? maxY : v;
          const ix = u | 0, iy = v | 0, fx = u - ix, fy = v - iy;
          const q0 = (iy * sw + ix) * 4, q1 = q0 + sw * 4;
          const w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy), w01 = (1 - fx) * fy, w11 = fx * fy;
          r += src[q0] * w00 + src[q0 + 4] * w10 + src[q1] * w01 + src[q1 + 4] * w11;
          g += src[q0 + 1] * w00 + src[q0 + 5] * w10 + src[q1 + 1] * w01 + src[q1 + 5] * w11;
          b += src[q0 + 2] * w00 + src[q0 + 6] * w10 + src[q1 + 2] * w01 + src[q1 + 6] * w11;
        }
      }
      const n = taps * taps, o = (y * size + x) * 4;
      out[o] = r / n; out[o + 1] = g / n; out[o + 2] = b / n; out[o + 3] = 255;
    }
  }
  return out;
}
