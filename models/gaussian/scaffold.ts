/**
 * The deforming triangle scaffold the Gaussians are bound to (GaussianAvatars' idea on our mesh).
 *
 * Vertices, all built from one source frame's 478 landmarks (crop pixels, z in pixel units):
 *   0..477     the face landmarks, deformed by our expression rig (models/face/expression-code.ts)
 *   rings      RING_F.length loops of SILHOUETTE.length points around the face outline, pushed
 *              back towards the ears' depth: scalp and hair above, ears at the sides, neck and
 *              shoulders below. Each vertex blends the head's rigid motion with the body's
 *              (weight `headWeight`: 1 near the skull, less towards the neck, 0 for the shoulders),
 *              and follows a share of the outline's expression displacement (the chin dropping).
 *   mouth      the interior the face mesh lacks: an upper-teeth row fixed to the skull, a
 *              lower-teeth row that follows the lower lip (i.e. the jaw), and a back point.
 * Triangles: the 880 face triangles, ring strips, the mouth strip between the teeth rows and fans
 * to the back point.
 *
 * Pose: p = c0 + s0·t + s·[R_view (h − pivot) + R_drive·pivot] for the head (with no view offset
 * this is c0 + s0·t + s·R_drive·h: rotation about the head-space origin, exactly what
 * landmarksToMotion measures), p = c0 + s0·t·BODY_T + s0·R0·h for the body, blended per vertex.
 * Free-view offsets turn the head about the neck pivot, so the head does not swing sideways.
 */
import {
  EXPRESSION_SIZE, SILHOUETTE, applyExpression, createExpressionRig, estimateHeadFrame, rotationFromEuler, toHeadSpace,
  type ExpressionRig, type HeadFrame, type HeadPose,
} from '../face/expression-code.ts';
import { FACE_TRIANGLES } from '../face/topology.ts';
import { applyDetail, emptyDetailBasis, type DetailBasis } from './detail.ts';

export const RING_F = [1.18, 1.45, 1.85, 2.6] as const;
const RING_W_TOP = [1, 1, 0.9, 0.4];
const RING_W_BOTTOM = [0.7, 0.4, 0.15, 0.03];
const RING_FOLLOW = [0.8, 0.45, 0.15, 0];
/** share of the head translation that the body follows */
const BODY_T = 0.6;
const UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308];
const LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308];

export const FACE_VERTS = 478;

export interface ScaffoldPose {
  pose: HeadPose;
  expression: ArrayLike<number>;
  /** free-view offset, radians */
  view?: { yaw: number; pitch: number; roll: number };
  /** share of the driver's tx/ty applied (1 = faithful) */
  translationGain?: number;
  /** clip-specific detail code (detail.ts); absent = the mean correction only */
  detail?: ArrayLike<number>;
}

export class Scaffold {
  /** source landmarks (crop px at `baseSize`) */
  readonly source: Float32Array;
  readonly baseSize: number;
  readonly frame: HeadFrame;
  readonly rig: ExpressionRig;
  readonly vertexCount: number;
  readonly triangles: Uint32Array;
  readonly triangleCount: number;
  /** per triangle: 0 face, 1 ring (hair, ears, neck, shoulders), 2 mouth interior */
  readonly triangleRegion: Uint8Array;
  /** head-space positions of the non-face vertices at rest */
  private readonly extraRest: Float32Array;
  readonly headWeight: Float32Array;
  private readonly follow: Float32Array;
  /** face vertex whose expression displacement a ring vertex follows (−1 = none) */
  private readonly followOf: Int32Array;
  readonly ringStart: number;
  readonly mouthStart: number;
  private readonly H = new Float32Array(FACE_VERTS * 3);
  private readonly hs: Float32Array;
  private readonly R = new Float64Array(9);
  private readonly Rv = new Float64Array(9);

  /** the person's own shape detail beyond the rig (mean correction + PCA components) */
  detail: DetailBasis = emptyDetailBasis();

