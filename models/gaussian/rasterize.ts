/**
 * Differentiable 3D Gaussian splatting rasterizer (the 3DGS / gsplat algorithm) for a scaled
 * orthographic camera, on the CPU, over typed arrays.
 *
 * Stages, one function each (gsplat's split):
 *   project   world Gaussians (pixel-space mean, 2×3 projected factor W with Σ2D = W·Wᵀ, opacity,
 *             colour) → 2D mean, conic (Σ2D⁻¹ after a 0.3 px² low-pass dilation), opacity-aware
 *             pixel rectangle, depth
 *   sort      global front-to-back order (radix sort on quantised depth, stable → deterministic)
 *   bin       per 16-row band, the sorted Gaussians whose rectangle meets the band
 *   composite front-to-back alpha compositing of each band (3DGS: α = min(0.99, o·exp(power)),
 *             skipped below 1/255, a pixel stops once its transmittance would fall below 1e-4),
 *             background colour behind
 *   backward  the reverse per-pixel pass of diff-gaussian-rasterization (renderCUDA backward):
 *             dL/d(colour, opacity, 2D mean, conic) per Gaussian, and dL/d(background)
 *   projectBackward  dL/d(conic) → dL/dΣ2D → dL/dW, dL/d(2D mean) → dL/d(mean)
 *
 * Why orthographic: the driver tracks a weak-perspective head pose (models/face/expression-code.ts),
 * so the whole pipeline lives in output-pixel space (x right, y down, z away from the camera, all in
 * pixels). The EWA Jacobian of an affine camera is its linear part, already folded into W, so
 * Σ2D = W·Wᵀ exactly (no first-order approximation).
 *
 * Conventions: pixel (x, y) covers [x, x+1) × [y, y+1); it samples the Gaussian at its centre
 * (x + 0.5, y + 0.5). power = −½(A·dx² + C·dy²) − B·dx·dy with (A, B, C) = (K00, K01, K11), K = Σ2D⁻¹.
 *
 * Work is split by bands (`bandOf`/threads), so two threads can composite disjoint rows of the same
 * frame; the backward writes per-thread gradient buffers that the caller sums in a fixed order
 * (deterministic results whatever the scheduling). Nothing here allocates per frame except when a
 * capacity must grow.
 */

export const BAND = 16;
/** dilation added to Σ2D (3DGS' low-pass filter), px² */
export const DILATION = 0.3;
export const ALPHA_MAX = 0.99;
export const ALPHA_MIN = 1 / 255;
export const T_MIN = 1e-4;

/**
 * exp(x) for x in [EXP_LO, 0] by linear interpolation in a 4096-entry table (relative error
 * < 5e-7, far below an 8-bit step), Math.exp below. ~2× faster than Math.exp in the hot loop of
 * the forward pass; the backward pass keeps Math.exp (the difference is below float32 noise).
 */
const EXP_LO = -8, EXP_N = 4096, EXP_K = EXP_N / -EXP_LO;
const EXP_TABLE = (() => {
  const t = new Float64Array(EXP_N + 2);
  for (let i = 0; i <= EXP_N + 1; i++) t[i] = Math.exp(EXP_LO + i / EXP_K);
  return t;
})();
function fastExp(x: number): number {
  if (x < EXP_LO) return Math.exp(x);
  const f = (x - EXP_LO) * EXP_K;
  const i = f | 0;
  const a = EXP_TABLE[i]!;
  return a + (EXP_TABLE[i + 1]! - a) * (f - i);
}

/** World-space Gaussians (pixel units) as the renderer consumes them. */
export interface SplatInput {
  count: number;
  /** x, y, z per Gaussian */
  mean: Float32Array;
  /** rows 0 and 1 of M (Σ = M·Mᵀ): w00 w01 w02 w10 w11 w12 per Gaussian */
  w: Float32Array;
  opacity: Float32Array;
  /** r, g, b in [0, 1] nominal */
  color: Float32Array;
}

