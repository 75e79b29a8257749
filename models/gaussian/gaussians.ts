/**
 * Per-identity Gaussians bound to the scaffold's triangles, and the deformation that turns them
 * into world (pixel-space) Gaussians for one motion, with its analytic backward pass.
 *
 * Binding (GaussianAvatars): each Gaussian belongs to one triangle at fixed barycentric
 * coordinates on a regular grid (n² per triangle, FlashAvatar-style: no densification). The
 * triangle's frame is R = [e0, e0×n… (in-plane), n] (e0 = first edge, n = normal) and its scale s
 * = mean edge length, both measured on the deformed scaffold every frame. Per Gaussian:
 *   μ = Σ bᵢ·vᵢ + s·R·(offset + Σₖ eₖ·dPosₖ)          (eₖ = the 12 expression coefficients)
 *   M = s·R·Rot(q)·diag(exp(logScale)),  Σ = M·Mᵀ,    W = rows 0, 1 of M (orthographic camera)
 *   colour = clamp(colour₀ + Σₖ eₖ·dColourₖ, 0, 1)  (SH degree 0),  opacity = sigmoid(opacityLogit)
 * Expression deltas are 3D Gaussian Blendshapes' / RGBAvatar's linear per-Gaussian bases.
 */
import { EXPRESSION_SIZE, eulerFromRotation } from '../face/expression-code.ts';
import type { SplatInput } from './rasterize.ts';
import type { Scaffold } from './scaffold.ts';

export const E = EXPRESSION_SIZE;

/** Trainable tensors and their per-Gaussian widths. */
export const PARAM_LAYOUT = {
  offset: 3,
  logScale: 3,
  quat: 4,
  opacity: 1,
  color: 3,
  dPos: 3 * E,
  dColor: 3 * E,
} as const;
export type ParamName = keyof typeof PARAM_LAYOUT;
export const PARAM_NAMES = Object.keys(PARAM_LAYOUT) as ParamName[];

export interface GaussianParams {
  count: number;
  /** triangle of each Gaussian */
  tri: Uint32Array;
  /** barycentric weights of v0, v1, v2 */
  bary: Float32Array;
  p: Record<ParamName, Float32Array>;
}

export function allocParams(count: number): GaussianParams {
  const p = {} as Record<ParamName, Float32Array>;
  for (const k of PARAM_NAMES) p[k] = new Float32Array(count * PARAM_LAYOUT[k]);
  return { count, tri: new Uint32Array(count), bary: new Float32Array(count * 3), p };
}

/** Per-frame triangle frames: R (row-major 3×3) and scale, computed from scaffold vertices. */
export class TriangleFrames {
  readonly R: Float32Array;
  readonly s: Float32Array;
  constructor(readonly count: number) {
    this.R = new Float32Array(count * 9);
    this.s = new Float32Array(count);
  }
  compute(tris: Uint32Array, V: Float32Array): void {
    const { R, s } = this;
    for (let t = 0; t < this.count; t++) {
      const a = tris[t * 3]! * 3, b = tris[t * 3 + 1]! * 3, c = tris[t * 3 + 2]! * 3;
      const e1x = V[b]! - V[a]!, e1y = V[b + 1]! - V[a + 1]!, e1z = V[b + 2]! - V[a + 2]!;
      const e2x = V[c]! - V[a]!, e2y = V[c + 1]! - V[a + 1]!, e2z = V[c + 2]! - V[a + 2]!;
      const e3x = V[c]! - V[b]!, e3y = V[c + 1]! - V[b + 1]!, e3z = V[c + 2]! - V[b + 2]!;
      const l1 = Math.hypot(e1x, e1y, e1z), l2 = Math.hypot(e2x, e2y, e2z), l3 = Math.hypot(e3x, e3y, e3z);
      let nx = e1y * e2z - e1z * e2y, ny = e1z * e2x - e1x * e2z, nz = e1x * e2y - e1y * e2x;
      const nl = Math.hypot(nx, ny, nz);
      let ax: number, ay: number, az: number;
      if (nl < 1e-9 || l1 < 1e-9) {
        // degenerate: camera-aligned frame
        ax = 1; ay = 0; az = 0; nx = 0; ny = 0; nz = 1;
      } else {
        ax = e1x / l1; ay = e1y / l1; az = e1z / l1;
        nx /= nl; ny /= nl; nz /= nl;
      }
      // in-plane perpendicular: n × a
      const bx = ny * az - nz * ay, by = nz * ax - nx * az, bz = nx * ay - ny * ax;
      const o = t * 9;
      R[o] = ax; R[o + 1] = bx; R[o + 2] = nx;
      R[o + 3] = ay; R[o + 4] = by; R[o + 5] = ny;
      R[o + 6] = az; R[o + 7] = bz; R[o + 8] = nz;
      s[t] = Math.max(1e-3, (l1 + l2 + l3) / 3);
    }
  }
}

