/**
 * Photometric loss of the Gaussian head and its gradient with respect to the rendered image:
 *   L = (1 − λ)·Σ w·((1 − s)·|I − Y| + s·SQ·(I − Y)²) / Σ w  +  λ·(1 − SSIM(luma I, luma Y))
 * w is a per-pixel weight (1 everywhere, more on the mouth: the mouth interior is what users of
 * GaussianAvatars/FlashAvatar report blurry); s a per-pixel share of squared error (0 without a
 * map: plain L1). SSIM: Gaussian window 11×11, σ = 1.5, K1 = 0.01,
 * K2 = 0.03 on luma in [0, 1], over the valid windows (the same definition as the benchmark's
 * ssimLuma), gradient derived through the filtered moments μ, E[x²], E[xy].
 * Buffers are allocated once per size (`LossState`).
 */
const WIN = 11, HALF = 5;
const GW = (() => {
  const w = new Float64Array(WIN);
  let s = 0;
  for (let i = 0; i < WIN; i++) s += w[i] = Math.exp(-((i - HALF) ** 2) / (2 * 1.5 * 1.5));
  for (let i = 0; i < WIN; i++) w[i]! /= s;
  return w;
})();
const LY = [0.299, 0.587, 0.114] as const;
/**
 * Scale of the squared-error share: SQ·e² has the same slope as |e| at |e| = 1/(2·SQ) = 0.1
 * (25 grey levels), so switching a pixel from L1 to L2 keeps its gradient where errors are typical.
 */
const SQ = 5;

export class LossState {
  readonly size: number;
  readonly dImage: Float32Array;
  private readonly x: Float32Array;
  private readonly y: Float32Array;
  private readonly maps: Float32Array[];
  private readonly tmp: Float32Array;
  private readonly dx: Float32Array;
  constructor(size: number) {
    this.size = size;
    const n = size * size;
    this.dImage = new Float32Array(n * 3);
    this.x = new Float32Array(n);
    this.y = new Float32Array(n);
    // filtered: mx, my, mxx, myy, mxy; then derivative maps a, b, c
    this.maps = Array.from({ length: 8 }, () => new Float32Array(n));
    this.tmp = new Float32Array(n);
    this.dx = new Float32Array(n);
  }

  /**
   * Loss of `image` (RGB float) against `target` (RGB float); fills this.dImage with dL/d(image).
   * `weight` per pixel or null. Returns { loss, l1, ssim }.
   */
  evaluate(image: Float32Array, target: Float32Array, weight: Float32Array | null, lambda: number, squared: Float32Array | null = null): { loss: number; l1: number; ssim: number } {
    const n = this.size * this.size, d = this.dImage;
    let wsum = 0;
    if (weight) for (let p = 0; p < n; p++) wsum += weight[p]!;
    else wsum = n;
    const kL1 = (1 - lambda) / (wsum * 3);
    let l1 = 0;
    for (let p = 0; p < n; p++) {
      const w = weight ? weight[p]! : 1;
      const s = squared ? squared[p]! : 0;
      if (s === 0) {
        for (let c = 0; c < 3; c++) {
          const q = p * 3 + c, e = image[q]! - target[q]!;
          l1 += w * Math.abs(e);
          d[q] = e > 0 ? w * kL1 : e < 0 ? -w * kL1 : 0;
        }
      } else {
        for (let c = 0; c < 3; c++) {
          const q = p * 3 + c, e = image[q]! - target[q]!;
          l1 += w * ((1 - s) * Math.abs(e) + s * SQ * e * e);
          d[q] = w * kL1 * ((1 - s) * (e > 0 ? 1 : e < 0 ? -1 : 0) + 2 * s * SQ * e);
        }
      }
    }
    l1 /= wsum * 3;
    let ssim = 1;
    if (lambda > 0) {
      const x = this.x, y = this.y;
      for (let p = 0; p < n; p++) {
        x[p] = LY[0] * image[p * 3]! + LY[1] * image[p * 3 + 1]! + LY[2] * image[p * 3 + 2]!;
        y[p] = LY[0] * target[p * 3]! + LY[1] * target[p * 3 + 1]! + LY[2] * target[p * 3 + 2]!;
      }
      ssim = this.ssimWithGrad(-lambda);
      const g = this.dx;
      for (let p = 0; p < n; p++) {
        const v = g[p]!;
        d[p * 3] += LY[0] * v; d[p * 3 + 1] += LY[1] * v; d[p * 3 + 2] += LY[2] * v;
      }
    }
    return { loss: (1 - lambda) * l1 + lambda * (1 - ssim), l1, ssim };
  }

