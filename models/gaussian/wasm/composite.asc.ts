/**
 * AssemblyScript source of composite.wasm (WebAssembly with 128-bit SIMD): the forward compositing
 * of rasterize.ts (compositeBand over every band, front to back, the same α and transmittance
 * rules) for the live renderer, four pixels of a row span at a time, then the RGBA bytes over the
 * background. It keeps none of the backward pass's bookkeeping (training uses rasterize.ts).
 * Build: `npm run build:wasm` (scripts/build-wasm.ts); the committed .wasm must be that build
 * (test/unit/gaussian-wasm.test.ts). Loaded by ../wasmCompositor.ts.
 */
const BAND: i32 = 16;
const ALPHA_MAX: f32 = 0.99;

// 2^y for y ≤ 0 (4 lanes): y = n + f, 2^f by a degree-5 polynomial (rel. error < 2e-7 on [0, 1))
// @ts-ignore: decorator
@inline function exp2v(y: v128): v128 {
  const yc = f32x4.max(y, f32x4.splat(-126.0));
  const n = f32x4.floor(yc);
  const f = f32x4.sub(yc, n);
  let p = f32x4.splat(1.8775767e-3);
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(8.9893397e-3));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(5.5826318e-2));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(2.4015361e-1));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(6.9315308e-1));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(9.9999994e-1));
  const e = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(p, e);
}

/**
 * Front-to-back compositing of every band of one frame (the forward pass of rasterize.ts's
 * compositeBand, without the backward's bookkeeping), then RGBA bytes over the background.
 * Pointers are byte offsets into this module's memory; planes r, g, b, trans are size² + 4 floats.
 */