/** Rotation matrix of a quaternion (w, x, y, z), normalised first. */
function quatToRot(q: Float32Array, i: number, out: Float64Array): number {
  const r0 = q[i]!, x0 = q[i + 1]!, y0 = q[i + 2]!, z0 = q[i + 3]!;
  const n = Math.hypot(r0, x0, y0, z0) || 1;
  const r = r0 / n, x = x0 / n, y = y0 / n, z = z0 / n;
  out[0] = 1 - 2 * (y * y + z * z); out[1] = 2 * (x * y - r * z); out[2] = 2 * (x * z + r * y);
  out[3] = 2 * (x * y + r * z); out[4] = 1 - 2 * (x * x + z * z); out[5] = 2 * (y * z - r * x);
  out[6] = 2 * (x * z - r * y); out[7] = 2 * (y * z + r * x); out[8] = 1 - 2 * (x * x + y * y);
  return n;
}

/** Scratch for deform (one per thread). */
export class DeformScratch {
  readonly Rq = new Float64Array(9);
  /** the expression code, sanitised */
  readonly ex = new Float64Array(E);
}

/**
 * The per-Gaussian terms of `deform` that do not depend on the frame: N = Rq·S (rotation times
 * scales, 3×3 row-major) and the sigmoid opacity. For parameters that no longer change (a loaded
 * asset); saves a quaternion normalisation and four exp per Gaussian per frame.
 */
export class FrozenShape {
  readonly count: number;
  readonly N: Float32Array;
  readonly opacity: Float32Array;

  constructor(gp: GaussianParams) {
    const { logScale, quat, opacity } = gp.p;
    this.count = gp.count;
    this.N = new Float32Array(gp.count * 9);
    this.opacity = new Float32Array(gp.count);
    const Rq = new Float64Array(9);
    for (let i = 0; i < gp.count; i++) {
      quatToRot(quat, i * 4, Rq);
      const sx = Math.exp(logScale[i * 3]!), sy = Math.exp(logScale[i * 3 + 1]!), sz = Math.exp(logScale[i * 3 + 2]!);
      for (let r = 0; r < 3; r++) {
        this.N[i * 9 + r * 3] = Rq[r * 3]! * sx;
        this.N[i * 9 + r * 3 + 1] = Rq[r * 3 + 1]! * sy;
        this.N[i * 9 + r * 3 + 2] = Rq[r * 3 + 2]! * sz;
      }
      this.opacity[i] = 1 / (1 + Math.exp(-opacity[i]!));
    }
  }
}

/**
 * World Gaussians of one frame for Gaussians [from, to): writes `out` (a SplatInput of capacity ≥ count).
 * `frozen`: the precomputed frame-independent terms of these parameters (FrozenShape), if they no longer change.
 */