  /** mean SSIM of this.x vs this.y; this.dx = scale · dSSIM/dx */
  private ssimWithGrad(scale: number): number {
    const S = this.size, n = S * S, x = this.x, y = this.y;
    const [mx, my, mxx, myy, mxy, da, db, dc] = this.maps as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
    const tmp = this.tmp;
    // filtered moments at every window centre (valid centres: HALF .. S−HALF−1)
    const prod = this.dx;
    this.filterValid(x, mx);
    this.filterValid(y, my);
    for (let p = 0; p < n; p++) prod[p] = x[p]! * x[p]!;
    this.filterValid(prod, mxx);
    for (let p = 0; p < n; p++) prod[p] = y[p]! * y[p]!;
    this.filterValid(prod, myy);
    for (let p = 0; p < n; p++) prod[p] = x[p]! * y[p]!;
    this.filterValid(prod, mxy);
    const C1 = 0.01 ** 2, C2 = 0.03 ** 2;
    const lo = HALF, hi = S - HALF;
    const count = (hi - lo) * (hi - lo);
    let sum = 0;
    da.fill(0); db.fill(0); dc.fill(0);
    const k = scale / count;
    for (let yy = lo; yy < hi; yy++) {
      for (let xx = lo; xx < hi; xx++) {
        const p = yy * S + xx;
        const ux = mx[p]!, uy = my[p]!;
        const vx = mxx[p]! - ux * ux, vy = myy[p]! - uy * uy, cxy = mxy[p]! - ux * uy;
        const A1 = 2 * ux * uy + C1, A2 = 2 * cxy + C2, B1 = ux * ux + uy * uy + C1, B2 = vx + vy + C2;
        const s = (A1 * A2) / (B1 * B2);
        sum += s;
        // ∂s/∂ux (direct), ∂s/∂vx, ∂s/∂cxy; then through vx = mxx − ux², cxy = mxy − ux·uy
        const dUx = (2 * uy * A2) / (B1 * B2) - (2 * ux * s) / B1;
        const dVx = -s / B2;
        const dC = (2 * A1) / (B1 * B2);
        da[p] = k * (dUx - 2 * ux * dVx - uy * dC); // ∂/∂mx
        db[p] = k * dVx; // ∂/∂mxx
        dc[p] = k * dC; // ∂/∂mxy
      }
    }
    // dS/dx_q = (gᵀ*da)_q + 2·x_q·(gᵀ*db)_q + y_q·(gᵀ*dc)_q ; the window is symmetric, so gᵀ = g (full support)
    const out = this.dx;
    this.filterFull(da, tmp);
    out.set(tmp);
    this.filterFull(db, tmp);
    for (let p = 0; p < n; p++) out[p] += 2 * x[p]! * tmp[p]!;
    this.filterFull(dc, tmp);
    for (let p = 0; p < n; p++) out[p] += y[p]! * tmp[p]!;
    return sum / count;
  }

  /** separable Gaussian at the valid centres (others left 0) */
  private filterValid(src: Float32Array, dst: Float32Array): void {
    const S = this.size, t = this.tmp;
    t.fill(0);
    for (let y = 0; y < S; y++) {
      const r = y * S;
      for (let x = HALF; x < S - HALF; x++) {
        let s = 0;
        for (let k = 0; k < WIN; k++) s += GW[k]! * src[r + x - HALF + k]!;
        t[r + x] = s;
      }
    }
    dst.fill(0);
    for (let y = HALF; y < S - HALF; y++) {
      for (let x = HALF; x < S - HALF; x++) {
        let s = 0;
        for (let k = 0; k < WIN; k++) s += GW[k]! * t[(y - HALF + k) * S + x]!;
        dst[y * S + x] = s;
      }
    }
  }

  /** adjoint of filterValid: spreads each (valid-centre) value over its window */
  private filterFull(src: Float32Array, dst: Float32Array): void {
    const S = this.size, t = this.dxTmp();
    t.fill(0);
    for (let y = HALF; y < S - HALF; y++) {
      for (let x = HALF; x < S - HALF; x++) {
        const v = src[y * S + x]!;
        if (v === 0) continue;
        for (let k = 0; k < WIN; k++) t[(y - HALF + k) * S + x] += GW[k]! * v;
      }
    }
    dst.fill(0);
    for (let y = 0; y < S; y++) {
      const r = y * S;
      for (let x = HALF; x < S - HALF; x++) {
        const v = t[r + x]!;
        if (v === 0) continue;
        for (let k = 0; k < WIN; k++) dst[r + x - HALF + k] += GW[k]! * v;
      }
    }
  }

  private fullTmp: Float32Array | null = null;
  private dxTmp(): Float32Array {
    return (this.fullTmp ??= new Float32Array(this.size * this.size));
  }
}