/** Typed-array allocator: plain memory, or SharedArrayBuffer so a worker thread can composite bands. */
export type Alloc = { f32(n: number): Float32Array; i32(n: number): Int32Array; u8(n: number): Uint8Array; u32(n: number): Uint32Array };
export const PLAIN_ALLOC: Alloc = { f32: (n) => new Float32Array(n), i32: (n) => new Int32Array(n), u8: (n) => new Uint8Array(n), u32: (n) => new Uint32Array(n) };
export const SHARED_ALLOC: Alloc = {
  f32: (n) => new Float32Array(new SharedArrayBuffer(n * 4)),
  i32: (n) => new Int32Array(new SharedArrayBuffer(n * 4)),
  u8: (n) => new Uint8Array(new SharedArrayBuffer(n)),
  u32: (n) => new Uint32Array(new SharedArrayBuffer(n * 4)),
};

/** Per-frame projected state and the composited image (one set per render size). */
export class RasterState {
  readonly size: number;
  readonly bands: number;
  readonly alloc: Alloc;
  /** shared states have a fixed capacity (a worker holds views of the buffers) */
  readonly fixed: boolean;
  capacity = 0;
  mean2: Float32Array = new Float32Array(0);
  conic: Float32Array = new Float32Array(0);
  /** ln(αmin/o): power below it means α < αmin */
  thr: Float32Array = new Float32Array(0);
  /** x0, y0, x1, y1 (exclusive); x0 = x1 = 0 for culled Gaussians */
  rect: Int32Array = new Int32Array(0);
  depth: Float32Array = new Float32Array(0);
  order: Int32Array = new Int32Array(0);
  private keys = new Uint32Array(0);
  private tmpOrder = new Int32Array(0);
  private readonly hist = new Uint32Array(1 << 16);
  visibleCount = 0;
  /** α below which a Gaussian is skipped at a pixel (3DGS: 1/255); tests lower it so that the cut-off's boundary term vanishes from finite differences */
  alphaMin = ALPHA_MIN;
  /**
   * transmittance below which a pixel stops (3DGS: 1e-4). Training keeps 1e-4; the live renderer
   * may stop at 1/255, where what is behind can no longer change the 8-bit output by more than 1.
   */
  tMin = T_MIN;
  readonly bandStart: Int32Array;
  bandItems: Int32Array = new Int32Array(0);
  /** RGB float image, composited */
  readonly image: Float32Array;
  /** final transmittance per pixel */
  readonly trans: Float32Array;
  /** index (within the pixel's band list) of the last contributing Gaussian, −1 if none */
  readonly last: Int32Array;
  readonly done: Uint8Array;
  /** per row: pixels not yet done (forward early-out), then the row's largest `last` (backward early-out) */
  readonly rowLeft: Int32Array;
  readonly rowLast: Int32Array;
  // backward scratch (per pixel)
  readonly bT: Float32Array;
  readonly bAcc: Float32Array;
  readonly bLastA: Float32Array;
  readonly bLastC: Float32Array;

  constructor(size: number, capacity = 0, alloc: Alloc = PLAIN_ALLOC, fixed = false) {
    if (!Number.isInteger(size) || size < 8 || size > 4096) throw new TypeError(`RasterState: size must be an integer in [8, 4096], got ${size}`);
    this.size = size;
    this.bands = Math.ceil(size / BAND);
    this.alloc = alloc;
    this.fixed = false;
    this.bandStart = alloc.i32(this.bands + 1);
    const n = size * size;
    this.image = alloc.f32(n * 3);
    this.trans = alloc.f32(n);
    this.last = alloc.i32(n);
    this.done = alloc.u8(n);
    this.rowLeft = alloc.i32(size);
    this.rowLast = alloc.i32(size);
    this.bT = alloc.f32(n);
    this.bAcc = alloc.f32(n * 3);
    this.bLastA = alloc.f32(n);
    this.bLastC = alloc.f32(n * 3);
    this.ensure(capacity);
    if (fixed) {
      // every Gaussian can meet every band: the band lists can never outgrow this
      this.bandItems = alloc.i32(Math.max(1, capacity) * this.bands);
      this.fixed = true;
    }
  }

  ensure(count: number): void {
    if (count <= this.capacity) return;
    if (this.fixed) throw new RangeError(`RasterState: fixed capacity ${this.capacity} < ${count}`);
    const c = Math.max(count, Math.ceil(this.capacity * 1.5));
    const a = this.alloc;
    this.capacity = c;
    this.mean2 = a.f32(c * 2);
    this.conic = a.f32(c * 3);
    this.thr = a.f32(c);
    this.rect = a.i32(c * 4);
    this.depth = a.f32(c);
    this.order = a.i32(c);
    this.keys = new Uint32Array(c);
    this.tmpOrder = new Int32Array(c);
    if (this.bandItems.length < c * 2) this.bandItems = a.i32(c * 2);
  }