export function deform(gp: GaussianParams, frames: TriangleFrames, tris: Uint32Array, V: Float32Array, expr: ArrayLike<number>, out: SplatInput, scratch: DeformScratch, from = 0, to = gp.count, frozen?: FrozenShape): void {
  if (frozen && frozen.count !== gp.count) throw new TypeError(`deform: frozen shape of ${frozen.count} Gaussians for ${gp.count}`);
  const fN = frozen?.N, fOp = frozen?.opacity;
  const { tri, bary } = gp;
  const { offset, logScale, quat, opacity, color, dPos, dColor } = gp.p;
  const { R, s } = frames;
  const Rq = scratch.Rq;
  const mean = out.mean, W = out.w, op = out.opacity, col = out.color;
  const ex = scratch.ex;
  let anyE = false;
  for (let k = 0; k < E; k++) { ex[k] = Number.isFinite(expr[k]) ? expr[k]! : 0; if (ex[k] !== 0) anyE = true; }
  for (let i = from; i < to; i++) {
    const t = tri[i]!;
    const a = tris[t * 3]! * 3, b = tris[t * 3 + 1]! * 3, c = tris[t * 3 + 2]! * 3;
    const b0 = bary[i * 3]!, b1 = bary[i * 3 + 1]!, b2 = bary[i * 3 + 2]!;
    let ox = offset[i * 3]!, oy = offset[i * 3 + 1]!, oz = offset[i * 3 + 2]!;
    let cr = color[i * 3]!, cg = color[i * 3 + 1]!, cb = color[i * 3 + 2]!;
    if (anyE) {
      const d = i * 3 * E;
      for (let k = 0; k < E; k++) {
        const e = ex[k]!;
        if (e === 0) continue;
        ox += e * dPos[d + k * 3]!; oy += e * dPos[d + k * 3 + 1]!; oz += e * dPos[d + k * 3 + 2]!;
        cr += e * dColor[d + k * 3]!; cg += e * dColor[d + k * 3 + 1]!; cb += e * dColor[d + k * 3 + 2]!;
      }
    }
    const st = s[t]!, r9 = t * 9;
    const R00 = R[r9]!, R01 = R[r9 + 1]!, R02 = R[r9 + 2]!, R10 = R[r9 + 3]!, R11 = R[r9 + 4]!, R12 = R[r9 + 5]!, R20 = R[r9 + 6]!, R21 = R[r9 + 7]!, R22 = R[r9 + 8]!;
    mean[i * 3] = b0 * V[a]! + b1 * V[b]! + b2 * V[c]! + st * (R00 * ox + R01 * oy + R02 * oz);
    mean[i * 3 + 1] = b0 * V[a + 1]! + b1 * V[b + 1]! + b2 * V[c + 1]! + st * (R10 * ox + R11 * oy + R12 * oz);
    mean[i * 3 + 2] = b0 * V[a + 2]! + b1 * V[b + 2]! + b2 * V[c + 2]! + st * (R20 * ox + R21 * oy + R22 * oz);
    if (fN && fOp) {
      // W = (s·R)[rows 0,1] · N
      const n9 = i * 9;
      const N00 = fN[n9]!, N01 = fN[n9 + 1]!, N02 = fN[n9 + 2]!, N10 = fN[n9 + 3]!, N11 = fN[n9 + 4]!, N12 = fN[n9 + 5]!, N20 = fN[n9 + 6]!, N21 = fN[n9 + 7]!, N22 = fN[n9 + 8]!;
      const o = i * 6;
      W[o] = st * (R00 * N00 + R01 * N10 + R02 * N20);
      W[o + 1] = st * (R00 * N01 + R01 * N11 + R02 * N21);
      W[o + 2] = st * (R00 * N02 + R01 * N12 + R02 * N22);
      W[o + 3] = st * (R10 * N00 + R11 * N10 + R12 * N20);
      W[o + 4] = st * (R10 * N01 + R11 * N11 + R12 * N21);
      W[o + 5] = st * (R10 * N02 + R11 * N12 + R12 * N22);
      op[i] = fOp[i]!;
      col[i * 3] = cr < 0 ? 0 : cr > 1 ? 1 : cr;
      col[i * 3 + 1] = cg < 0 ? 0 : cg > 1 ? 1 : cg;
      col[i * 3 + 2] = cb < 0 ? 0 : cb > 1 ? 1 : cb;
      continue;
    }
    quatToRot(quat, i * 4, Rq);
    const sx = Math.exp(logScale[i * 3]!), sy = Math.exp(logScale[i * 3 + 1]!), sz = Math.exp(logScale[i * 3 + 2]!);
    // W = (s·R)[rows 0,1] · Rq · S
    for (let row = 0; row < 2; row++) {
      const T0 = st * (row === 0 ? R00 : R10), T1 = st * (row === 0 ? R01 : R11), T2 = st * (row === 0 ? R02 : R12);
      const o = i * 6 + row * 3;
      W[o] = (T0 * Rq[0]! + T1 * Rq[3]! + T2 * Rq[6]!) * sx;
      W[o + 1] = (T0 * Rq[1]! + T1 * Rq[4]! + T2 * Rq[7]!) * sy;
      W[o + 2] = (T0 * Rq[2]! + T1 * Rq[5]! + T2 * Rq[8]!) * sz;
    }
    op[i] = 1 / (1 + Math.exp(-opacity[i]!));
    // colours are clamped to [0, 1] (deltas on an unusual expression must not make sparkles);
    // deformBackward passes no gradient through a clamped channel
    col[i * 3] = cr < 0 ? 0 : cr > 1 ? 1 : cr;
    col[i * 3 + 1] = cg < 0 ? 0 : cg > 1 ? 1 : cg;
    col[i * 3 + 2] = cb < 0 ? 0 : cb > 1 ? 1 : cb;
  }
}

