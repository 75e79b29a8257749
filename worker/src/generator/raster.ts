/**
 * Minimal software rasteriser for the mesh generator: affine-textured triangles with bilinear
 * sampling and an optional depth test, row-span traversal (no bounding-box waste), no allocation
 * per triangle or pixel. Coordinates are continuous pixel coordinates: pixel (i, j) covers
 * [i, i+1) × [j, j+1) and is sampled at its centre (i + 0.5, j + 0.5). Texture coordinates use
 * the same convention in texel units.
 */

export interface Texture {
  width: number;
  height: number;
  /** RGBA */
  data: Uint8Array | Uint8ClampedArray;
}

export interface Target {
  width: number;
  height: number;
  /** RGBA */
  data: Uint8ClampedArray;
  /** depth per pixel (smaller = closer), or null for no depth test */
  depth: Float32Array | null;
}

/**
 * Solve the span of x (pixel indices) on row `py` where all barycentrics are ≥ 0.
 * Shared state written into `span` to avoid allocation: [xStart, xEnd) and the per-row linear
 * forms l1 = a1·x + r1, l2 = a2·x + r2 evaluated at pixel centres.
 */
const span = new Float64Array(6);

function rowSpan(
  yc: number, x0: number, y0: number, a1: number, b1: number, c1: number, a2: number, b2: number, c2: number, W: number,
): boolean {
  // l1(x) = a1 x + b1 yc + c1 ; l2 = a2 x + b2 yc + c2 ; l0 = 1 − l1 − l2
  const r1 = b1 * yc + c1, r2 = b2 * yc + c2;
  let lo = 0.5, hi = W - 0.5; // pixel-centre range
  const eps = 1e-7;
  // l1 ≥ 0
  if (a1 > 0) lo = Math.max(lo, (-r1 - eps) / a1);
  else if (a1 < 0) hi = Math.min(hi, (-r1 - eps) / a1);
  else if (r1 < -eps) return false;
  // l2 ≥ 0
  if (a2 > 0) lo = Math.max(lo, (-r2 - eps) / a2);
  else if (a2 < 0) hi = Math.min(hi, (-r2 - eps) / a2);
  else if (r2 < -eps) return false;
  // l0 = 1 − l1 − l2 ≥ 0  ⇔ (a1 + a2) x ≤ 1 − r1 − r2
  const a0 = a1 + a2, r0 = 1 - r1 - r2;
  if (a0 > 0) hi = Math.min(hi, (r0 + eps) / a0);
  else if (a0 < 0) lo = Math.max(lo, (r0 + eps) / a0);
  else if (r0 < -eps) return false;
  if (hi < lo) return false;
  const xs = Math.ceil(lo - 0.5), xe = Math.floor(hi - 0.5) + 1; // pixel indices [xs, xe)
  if (xe <= xs) return false;
  span[0] = xs; span[1] = xe; span[2] = r1; span[3] = r2;
  void x0; void y0;
  return true;
}

/**
 * Draw one triangle with texture coordinates (u, v in texel units) and depth z.
 * Returns the number of pixels written.
 */