  /** @internal radix-sort scratch */
  scratch(): { keys: Uint32Array; tmp: Int32Array; hist: Uint32Array } {
    return { keys: this.keys, tmp: this.tmpOrder, hist: this.hist };
  }

  /** The buffers a compositing worker needs (shared states only). */
  sharedViews(): RasterViews {
    return {
      size: this.size, alphaMin: this.alphaMin, tMin: this.tMin, mean2: this.mean2, conic: this.conic, thr: this.thr, rect: this.rect,
      bandStart: this.bandStart, bandItems: this.bandItems, image: this.image, trans: this.trans, last: this.last, done: this.done,
      rowLeft: this.rowLeft, rowLast: this.rowLast,
      bT: this.bT, bAcc: this.bAcc, bLastA: this.bLastA, bLastC: this.bLastC,
    };
  }
}

/** What compositeBand/backwardBand read and write: a RasterState, or a worker's views of a shared one. */
export interface RasterViews {
  size: number;
  alphaMin: number;
  tMin: number;
  mean2: Float32Array; conic: Float32Array; thr: Float32Array; rect: Int32Array;
  bandStart: Int32Array; bandItems: Int32Array;
  image: Float32Array; trans: Float32Array; last: Int32Array; done: Uint8Array;
  rowLeft: Int32Array; rowLast: Int32Array;
  bT: Float32Array; bAcc: Float32Array; bLastA: Float32Array; bLastC: Float32Array;
}

/** Stage 1: project Gaussians [from, to) (thread-splittable: disjoint ranges write disjoint slots). */
export function project(g: SplatInput, st: RasterState, from = 0, to = g.count): void {
  const { mean, w, opacity } = g;
  const { mean2, conic, thr, rect, depth } = st;
  const size = st.size;
  for (let i = from; i < to; i++) {
    const o = opacity[i]!;
    const i6 = i * 6, i4 = i * 4;
    const w00 = w[i6]!, w01 = w[i6 + 1]!, w02 = w[i6 + 2]!, w10 = w[i6 + 3]!, w11 = w[i6 + 4]!, w12 = w[i6 + 5]!;
    const a = w00 * w00 + w01 * w01 + w02 * w02 + DILATION;
    const b = w00 * w10 + w01 * w11 + w02 * w12;
    const c = w10 * w10 + w11 * w11 + w12 * w12 + DILATION;
    const det = a * c - b * b;
    const mx = mean[i * 3]!, my = mean[i * 3 + 1]!;
    mean2[i * 2] = mx;
    mean2[i * 2 + 1] = my;
    depth[i] = mean[i * 3 + 2]!;
    if (!(o > st.alphaMin) || !(det > 0)) {
      rect[i4] = rect[i4 + 1] = rect[i4 + 2] = rect[i4 + 3] = 0;
      thr[i] = 0;
      continue;
    }
    const inv = 1 / det;
    conic[i * 3] = c * inv;
    conic[i * 3 + 1] = -b * inv;
    conic[i * 3 + 2] = a * inv;
    const l = Math.log(o / st.alphaMin);
    thr[i] = -l;
    // exact bounding box of the level set power = −ln(o/αmin): half-widths √(2·l·Σ00), √(2·l·Σ11)
    const rx = Math.sqrt(2 * l * a), ry = Math.sqrt(2 * l * c);
    let x0 = Math.floor(mx - rx), x1 = Math.ceil(mx + rx), y0 = Math.floor(my - ry), y1 = Math.ceil(my + ry);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > size) x1 = size;
    if (y1 > size) y1 = size;
    if (x0 >= x1 || y0 >= y1) x0 = x1 = y0 = y1 = 0;
    rect[i4] = x0; rect[i4 + 1] = y0; rect[i4 + 2] = x1; rect[i4 + 3] = y1;
  }
}

/**
 * Stage 2: front-to-back order of the visible Gaussians (st.order[0 .. visibleCount)). Two-pass
 * 16-bit LSD radix sort on the depth quantised to 32 bits over [min, max]: O(n), stable, no
 * comparisons, so equal depths keep index order (deterministic).
 */