/**
 * Backward of `deform` for Gaussians [from, to): given dL/d(mean) (x, y), dL/dW, dL/d(colour),
 * dL/d(opacity) of the world Gaussians, ADDS dL/d(parameters) into `grad` (same layout as gp.p).
 */
export function deformBackward(
  gp: GaussianParams, frames: TriangleFrames, expr: ArrayLike<number>, world: SplatInput,
  dMean: Float32Array, dW: Float32Array, dColor: Float32Array, dOpacity: Float32Array,
  grad: Record<ParamName, Float32Array>, scratch: DeformScratch, from = 0, to = gp.count,
): void {
  const { tri } = gp;
  const { logScale, quat } = gp.p;
  const { R, s } = frames;
  const Rq = scratch.Rq;
  const gOff = grad.offset, gLS = grad.logScale, gQ = grad.quat, gOp = grad.opacity, gCol = grad.color, gDP = grad.dPos, gDC = grad.dColor;
  const ex = scratch.ex;
  for (let k = 0; k < E; k++) ex[k] = Number.isFinite(expr[k]) ? expr[k]! : 0;
  for (let i = from; i < to; i++) {
    const t = tri[i]!, st = s[t]!, r9 = t * 9;
    const R00 = R[r9]!, R01 = R[r9 + 1]!, R02 = R[r9 + 2]!, R10 = R[r9 + 3]!, R11 = R[r9 + 4]!, R12 = R[r9 + 5]!;
    // colour (zero where the forward clamped it: world colour exactly 0 or 1) and opacity
    const wc = world.color;
    const dcr = wc[i * 3] === 0 || wc[i * 3] === 1 ? 0 : dColor[i * 3]!;
    const dcg = wc[i * 3 + 1] === 0 || wc[i * 3 + 1] === 1 ? 0 : dColor[i * 3 + 1]!;
    const dcb = wc[i * 3 + 2] === 0 || wc[i * 3 + 2] === 1 ? 0 : dColor[i * 3 + 2]!;
    gCol[i * 3] += dcr; gCol[i * 3 + 1] += dcg; gCol[i * 3 + 2] += dcb;
    const o = world.opacity[i]!;
    gOp[i] += dOpacity[i]! * o * (1 - o);
    // mean → offset (z of the mean has no gradient: orthographic)
    const dmx = dMean[i * 3]!, dmy = dMean[i * 3 + 1]!;
    const dox = st * (R00 * dmx + R10 * dmy), doy = st * (R01 * dmx + R11 * dmy), doz = st * (R02 * dmx + R12 * dmy);
    gOff[i * 3] += dox; gOff[i * 3 + 1] += doy; gOff[i * 3 + 2] += doz;
    const d = i * 3 * E;
    for (let k = 0; k < E; k++) {
      const e = ex[k]!;
      if (e === 0) continue;
      gDP[d + k * 3] += e * dox; gDP[d + k * 3 + 1] += e * doy; gDP[d + k * 3 + 2] += e * doz;
      gDC[d + k * 3] += e * dcr; gDC[d + k * 3 + 1] += e * dcg; gDC[d + k * 3 + 2] += e * dcb;
    }
    // W = V2·N, N = Rq·S, V2 = (s·R) rows 0,1 ⇒ dN = V2ᵀ·dW
    const i6 = i * 6;
    const w00 = dW[i6]!, w01 = dW[i6 + 1]!, w02 = dW[i6 + 2]!, w10 = dW[i6 + 3]!, w11 = dW[i6 + 4]!, w12 = dW[i6 + 5]!;
    const V00 = st * R00, V01 = st * R01, V02 = st * R02, V10 = st * R10, V11 = st * R11, V12 = st * R12;
    // dN[r][c] = V0r·dW0c + V1r·dW1c
    const dN00 = V00 * w00 + V10 * w10, dN01 = V00 * w01 + V10 * w11, dN02 = V00 * w02 + V10 * w12;
    const dN10 = V01 * w00 + V11 * w10, dN11 = V01 * w01 + V11 * w11, dN12 = V01 * w02 + V11 * w12;
    const dN20 = V02 * w00 + V12 * w10, dN21 = V02 * w01 + V12 * w11, dN22 = V02 * w02 + V12 * w12;
    const qn = quatToRot(quat, i * 4, Rq);
    const sx = Math.exp(logScale[i * 3]!), sy = Math.exp(logScale[i * 3 + 1]!), sz = Math.exp(logScale[i * 3 + 2]!);
    // N_rc = Rq_rc · s_c
    gLS[i * 3] += (dN00 * Rq[0]! + dN10 * Rq[3]! + dN20 * Rq[6]!) * sx;
    gLS[i * 3 + 1] += (dN01 * Rq[1]! + dN11 * Rq[4]! + dN21 * Rq[7]!) * sy;
    gLS[i * 3 + 2] += (dN02 * Rq[2]! + dN12 * Rq[5]! + dN22 * Rq[8]!) * sz;
    const g00 = dN00 * sx, g01 = dN01 * sy, g02 = dN02 * sz;
    const g10 = dN10 * sx, g11 = dN11 * sy, g12 = dN12 * sz;
    const g20 = dN20 * sx, g21 = dN21 * sy, g22 = dN22 * sz;
    const q = i * 4;
    const r = quat[q]! / qn, x = quat[q + 1]! / qn, y = quat[q + 2]! / qn, z = quat[q + 3]! / qn;
    // dL/d(normalised q)
    const dr = 2 * (-z * g01 + y * g02 + z * g10 - x * g12 - y * g20 + x * g21);
    const dx = 2 * (y * g01 + z * g02 + y * g10 - 2 * x * g11 - r * g12 + z * g20 + r * g21 - 2 * x * g22);
    const dy = 2 * (-2 * y * g00 + x * g01 + r * g02 + x * g10 + z * g12 - r * g20 + z * g21 - 2 * y * g22);
    const dz = 2 * (-2 * z * g00 - r * g01 + x * g02 + r * g10 - 2 * z * g11 + y * g12 + x * g20 + y * g21);
    // through the normalisation: (I − q̂q̂ᵀ)/|q|
    const dot = r * dr + x * dx + y * dy + z * dz;
    gQ[q] += (dr - r * dot) / qn; gQ[q + 1] += (dx - x * dot) / qn; gQ[q + 2] += (dy - y * dot) / qn; gQ[q + 3] += (dz - z * dot) / qn;
  }
}