export function drawTexturedTriangle(
  t: Target, tex: Texture,
  x0: number, y0: number, z0: number, u0: number, v0: number,
  x1: number, y1: number, z1: number, u1: number, v1: number,
  x2: number, y2: number, z2: number, u2: number, v2: number,
): number {
  const area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
  if (!(Math.abs(area) > 1e-9)) return 0;
  const W = t.width, H = t.height;
  const ymin = Math.max(0, Math.ceil(Math.min(y0, y1, y2) - 0.5));
  const ymax = Math.min(H - 1, Math.floor(Math.max(y0, y1, y2) - 0.5));
  if (ymax < ymin) return 0;
  const inv = 1 / area;
  // l1 = ((x − x0)(y2 − y0) − (x2 − x0)(y − y0)) / area ; l2 = ((x1 − x0)(y − y0) − (x − x0)(y1 − y0)) / area
  const a1 = (y2 - y0) * inv, b1 = -(x2 - x0) * inv, c1 = (-x0 * (y2 - y0) + (x2 - x0) * y0) * inv;
  const a2 = -(y1 - y0) * inv, b2 = (x1 - x0) * inv, c2 = (-(x1 - x0) * y0 + x0 * (y1 - y0)) * inv;
  const du1 = u1 - u0, du2 = u2 - u0, dv1 = v1 - v0, dv2 = v2 - v0, dz1 = z1 - z0, dz2 = z2 - z0;
  const dudx = a1 * du1 + a2 * du2, dvdx = a1 * dv1 + a2 * dv2, dzdx = a1 * dz1 + a2 * dz2;
  const dst = t.data, depth = t.depth, src = tex.data, TW = tex.width, TH = tex.height;
  const maxX = TW - 1.0001, maxY = TH - 1.0001;
  let count = 0;
  for (let py = ymin; py <= ymax; py++) {
    const yc = py + 0.5;
    if (!rowSpan(yc, x0, y0, a1, b1, c1, a2, b2, c2, W)) continue;
    const xs = span[0], xe = span[1];
    const xc = xs + 0.5;
    const l1 = a1 * xc + span[2], l2 = a2 * xc + span[3];
    // texel-centre convention: sample at (u − 0.5, v − 0.5)
    let u = u0 + l1 * du1 + l2 * du2 - 0.5;
    let v = v0 + l1 * dv1 + l2 * dv2 - 0.5;
    let z = z0 + l1 * dz1 + l2 * dz2;
    let di = (py * W + xs);
    for (let x = xs; x < xe; x++, di++, u += dudx, v += dvdx, z += dzdx) {
      if (depth !== null) {
        if (z >= depth[di]) continue;
        depth[di] = z;
      }
      const uu = u < 0 ? 0 : u > maxX ? maxX : u;
      const vv = v < 0 ? 0 : v > maxY ? maxY : v;
      const ix = uu | 0, iy = vv | 0;
      const fx = uu - ix, fy = vv - iy;
      const s0 = (iy * TW + ix) << 2, s1 = s0 + (TW << 2);
      const w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy), w01 = (1 - fx) * fy, w11 = fx * fy;
      const o = di << 2;
      dst[o] = src[s0] * w00 + src[s0 + 4] * w10 + src[s1] * w01 + src[s1 + 4] * w11;
      dst[o + 1] = src[s0 + 1] * w00 + src[s0 + 5] * w10 + src[s1 + 1] * w01 + src[s1 + 5] * w11;
      dst[o + 2] = src[s0 + 2] * w00 + src[s0 + 6] * w10 + src[s1 + 2] * w01 + src[s1 + 6] * w11;
      dst[o + 3] = 255;
      count++;
    }
  }
  return count;
}

/**
 * Mouth-cavity shader input: maps (s, t) (s = along the mouth 0..1, t = 0 at the upper inner lip,
 * 1 at the lower inner lip) to colours. `srcUpper`/`srcLower` hold the source photo's inner-lip
 * positions at `samples` evenly spaced s values (x, y pairs, texel units).
 */
export interface MouthShader {
  samples: number;
  srcUpper: Float32Array;
  srcLower: Float32Array;
  /** source mouth opening in target pixels (≤ 0: closed source mouth, use synthetic teeth) */
  sourceGapPx: number;
  /** current opening in target pixels */
  targetGapPx: number;
  /** height of the synthetic upper-teeth band in target pixels */
  teethPx: number;
}