export function composite(
  size: i32, pMean2: usize, pConic: usize, pThr: usize, pRect: usize, pOpacity: usize, pColor: usize,
  pBandStart: usize, pBandItems: usize, pR: usize, pG: usize, pB: usize, pTrans: usize, pRowLeft: usize,
  pBackground: usize, pOut: usize, tMin: f32,
): void {
  const bands = (size + BAND - 1) / BAND;
  const n = size * size;
  const iota = f32x4(0, 1, 2, 3);
  const iotaI = i32x4(0, 1, 2, 3);
  const tMinV = f32x4.splat(tMin);
  const one = f32x4.splat(1);
  const amax = f32x4.splat(ALPHA_MAX);
  const zero = f32x4.splat(0);
  const LOG2E: f32 = 1.4426950408889634;
  // planes: 0 colour, 1 transmittance
  memory.fill(pR, 0, <usize>(n + 4) << 2);
  memory.fill(pG, 0, <usize>(n + 4) << 2);
  memory.fill(pB, 0, <usize>(n + 4) << 2);
  for (let p = 0; p < n + 4; p += 4) v128.store(pTrans + (<usize>p << 2), one);
  for (let band = 0; band < bands; band++) {
    const by0 = band * BAND;
    const by1 = min(size, by0 + BAND);
    for (let y = by0; y < by1; y++) store<i32>(pRowLeft + (<usize>y << 2), size);
    let bandLeft = (by1 - by0) * size;
    const start = load<i32>(pBandStart + (<usize>band << 2));
    const count = load<i32>(pBandStart + (<usize>(band + 1) << 2)) - start;
    for (let k = 0; k < count && bandLeft > 0; k++) {
      const gi = load<i32>(pBandItems + (<usize>(start + k) << 2));
      const r4 = pRect + (<usize>gi << 4);
      const x0 = load<i32>(r4), x1 = load<i32>(r4 + 8);
      const y0 = max(load<i32>(r4 + 4), by0), y1 = min(load<i32>(r4 + 12), by1);
      const mx = load<f32>(pMean2 + (<usize>gi << 3)), my = load<f32>(pMean2 + (<usize>gi << 3) + 4);
      const c3 = pConic + <usize>gi * 12;
      const A = load<f32>(c3), B = load<f32>(c3 + 4), C = load<f32>(c3 + 8);
      const invA: f32 = 1 / A;
      const o = load<f32>(pOpacity + (<usize>gi << 2)), th = load<f32>(pThr + (<usize>gi << 2));
      const col = pColor + <usize>gi * 12;
      const crV = f32x4.splat(load<f32>(col)), cgV = f32x4.splat(load<f32>(col + 4)), cbV = f32x4.splat(load<f32>(col + 8));
      const oV = f32x4.splat(o), thV = f32x4.splat(th);
      const halfA = f32x4.splat(0.5 * A);
      for (let y = y0; y < y1; y++) {
        let left = load<i32>(pRowLeft + (<usize>y << 2));
        if (left == 0) continue;
        const dy: f32 = <f32>y + 0.5 - my;
        const hy: f32 = -0.5 * C * dy * dy;
        const by: f32 = B * dy;
        const disc: f32 = by * by - 2 * A * (th - hy);
        if (disc < 0) continue;
        const sq = Mathf.sqrt(disc);
        let xa = <i32>Mathf.ceil(mx - 0.5 + (-by - sq) * invA) - 1;
        let xb = <i32>Mathf.floor(mx - 0.5 + (-by + sq) * invA) + 2;
        if (xa < x0) xa = x0;
        if (xb > x1) xb = x1;
        if (xa >= xb) continue;
        const hyV = f32x4.splat(hy), byV = f32x4.splat(by);
        const xbV = i32x4.splat(xb);
        const row = y * size;
        for (let x = xa; x < xb; x += 4) {
          const off = <usize>(row + x) << 2;
          const dx = f32x4.add(f32x4.splat(<f32>x + 0.5 - mx), iota);
          // power = hy − (½A·dx + by)·dx, clamped to ≤ 0
          const power = f32x4.min(f32x4.sub(hyV, f32x4.mul(f32x4.add(f32x4.mul(halfA, dx), byV), dx)), zero);
          const t = v128.load(pTrans + off);
          const live = v128.and(v128.and(i32x4.lt_s(i32x4.add(i32x4.splat(x), iotaI), xbV), f32x4.ge(power, thV)), f32x4.gt(t, zero));
          if (!v128.any_true(live)) continue;
          const alpha = f32x4.min(f32x4.mul(oV, exp2v(f32x4.mul(power, f32x4.splat(LOG2E)))), amax);
          const nt = f32x4.mul(t, f32x4.sub(one, alpha));
          const fin = v128.and(live, f32x4.lt(nt, tMinV));
          const add = v128.andnot(live, fin);
          const w = v128.and(f32x4.mul(alpha, t), add);
          v128.store(pR + off, f32x4.add(v128.load(pR + off), f32x4.mul(w, crV)));
          v128.store(pG + off, f32x4.add(v128.load(pG + off), f32x4.mul(w, cgV)));
          v128.store(pB + off, f32x4.add(v128.load(pB + off), f32x4.mul(w, cbV)));
          // finished pixels keep their transmittance, negated (the background still shows through it)
          v128.store(pTrans + off, v128.bitselect(f32x4.neg(t), v128.bitselect(nt, t, add), fin));
          if (v128.any_true(fin)) {
            const c = <i32>popcnt(i32x4.bitmask(fin));
            left -= c;
            bandLeft -= c;
          }
        }
        store<i32>(pRowLeft + (<usize>y << 2), left);
      }
    }
  }
  // RGBA bytes: colour + transmittance × background (RGB interleaved floats)
  for (let p = 0; p < n; p++) {
    const q = <usize>p << 2;
    const t = Mathf.abs(load<f32>(pTrans + q));
    store<f32>(pTrans + q, t);
    const bg = pBackground + <usize>p * 12;
    const r = (load<f32>(pR + q) + t * load<f32>(bg)) * 255 + 0.5;
    const g = (load<f32>(pG + q) + t * load<f32>(bg + 4)) * 255 + 0.5;
    const b = (load<f32>(pB + q) + t * load<f32>(bg + 8)) * 255 + 0.5;
    store<u32>(pOut + q, <u32>min(max(<i32>r, 0), 255) | (<u32>min(max(<i32>g, 0), 255) << 8) | (<u32>min(max(<i32>b, 0), 255) << 16) | (<u32>255 << 24));
  }
}