export function sortByDepth(count: number, st: RasterState): void {
  const { rect, depth, order } = st;
  const { keys, tmp, hist } = st.scratch();
  let n = 0, lo = Infinity, hi = -Infinity;
  for (let i = 0; i < count; i++) {
    if (rect[i * 4 + 2]! > rect[i * 4]!) {
      const d = depth[i]!;
      if (d < lo) lo = d;
      if (d > hi) hi = d;
      tmp[n++] = i;
    }
  }
  st.visibleCount = n;
  if (n === 0) return;
  const k = hi > lo ? 4294967295 / (hi - lo) : 0;
  for (let j = 0; j < n; j++) keys[tmp[j]!] = Math.min(4294967295, Math.max(0, Math.floor((depth[tmp[j]!]! - lo) * k))) >>> 0;
  // pass 1: low 16 bits, tmp → order
  hist.fill(0);
  for (let j = 0; j < n; j++) hist[keys[tmp[j]!]! & 0xffff]!++;
  let s = 0;
  for (let b = 0; b < 65536; b++) { const c = hist[b]!; hist[b] = s; s += c; }
  for (let j = 0; j < n; j++) { const i = tmp[j]!; order[hist[keys[i]! & 0xffff]!++] = i; }
  // pass 2: high 16 bits, order → tmp → copy back
  hist.fill(0);
  for (let j = 0; j < n; j++) hist[keys[order[j]!]! >>> 16]!++;
  s = 0;
  for (let b = 0; b < 65536; b++) { const c = hist[b]!; hist[b] = s; s += c; }
  for (let j = 0; j < n; j++) { const i = order[j]!; tmp[hist[keys[i]! >>> 16]!++] = i; }
  order.set(tmp.subarray(0, n));
}

/** Stage 3: per band, the sorted Gaussians whose rectangle meets it (depth order kept). */
export function bin(st: RasterState): void {
  const { rect, order, bandStart, bands } = st;
  const n = st.visibleCount;
  bandStart.fill(0);
  for (let j = 0; j < n; j++) {
    const i = order[j]! * 4;
    const b0 = (rect[i + 1]! / BAND) | 0, b1 = ((rect[i + 3]! - 1) / BAND) | 0;
    for (let b = b0; b <= b1; b++) bandStart[b + 1]!++;
  }
  for (let b = 0; b < bands; b++) bandStart[b + 1]! += bandStart[b]!;
  const total = bandStart[bands]!;
  if (st.bandItems.length < total) st.bandItems = new Int32Array(Math.ceil(total * 1.5));
  const items = st.bandItems;
  const fill = st.scratch().hist; // reuse as per-band cursor (bands ≤ 65536)
  for (let b = 0; b < bands; b++) fill[b] = bandStart[b]!;
  for (let j = 0; j < n; j++) {
    const g = order[j]!, i = g * 4;
    const b0 = (rect[i + 1]! / BAND) | 0, b1 = ((rect[i + 3]! - 1) / BAND) | 0;
    for (let b = b0; b <= b1; b++) items[fill[b]!++] = g;
  }
}

/**
 * Stage 4: composite band `band` (rows [band·16, band·16+16)) front to back over `background`
 * (RGB float per pixel, or null = black).
 */