  constructor(sourceLandmarks: Float32Array, baseSize: number) {
    if (!(sourceLandmarks instanceof Float32Array) || sourceLandmarks.length !== FACE_VERTS * 3) throw new TypeError('Scaffold: 478×3 landmarks expected');
    for (const v of sourceLandmarks) if (!Number.isFinite(v)) throw new TypeError('Scaffold: non-finite landmark');
    this.source = sourceLandmarks.slice();
    this.baseSize = baseSize;
    this.frame = estimateHeadFrame(this.source);
    const h = toHeadSpace(this.source, this.frame);
    this.rig = createExpressionRig(h);
    const nS = SILHOUETTE.length, nR = RING_F.length;
    this.ringStart = FACE_VERTS;
    this.mouthStart = FACE_VERTS + nR * nS;
    const nMouth = UPPER_INNER.length + LOWER_INNER.length + 1;
    this.vertexCount = this.mouthStart + nMouth;
    const nExtra = this.vertexCount - FACE_VERTS;
    this.extraRest = new Float32Array(nExtra * 3);
    this.headWeight = new Float32Array(this.vertexCount).fill(1);
    this.follow = new Float32Array(nExtra);
    this.followOf = new Int32Array(nExtra).fill(-1);
    this.hs = new Float32Array(this.vertexCount * 3);

    // rings around the outline (head space: x right, y down, z away from the camera)
    let cx = 0, cy = 0;
    for (const i of SILHOUETTE) { cx += h[i * 3]!; cy += h[i * 3 + 1]!; }
    cx /= nS; cy /= nS;
    const zBack = this.rig.headPivot[2];
    for (let r = 0; r < nR; r++) {
      const f = RING_F[r]!;
      for (let k = 0; k < nS; k++) {
        const vi = SILHOUETTE[k]!;
        const dx = h[vi * 3]! - cx, dy = h[vi * 3 + 1]! - cy;
        const e = r * nS + k, o = e * 3;
        this.extraRest[o] = cx + dx * f;
        this.extraRest[o + 1] = cy + dy * f;
        const zt = Math.min(1, (f - 1) / 0.5);
        // rounded shell: inner rings curve back towards the ears' depth, outer ones lie in that plane
        this.extraRest[o + 2] = h[vi * 3 + 2]! + (zBack - h[vi * 3 + 2]!) * zt;
        const up = -dy / (Math.hypot(dx, dy) || 1);
        let t = (up + 0.5) / 1.0;
        t = t < 0 ? 0 : t > 1 ? 1 : t * t * (3 - 2 * t);
        this.headWeight[FACE_VERTS + e] = RING_W_BOTTOM[r]! + (RING_W_TOP[r]! - RING_W_BOTTOM[r]!) * t;
        this.follow[e] = RING_FOLLOW[r]!;
        this.followOf[e] = vi;
      }
    }
    // mouth interior
    const m0 = this.mouthStart - FACE_VERTS;
    let mx = 0, my = 0, mz = 0;
    UPPER_INNER.forEach((vi, j) => {
      const o = (m0 + j) * 3;
      this.extraRest[o] = h[vi * 3]!; this.extraRest[o + 1] = h[vi * 3 + 1]! + 0.02; this.extraRest[o + 2] = h[vi * 3 + 2]! + 0.08;
      mx += h[vi * 3]!; my += h[vi * 3 + 1]!; mz += h[vi * 3 + 2]!;
    });
    LOWER_INNER.forEach((vi, j) => {
      const e = m0 + UPPER_INNER.length + j;
      this.followOf[e] = vi; // follows the lower lip fully (offset from it, set per frame)
      this.follow[e] = 1;
      const o = e * 3;
      this.extraRest[o] = h[vi * 3]!; this.extraRest[o + 1] = h[vi * 3 + 1]! - 0.02; this.extraRest[o + 2] = h[vi * 3 + 2]! + 0.08;
    });
    const n = UPPER_INNER.length;
    const back = (m0 + 2 * n) * 3;
    this.extraRest[back] = mx / n; this.extraRest[back + 1] = my / n + 0.05; this.extraRest[back + 2] = mz / n + 0.35;
    this.followOf[m0 + 2 * n] = 14;
    this.follow[m0 + 2 * n] = 0.5;

    // triangles
    const tris: number[] = Array.from(FACE_TRIANGLES);
    const region: number[] = new Array(FACE_TRIANGLES.length / 3).fill(0);
    const ringV = (r: number, k: number): number => (r < 0 ? SILHOUETTE[k]! : this.ringStart + r * nS + k);
    for (let r = -1; r < nR - 1; r++) {
      for (let k = 0; k < nS; k++) {
        const k2 = (k + 1) % nS;
        tris.push(ringV(r, k), ringV(r, k2), ringV(r + 1, k2), ringV(r, k), ringV(r + 1, k2), ringV(r + 1, k));
        region.push(1, 1);
      }
    }
    const U = (j: number): number => this.mouthStart + j, L = (j: number): number => this.mouthStart + n + j, B = this.mouthStart + 2 * n;
    for (let j = 0; j < n - 1; j++) {
      tris.push(U(j), U(j + 1), L(j + 1), U(j), L(j + 1), L(j), U(j), U(j + 1), B, L(j), L(j + 1), B);
      region.push(2, 2, 2, 2);
    }
    this.triangles = Uint32Array.from(tris);
    this.triangleCount = region.length;
    this.triangleRegion = Uint8Array.from(region);
  }