/** Allocate a SplatInput for `count` Gaussians. */
export function allocSplats(count: number): SplatInput {
  return { count, mean: new Float32Array(count * 3), w: new Float32Array(count * 6), opacity: new Float32Array(count), color: new Float32Array(count * 3) };
}

/**
 * Place Gaussians on the scaffold: n² per triangle on a barycentric grid, n from the triangle's
 * area in the source frame (8× denser on the face, 4× in the mouth than on the hair/neck shell) so
 * that the whole scaffold gets about `budget` Gaussians (at least 1 per triangle, at least 4 on
 * the mouth interior, at most 49).
 */
export function layoutGaussians(sc: Scaffold, budget: number): { tri: Uint32Array; bary: Float32Array; n: Uint8Array } {
  if (!Number.isInteger(budget) || budget < sc.triangleCount) throw new TypeError(`budget must be an integer ≥ ${sc.triangleCount} (one per triangle)`);
  const V = sc.pose({ pose: { ...restAngles(sc), tx: 0, ty: 0, scale: 1 }, expression: new Float32Array(E) }, sc.baseSize);
  const T = sc.triangleCount, tris = sc.triangles;
  const area = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    const a = tris[t * 3]! * 3, b = tris[t * 3 + 1]! * 3, c = tris[t * 3 + 2]! * 3;
    const e1x = V[b]! - V[a]!, e1y = V[b + 1]! - V[a + 1]!, e1z = V[b + 2]! - V[a + 2]!;
    const e2x = V[c]! - V[a]!, e2y = V[c + 1]! - V[a + 1]!, e2z = V[c + 2]! - V[a + 2]!;
    area[t] = 0.5 * Math.hypot(e1y * e2z - e1z * e2y, e1z * e2x - e1x * e2z, e1x * e2y - e1y * e2x);
  }
  // density per region: the face carries identity and expression, the mouth interior is small
  // but must hold teeth, the hair/neck shell only needs colour at a coarser scale
  const density = [8, 4, 1];
  const nFor = (t: number, target: number): number => {
    const r = sc.triangleRegion[t]!;
    const minN = r === 2 ? 2 : 1;
    return Math.max(minN, Math.min(7, Math.round(Math.sqrt((area[t]! * density[r]!) / target))));
  };
  let lo = 1e-3, hi = 1e6;
  for (let it = 0; it < 60; it++) {
    const mid = Math.sqrt(lo * hi);
    let total = 0;
    for (let t = 0; t < T; t++) total += nFor(t, mid) ** 2;
    if (total > budget) lo = mid; else hi = mid;
  }
  const n = new Uint8Array(T);
  let total = 0;
  for (let t = 0; t < T; t++) { n[t] = nFor(t, hi); total += n[t]! ** 2; }
  const tri = new Uint32Array(total), bary = new Float32Array(total * 3);
  let g = 0;
  for (let t = 0; t < T; t++) {
    const m = n[t]!;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m - i; j++) {
        const put = (u: number, v: number): void => {
          tri[g] = t;
          bary[g * 3] = 1 - u - v; bary[g * 3 + 1] = u; bary[g * 3 + 2] = v;
          g++;
        };
        put((i + 1 / 3) / m, (j + 1 / 3) / m);
        if (i + j <= m - 2) put((i + 2 / 3) / m, (j + 2 / 3) / m);
      }
    }
  }
  return { tri, bary, n };
}

/** The source frame's own head angles (the pose that reproduces it). */
export function restAngles(sc: Scaffold): { yaw: number; pitch: number; roll: number } {
  return eulerFromRotation(sc.frame.R);
}