export function compositeBand(g: Pick<SplatInput, 'opacity' | 'color'>, st: RasterViews, background: Float32Array | null, band: number): void {
  const { size, mean2, conic, thr, rect, bandStart, bandItems, image, trans, last, done, rowLeft, rowLast } = st;
  const opacity = g.opacity, color = g.color, tMin = st.tMin;
  const by0 = band * BAND, by1 = Math.min(size, by0 + BAND);
  const p0 = by0 * size, p1 = by1 * size;
  trans.fill(1, p0, p1);
  image.fill(0, p0 * 3, p1 * 3);
  last.fill(-1, p0, p1);
  done.fill(0, p0, p1);
  rowLeft.fill(size, by0, by1);
  // once every pixel of the band is done, the remaining (farther) Gaussians cannot contribute
  let bandLeft = (by1 - by0) * size;
  const start = bandStart[band]!, count = bandStart[band + 1]! - start;
  for (let k = 0; k < count && bandLeft > 0; k++) {
    const gi = bandItems[start + k]!;
    const r4 = gi * 4;
    const x0 = rect[r4]!, x1 = rect[r4 + 2]!;
    const y0 = Math.max(rect[r4 + 1]!, by0), y1 = Math.min(rect[r4 + 3]!, by1);
    const mx = mean2[gi * 2]!, my = mean2[gi * 2 + 1]!;
    const A = conic[gi * 3]!, B = conic[gi * 3 + 1]!, C = conic[gi * 3 + 2]!;
    const o = opacity[gi]!, th = thr[gi]!;
    const cr = color[gi * 3]!, cg = color[gi * 3 + 1]!, cb = color[gi * 3 + 2]!;
    for (let y = y0; y < y1; y++) {
      if (rowLeft[y] === 0) continue;
      const dy = y + 0.5 - my;
      const hy = -0.5 * C * dy * dy;
      const by = B * dy;
      // the row's span inside the level set power ≥ th: ½A·dx² + B·dy·dx + (th − hy) ≤ 0
      const disc = by * by - 2 * A * (th - hy);
      if (disc < 0) continue;
      const sq = Math.sqrt(disc);
      let xa = Math.ceil(mx - 0.5 + (-by - sq) / A) - 1, xb = Math.floor(mx - 0.5 + (-by + sq) / A) + 2;
      if (xa < x0) xa = x0;
      if (xb > x1) xb = x1;
      let p = y * size + xa;
      for (let x = xa; x < xb; x++, p++) {
        const dx = x + 0.5 - mx;
        const power = hy - (0.5 * A * dx + by) * dx;
        if (power < th || power > 0 || done[p]) continue;
        let alpha = o * fastExp(power);
        if (alpha > ALPHA_MAX) alpha = ALPHA_MAX;
        const t = trans[p]!;
        const nt = t * (1 - alpha);
        if (nt < tMin) { done[p] = 1; rowLeft[y]--; bandLeft--; continue; }
        const wgt = alpha * t;
        const q = p * 3;
        image[q] += wgt * cr;
        image[q + 1] += wgt * cg;
        image[q + 2] += wgt * cb;
        trans[p] = nt;
        last[p] = k;
      }
    }
  }
  for (let y = by0; y < by1; y++) {
    let m = -1;
    for (let p = y * size, e = p + size; p < e; p++) if (last[p]! > m) m = last[p]!;
    rowLast[y] = m;
  }
  if (background) {
    for (let p = p0; p < p1; p++) {
      const t = trans[p]!, q = p * 3;
      image[q] += t * background[q]!;
      image[q + 1] += t * background[q + 1]!;
      image[q + 2] += t * background[q + 2]!;
    }
  }
}

/** Per-thread gradient accumulators of the 2D quantities (sum them in a fixed order). */
export class SplatGrads {
  constructor(private readonly alloc: Alloc = PLAIN_ALLOC) {}
  capacity = 0;
  mean2: Float32Array = new Float32Array(0);
  conic: Float32Array = new Float32Array(0);
  opacity: Float32Array = new Float32Array(0);
  color: Float32Array = new Float32Array(0);
  ensure(n: number): void {
    if (n <= this.capacity) return;
    this.capacity = n;
    this.mean2 = this.alloc.f32(n * 2);
    this.conic = this.alloc.f32(n * 3);
    this.opacity = this.alloc.f32(n);
    this.color = this.alloc.f32(n * 3);
  }
  zero(n: number): void {
    this.mean2.fill(0, 0, n * 2);
    this.conic.fill(0, 0, n * 3);
    this.opacity.fill(0, 0, n);
    this.color.fill(0, 0, n * 3);
  }
  addFrom(o: SplatGrads, n: number): void {
    for (let i = 0; i < n * 2; i++) this.mean2[i] += o.mean2[i]!;
    for (let i = 0; i < n * 3; i++) { this.conic[i] += o.conic[i]!; this.color[i] += o.color[i]!; }
    for (let i = 0; i < n; i++) this.opacity[i] += o.opacity[i]!;
  }
}

/**
 * Stage 5: backward pass of band `band` given dL/d(image) (RGB per pixel). Accumulates into `gr`;
 * writes dL/d(background) of the band's pixels into `gradBackground` when given.
 */