  /** Scaffold vertex positions (pixels at `size`) for one motion. `out`: vertexCount × 3. */
  pose(m: ScaffoldPose, size: number, out: Float32Array = new Float32Array(this.vertexCount * 3)): Float32Array {
    const expr = m.expression;
    const H = applyExpression(this.rig, expr.length >= EXPRESSION_SIZE ? expr : padExpr(expr), this.H);
    applyDetail(this.detail, m.detail, H);
    const neutral = this.rig.neutral;
    const hs = this.hs;
    hs.set(H);
    const nE = this.vertexCount - FACE_VERTS;
    for (let e = 0; e < nE; e++) {
      const o = e * 3, d = (FACE_VERTS + e) * 3;
      let x = this.extraRest[o]!, y = this.extraRest[o + 1]!, z = this.extraRest[o + 2]!;
      const vi = this.followOf[e]!;
      if (vi >= 0) {
        const f = this.follow[e]!;
        x += f * (H[vi * 3]! - neutral[vi * 3]!);
        y += f * (H[vi * 3 + 1]! - neutral[vi * 3 + 1]!);
        z += f * (H[vi * 3 + 2]! - neutral[vi * 3 + 2]!);
      }
      hs[d] = x; hs[d + 1] = y; hs[d + 2] = z;
    }
    const fin = (v: number, dflt: number): number => (Number.isFinite(v) ? v : dflt);
    const p = m.pose;
    const yaw = fin(p.yaw, 0), pitch = fin(p.pitch, 0), roll = fin(p.roll, 0);
    const v = m.view ?? { yaw: 0, pitch: 0, roll: 0 };
    const Rd = rotationFromEuler(yaw, pitch, roll, this.R);
    const Rv = rotationFromEuler(yaw + fin(v.yaw, 0), pitch + fin(v.pitch, 0), roll + fin(v.roll, 0), this.Rv);
    const k = size / this.baseSize;
    const s0 = this.frame.scale * k;
    const sc = Math.max(0.5, Math.min(2, fin(p.scale, 1)));
    const s = s0 * sc;
    const gain = m.translationGain ?? 1;
    const tx = Math.max(-2, Math.min(2, fin(p.tx, 0))) * gain * s0, ty = Math.max(-2, Math.min(2, fin(p.ty, 0))) * gain * s0;
    const [c0x, c0y, c0z] = this.frame.center;
    const cx = c0x * k, cy = c0y * k, cz = c0z * k;
    const pv = this.rig.headPivot;
    // R_drive·pivot − R_view·pivot (zero without a view offset)
    const dpx = (Rd[0]! - Rv[0]!) * pv[0] + (Rd[1]! - Rv[1]!) * pv[1] + (Rd[2]! - Rv[2]!) * pv[2];
    const dpy = (Rd[3]! - Rv[3]!) * pv[0] + (Rd[4]! - Rv[4]!) * pv[1] + (Rd[5]! - Rv[5]!) * pv[2];
    const dpz = (Rd[6]! - Rv[6]!) * pv[0] + (Rd[7]! - Rv[7]!) * pv[1] + (Rd[8]! - Rv[8]!) * pv[2];
    const R0 = this.frame.R;
    const n = this.vertexCount;
    for (let i = 0; i < n; i++) {
      const x = hs[i * 3]!, y = hs[i * 3 + 1]!, z = hs[i * 3 + 2]!;
      const hx = cx + tx + s * (Rv[0]! * x + Rv[1]! * y + Rv[2]! * z + dpx);
      const hy = cy + ty + s * (Rv[3]! * x + Rv[4]! * y + Rv[5]! * z + dpy);
      const hz = cz + s * (Rv[6]! * x + Rv[7]! * y + Rv[8]! * z + dpz);
      const w = this.headWeight[i]!;
      if (w >= 1) {
        out[i * 3] = hx; out[i * 3 + 1] = hy; out[i * 3 + 2] = hz;
        continue;
      }
      const bx = cx + tx * BODY_T + s0 * (R0[0]! * x + R0[1]! * y + R0[2]! * z);
      const by = cy + ty * BODY_T + s0 * (R0[3]! * x + R0[4]! * y + R0[5]! * z);
      const bz = cz + s0 * (R0[6]! * x + R0[7]! * y + R0[8]! * z);
      out[i * 3] = bx + w * (hx - bx); out[i * 3 + 1] = by + w * (hy - by); out[i * 3 + 2] = bz + w * (hz - bz);
    }
    return out;
  }
}

function padExpr(e: ArrayLike<number>): Float32Array {
  const o = new Float32Array(EXPRESSION_SIZE);
  for (let i = 0; i < Math.min(e.length, EXPRESSION_SIZE); i++) o[i] = e[i]!;
  return o;
}