/** Draw a mouth-cavity triangle with per-vertex (s, t) attributes. */
export function drawMouthTriangle(
  t: Target, tex: Texture, m: MouthShader,
  x0: number, y0: number, z0: number, s0: number, t0: number,
  x1: number, y1: number, z1: number, s1: number, t1: number,
  x2: number, y2: number, z2: number, s2: number, t2: number,
): void {
  const area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
  if (!(Math.abs(area) > 1e-9)) return;
  const W = t.width, H = t.height;
  const ymin = Math.max(0, Math.ceil(Math.min(y0, y1, y2) - 0.5));
  const ymax = Math.min(H - 1, Math.floor(Math.max(y0, y1, y2) - 0.5));
  if (ymax < ymin) return;
  const inv = 1 / area;
  const a1 = (y2 - y0) * inv, b1 = -(x2 - x0) * inv, c1 = (-x0 * (y2 - y0) + (x2 - x0) * y0) * inv;
  const a2 = -(y1 - y0) * inv, b2 = (x1 - x0) * inv, c2 = (-(x1 - x0) * y0 + x0 * (y1 - y0)) * inv;
  const ds1 = s1 - s0, ds2 = s2 - s0, dt1 = t1 - t0, dt2 = t2 - t0, dz1 = z1 - z0, dz2 = z2 - z0;
  const dsdx = a1 * ds1 + a2 * ds2, dtdx = a1 * dt1 + a2 * dt2, dzdx = a1 * dz1 + a2 * dz2;
  const dst = t.data, depth = t.depth, src = tex.data, TW = tex.width, TH = tex.height;
  const maxX = TW - 1.0001, maxY = TH - 1.0001;
  const n = m.samples, gapS = m.sourceGapPx, gapT = m.targetGapPx;
  const useSource = gapS > 0.75;
  const ratio = useSource ? (gapT > gapS ? gapT / gapS : 1) : 0;
  for (let py = ymin; py <= ymax; py++) {
    if (!rowSpan(py + 0.5, x0, y0, a1, b1, c1, a2, b2, c2, W)) continue;
    const xs = span[0], xe = span[1];
    const xc = xs + 0.5;
    const l1 = a1 * xc + span[2], l2 = a2 * xc + span[3];
    let s = s0 + l1 * ds1 + l2 * ds2, tt = t0 + l1 * dt1 + l2 * dt2, z = z0 + l1 * dz1 + l2 * dz2;
    let di = py * W + xs;
    for (let x = xs; x < xe; x++, di++, s += dsdx, tt += dtdx, z += dzdx) {
      if (depth !== null) {
        if (z >= depth[di]) continue;
        depth[di] = z;
      }
      const o = di << 2;
      const tc = tt < 0 ? 0 : tt > 1 ? 1 : tt;
      // darkness of the cavity grows with depth below the upper lip (simple ambient occlusion)
      const frac = useSource ? tc * ratio : 2;
      if (frac < 0.999) {
        const sc = (s < 0 ? 0 : s > 1 ? 1 : s) * (n - 1);
        const k = Math.min(n - 2, sc | 0), f = sc - k;
        const ux = m.srcUpper[k * 2] * (1 - f) + m.srcUpper[k * 2 + 2] * f;
        const uy = m.srcUpper[k * 2 + 1] * (1 - f) + m.srcUpper[k * 2 + 3] * f;
        const lx = m.srcLower[k * 2] * (1 - f) + m.srcLower[k * 2 + 2] * f;
        const ly = m.srcLower[k * 2 + 1] * (1 - f) + m.srcLower[k * 2 + 3] * f;
        let u = ux + (lx - ux) * frac - 0.5, v = uy + (ly - uy) * frac - 0.5;
        u = u < 0 ? 0 : u > maxX ? maxX : u;
        v = v < 0 ? 0 : v > maxY ? maxY : v;
        const ix = u | 0, iy = v | 0, fx = u - ix, fy = v - iy;
        const q0 = (iy * TW + ix) << 2, q1 = q0 + (TW << 2);
        const w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy), w01 = (1 - fx) * fy, w11 = fx * fy;
        const shade = ratio > 1 ? 1 - 0.35 * frac * frac : 1;
        dst[o] = (src[q0] * w00 + src[q0 + 4] * w10 + src[q1] * w01 + src[q1 + 4] * w11) * shade;
        dst[o + 1] = (src[q0 + 1] * w00 + src[q0 + 5] * w10 + src[q1 + 1] * w01 + src[q1 + 5] * w11) * shade;
        dst[o + 2] = (src[q0 + 2] * w00 + src[q0 + 6] * w10 + src[q1 + 2] * w01 + src[q1 + 6] * w11) * shade;
      } else {
        const dpx = tc * gapT;
        const edge = s < 0.12 || s > 0.88 ? 0.6 : 1; // darker towards the corners
        if (!useSource && dpx < m.teethPx && s > 0.15 && s < 0.85) {
          const g = (1 - 0.25 * (dpx / m.teethPx)) * edge;
          dst[o] = 222 * g; dst[o + 1] = 214 * g; dst[o + 2] = 200 * g;
        } else {
          // cavity: dark red-brown, slightly lighter near the lower lip (tongue)
          const tg = tc > 0.6 ? (tc - 0.6) * 2.5 : 0;
          dst[o] = (38 + 60 * tg) * edge; dst[o + 1] = (14 + 14 * tg) * edge; dst[o + 2] = (16 + 16 * tg) * edge;
        }
      }
      dst[o + 3] = 255;
    }
  }
}

/** RGBA → I420 (BT.601 limited range, like libyuv ARGBToI420). Width and height must be even. */
export function rgbaToI420(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, out?: Uint8Array): Uint8Array {
  const ySize = width * height, cSize = (width >> 1) * (height >> 1);
  const dst = out ?? new Uint8Array(ySize + 2 * cSize);
  const uOff = ySize, vOff = ySize + cSize, cw = width >> 1;
  for (let y = 0; y < height; y++) {
    let s = y * width * 4, d = y * width;
    for (let x = 0; x < width; x++, s += 4, d++) {
      dst[d] = ((66 * rgba[s] + 129 * rgba[s + 1] + 25 * rgba[s + 2] + 128) >> 8) + 16;
    }
  }
  for (let y = 0; y < height; y += 2) {
    for (let x = 0; x < width; x += 2) {
      const a = (y * width + x) * 4, b = a + width * 4;
      const r = (rgba[a] + rgba[a + 4] + rgba[b] + rgba[b + 4] + 2) >> 2;
      const g = (rgba[a + 1] + rgba[a + 5] + rgba[b + 1] + rgba[b + 5] + 2) >> 2;
      const bl = (rgba[a + 2] + rgba[a + 6] + rgba[b + 2] + rgba[b + 6] + 2) >> 2;
      const c = (y >> 1) * cw + (x >> 1);
      dst[uOff + c] = ((-38 * r - 74 * g + 112 * bl + 128) >> 8) + 128;
      dst[vOff + c] = ((112 * r - 94 * g - 18 * bl + 128) >> 8) + 128;
    }
  }
  return dst;
}