export function backwardBand(
  g: Pick<SplatInput, 'opacity' | 'color'>, st: RasterViews, background: Float32Array | null, dImage: Float32Array,
  gr: Pick<SplatGrads, 'mean2' | 'conic' | 'opacity' | 'color'>, gradBackground: Float32Array | null, band: number,
): void {
  const { size, mean2, conic, thr, rect, bandStart, bandItems, trans, last, rowLast, bT, bAcc, bLastA, bLastC } = st;
  const opacity = g.opacity, color = g.color;
  const gMean = gr.mean2, gConic = gr.conic, gOp = gr.opacity, gCol = gr.color;
  const by0 = band * BAND, by1 = Math.min(size, by0 + BAND);
  const p0 = by0 * size, p1 = by1 * size;
  for (let p = p0; p < p1; p++) bT[p] = trans[p]!;
  bAcc.fill(0, p0 * 3, p1 * 3);
  bLastA.fill(0, p0, p1);
  bLastC.fill(0, p0 * 3, p1 * 3);
  if (gradBackground) {
    for (let p = p0; p < p1; p++) {
      const t = trans[p]!, q = p * 3;
      gradBackground[q] = t * dImage[q]!;
      gradBackground[q + 1] = t * dImage[q + 1]!;
      gradBackground[q + 2] = t * dImage[q + 2]!;
    }
  }
  const start = bandStart[band]!, count = bandStart[band + 1]! - start;
  let bandLast = -1;
  for (let y = by0; y < by1; y++) if (rowLast[y]! > bandLast) bandLast = rowLast[y]!;
  for (let k = Math.min(count - 1, bandLast); k >= 0; k--) {
    const gi = bandItems[start + k]!;
    const r4 = gi * 4;
    const x0 = rect[r4]!, x1 = rect[r4 + 2]!;
    const y0 = Math.max(rect[r4 + 1]!, by0), y1 = Math.min(rect[r4 + 3]!, by1);
    const mx = mean2[gi * 2]!, my = mean2[gi * 2 + 1]!;
    const A = conic[gi * 3]!, B = conic[gi * 3 + 1]!, C = conic[gi * 3 + 2]!;
    const o = opacity[gi]!, th = thr[gi]!;
    const cr = color[gi * 3]!, cg = color[gi * 3 + 1]!, cb = color[gi * 3 + 2]!;
    let gmx = 0, gmy = 0, gA = 0, gB = 0, gC = 0, go = 0, gr_ = 0, gg = 0, gb = 0;
    for (let y = y0; y < y1; y++) {
      if (k > rowLast[y]!) continue;
      const dy = y + 0.5 - my;
      const hy = -0.5 * C * dy * dy;
      const by = B * dy;
      const disc = by * by - 2 * A * (th - hy);
      if (disc < 0) continue;
      const sq = Math.sqrt(disc);
      let xa = Math.ceil(mx - 0.5 + (-by - sq) / A) - 1, xb = Math.floor(mx - 0.5 + (-by + sq) / A) + 2;
      if (xa < x0) xa = x0;
      if (xb > x1) xb = x1;
      let p = y * size + xa;
      for (let x = xa; x < xb; x++, p++) {
        if (k > last[p]!) continue;
        const dx = x + 0.5 - mx;
        const power = hy - (0.5 * A * dx + by) * dx;
        if (power < th || power > 0) continue;
        const G = Math.exp(power);
        let alpha = o * G;
        const clamped = alpha > ALPHA_MAX;
        if (clamped) alpha = ALPHA_MAX;
        const oneMinus = 1 - alpha;
        const T = bT[p]! / oneMinus;
        bT[p] = T;
        const q = p * 3;
        const la = bLastA[p]!;
        const ar = la * bLastC[q]! + (1 - la) * bAcc[q]!;
        const ag = la * bLastC[q + 1]! + (1 - la) * bAcc[q + 1]!;
        const ab = la * bLastC[q + 2]! + (1 - la) * bAcc[q + 2]!;
        bAcc[q] = ar; bAcc[q + 1] = ag; bAcc[q + 2] = ab;
        bLastA[p] = alpha;
        bLastC[q] = cr; bLastC[q + 1] = cg; bLastC[q + 2] = cb;
        const dr = dImage[q]!, dg = dImage[q + 1]!, db = dImage[q + 2]!;
        const wgt = alpha * T;
        gr_ += wgt * dr; gg += wgt * dg; gb += wgt * db;
        if (clamped) continue; // α is constant in the clamp: no gradient to opacity or shape
        let dAlpha = ((cr - ar) * dr + (cg - ag) * dg + (cb - ab) * db) * T;
        if (background) dAlpha -= (trans[p]! / oneMinus) * (background[q]! * dr + background[q + 1]! * dg + background[q + 2]! * db);
        go += G * dAlpha;
        const dPow = dAlpha * alpha;
        gmx += dPow * (A * dx + B * dy);
        gmy += dPow * (C * dy + B * dx);
        gA += -0.5 * dPow * dx * dx;
        gB += -dPow * dx * dy;
        gC += -0.5 * dPow * dy * dy;
      }
    }
    gMean[gi * 2] += gmx; gMean[gi * 2 + 1] += gmy;
    gConic[gi * 3] += gA; gConic[gi * 3 + 1] += gB; gConic[gi * 3 + 2] += gC;
    gOp[gi] += go;
    gCol[gi * 3] += gr_; gCol[gi * 3 + 1] += gg; gCol[gi * 3 + 2] += gb;
  }
}

/**
 * Stage 6: dL/d(2D mean, conic) → dL/d(mean x, y) and dL/dW for Gaussians [from, to).
 * K = Σ2D⁻¹ ⇒ dL/dΣ2D = −K·Gk·K with Gk the symmetric gradient of K (the off-diagonal B is used
 * once in `power` with coefficient −1, i.e. Gk01 = gB/2); Σ2D = W·Wᵀ + 0.3·I ⇒ dL/dW = 2·GΣ·W.
 */
export function projectBackward(g: SplatInput, st: RasterState, gr: SplatGrads, outMean: Float32Array, outW: Float32Array, from = 0, to = g.count): void {
  const { w } = g;
  const { conic, rect } = st;
  for (let i = from; i < to; i++) {
    const i6 = i * 6;
    if (!(rect[i * 4 + 2]! > rect[i * 4]!)) {
      outMean[i * 3] = outMean[i * 3 + 1] = outMean[i * 3 + 2] = 0;
      for (let j = 0; j < 6; j++) outW[i6 + j] = 0;
      continue;
    }
    outMean[i * 3] = gr.mean2[i * 2]!;
    outMean[i * 3 + 1] = gr.mean2[i * 2 + 1]!;
    outMean[i * 3 + 2] = 0;
    const A = conic[i * 3]!, B = conic[i * 3 + 1]!, C = conic[i * 3 + 2]!;
    const gA = gr.conic[i * 3]!, gB = gr.conic[i * 3 + 1]! * 0.5, gC = gr.conic[i * 3 + 2]!;
    // Gk·K then −K·(Gk·K)
    const t00 = gA * A + gB * B, t01 = gA * B + gB * C, t10 = gB * A + gC * B, t11 = gB * B + gC * C;
    const s00 = -(A * t00 + B * t10), s01 = -(A * t01 + B * t11), s11 = -(B * t01 + C * t11);
    // dL/dW = 2·GΣ·W (GΣ symmetric: s00, s01, s11)
    const w00 = w[i6]!, w01 = w[i6 + 1]!, w02 = w[i6 + 2]!, w10 = w[i6 + 3]!, w11 = w[i6 + 4]!, w12 = w[i6 + 5]!;
    outW[i6] = 2 * (s00 * w00 + s01 * w10);
    outW[i6 + 1] = 2 * (s00 * w01 + s01 * w11);
    outW[i6 + 2] = 2 * (s00 * w02 + s01 * w12);
    outW[i6 + 3] = 2 * (s01 * w00 + s11 * w10);
    outW[i6 + 4] = 2 * (s01 * w01 + s11 * w11);
    outW[i6 + 5] = 2 * (s01 * w02 + s11 * w12);
  }
}

/** Single-threaded forward: project → sort → bin → composite all bands. */
export function renderSplats(g: SplatInput, st: RasterState, background: Float32Array | null): Float32Array {
  st.ensure(g.count);
  project(g, st);
  sortByDepth(g.count, st);
  bin(st);
  for (let b = 0; b < st.bands; b++) compositeBand(g, st, background, b);
  return st.image;
}
