/**
 * Default avatar generator: one-shot 3D face-mesh warper on the CPU, no weights beyond Human's.
 *
 * Per frame:
 *  1. expression code → head-space landmark positions of the source face (expression rig);
 *  2. rigid head transform (driving pose + viewer's free-view offset, relative to the photo's own
 *     pose) about a pivot between the ears → 478 projected points (orthographic);
 *  3. background: the photo, warped by rings of control points around the face outline
 *     (hair / ears / neck / shoulders) whose share of the head motion decays with distance, so the
 *     head stays attached; ring 0 *is* the mesh outline, so face and background share vertices
 *     and cannot tear apart;
 *  4. mouth cavity (real teeth from the photo when its mouth is open, otherwise a synthetic teeth
 *     band, dark cavity below), depth-tested;
 *  5. the 880-triangle face mesh textured from the photo, depth-tested (nose occludes the far
 *     cheek at ±30° yaw). Blinks close the eye triangles; the upper-lid texture stretches over.
 * All buffers are preallocated per output size; render() allocates nothing but its return object.
 */
import {
  EXPRESSION_SIZE, SILHOUETTE, INNER_LIP_LOOP, IDX,
  applyExpression, createExpressionRig, estimateHeadFrame, rotationFromEuler, eulerFromRotation, toHeadSpace,
  type ExpressionRig, type HeadFrame,
} from '../../../models/face/expression-code.ts';
import {
  clampView, isGeneratorAsset, NO_VIEW_OFFSET, VIEW_LIMITS,
  type AvatarGenerator, type GeneratorSource, type AvatarMotion, type GeneratorCapabilities, type RenderOptions, type RenderedFrame, type ViewOffset,
} from './generator.ts';
import type { EnrolledIdentity } from '../../../models/face/enrolledIdentity.ts';
import { drawMouthTriangle, drawTexturedTriangle, rgbaToI420, type MouthShader, type Target, type Texture } from './raster.ts';
import { resampleRegion } from '../../../models/image/resampleRegion.ts';

export interface MeshGeneratorOptions {
  /** how much of the driver's head translation (tx, ty) moves the avatar; default 0.5 */
  translationGain?: number;
  /** clamp of the combined (driving + view) angles, radians; default yaw 60°, pitch/roll 40° */
  maxYaw?: number;
  maxPitchRoll?: number;
  /** interpret pose as absolute (default) or as an offset to the photo's own pose */
  poseMode?: 'absolute' | 'relative';
  /** multiplies the enrolled landmarks' depth (see DEFAULT_DEPTH_SCALE) */
  depthScale?: number;
}

/**
 * Depth exaggeration applied to Human's landmark depth before building the mesh. With 1.0 a 30°
 * render reads as ~17° to Human and to landmarksToMotion (both see too little parallax between
 * nose and cheeks); 1.5 makes rendered yaw ±30° measure +35°/−32° but Human then fits the rendered landmarks worse
 * (4.5 px mean at 256²) and identity similarity drops; 1.25 is the compromise (see README).
 */
export const DEFAULT_DEPTH_SCALE = 1.25;

/** ring scale factors (× distance from the face centre to the outline) */
const RING_F = [1.22, 1.55, 2.1, 3.2, 9];
/** share of the rigid head motion per ring: above the face (hair) and below (neck) */
const RING_W_TOP = [0.95, 0.75, 0.4, 0.1, 0];
const RING_W_BOTTOM = [0.55, 0.3, 0.1, 0.0, 0];
/** share of the full 3D head rotation (beyond roll) that ring points follow */
const RING_ROTATE = [0.35, 0.12, 0, 0, 0];
/** above the forehead the hair lies on the skull and turns with it */
const RING_ROTATE_TOP = [0.8, 0.45, 0.1, 0, 0];
/** share of the outline's own expression displacement (jaw) that rings follow */
const RING_FOLLOW = [0.8, 0.45, 0.12, 0, 0];

const LOOP_S = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];
const LOOP_T = [0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1];
const UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308];
const LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308];

interface SizeState {
  size: number;
  tex: Texture;
  depth: Float32Array;
}

export class MeshAvatarGenerator implements AvatarGenerator {
  readonly kind = 'mesh';
  readonly capabilities: GeneratorCapabilities = {
    kind: 'mesh',
    sizes: [256, 512],
    formats: ['rgba', 'i420', 'rgba+i420'],
    maxViewOffset: VIEW_LIMITS,
    realtimeCpu: true,
    requiredWeights: [],
    expressionSize: EXPRESSION_SIZE,
    /** measured by bench/keypoint-render.ts and bench/gaussian.ts on one core at 256² */
    frameCostMs: 6,
  };
  private readonly opts: Required<MeshGeneratorOptions>;
  private src: EnrolledIdentity | null = null;
  private rig!: ExpressionRig;
  private frame!: HeadFrame;
  private sourcePose = { yaw: 0, pitch: 0, roll: 0 };
  private sizes = new Map<number, SizeState>();
  private readonly H = new Float32Array(478 * 3);
  private readonly P = new Float32Array(478 * 3);
  private readonly Rt = new Float64Array(9);
  private readonly A = new Float64Array(9);
  private readonly b = new Float64Array(3);
  /** ring control points: source xy (texture px), head-space xyz, weight; ring-major (RING_F.length × 36) */
  private ringSrc = new Float32Array(0);
  private ringHead = new Float32Array(0);
  private ringW = new Float32Array(0);
  private ringAlpha = new Float32Array(0);
  private ringOut = new Float32Array(0);
  private mouthCenterHead = new Float32Array(3);
  private mouthShader: MouthShader = { samples: 11, srcUpper: new Float32Array(22), srcLower: new Float32Array(22), sourceGapPx: 0, targetGapPx: 0, teethPx: 0 };
  private sourceGapTex = 0;
  /** enrolled landmarks with the depth scale applied */
  private lm = new Float32Array(0);

  constructor(options: MeshGeneratorOptions = {}) {
    this.opts = {
      translationGain: options.translationGain ?? 0.5,
      maxYaw: options.maxYaw ?? (60 * Math.PI) / 180,
      maxPitchRoll: options.maxPitchRoll ?? (40 * Math.PI) / 180,
      poseMode: options.poseMode ?? 'absolute',
      depthScale: options.depthScale ?? DEFAULT_DEPTH_SCALE,
    };
  }

  async initialize(input: GeneratorSource): Promise<void> {
    if (input && isGeneratorAsset(input)) throw new TypeError(`the mesh generator renders an enrolled photo, not a ${input.kind} asset`);
    const source = input as EnrolledIdentity;
    if (!source || source.landmarks.length < 478 * 3) throw new Error('initialize: enrolled identity without 478 landmarks');
    this.src = source;
    this.sizes.clear();
    const lm = source.landmarks.slice();
    if (this.opts.depthScale !== 1) {
      let zc = 0;
      for (let i = 0; i < 468; i++) zc += lm[i * 3 + 2];
      zc /= 468;
      for (let i = 0; i < 478; i++) lm[i * 3 + 2] = zc + (lm[i * 3 + 2] - zc) * this.opts.depthScale;
    }
    this.lm = lm;
    this.frame = estimateHeadFrame(lm);
    this.sourcePose = eulerFromRotation(this.frame.R);
    const h = toHeadSpace(lm, this.frame);
    this.rig = createExpressionRig(h);
    const pv = this.rig.headPivot;

    // background rings around the outline
    const nS = SILHOUETTE.length, nR = RING_F.length;
    let cx = 0, cy = 0;
    for (const i of SILHOUETTE) { cx += lm[i * 3]; cy += lm[i * 3 + 1]; }
    cx /= nS; cy /= nS;
    this.ringSrc = new Float32Array(nR * nS * 2);
    this.ringHead = new Float32Array(nR * nS * 3);
    this.ringW = new Float32Array(nR * nS);
    this.ringAlpha = new Float32Array(nR * nS);
    this.ringOut = new Float32Array((nR + 1) * nS * 2);
    const R = this.frame.R, [fcx, fcy, fcz] = this.frame.center, inv = 1 / this.frame.scale;
    for (let r = 0; r < nR; r++) {
      for (let k = 0; k < nS; k++) {
        const vi = SILHOUETTE[k];
        const dx = lm[vi * 3] - cx, dy = lm[vi * 3 + 1] - cy;
        const qx = cx + dx * RING_F[r], qy = cy + dy * RING_F[r];
        const j = r * nS + k;
        this.ringSrc[j * 2] = qx; this.ringSrc[j * 2 + 1] = qy;
        // head-space position, assuming the point lies at the outline's depth
        const ex = qx - fcx, ey = qy - fcy, ez = lm[vi * 3 + 2] - fcz;
        const hx = (R[0] * ex + R[3] * ey + R[6] * ez) * inv;
        const hy = (R[1] * ex + R[4] * ey + R[7] * ez) * inv;
        const hz0 = (R[2] * ex + R[5] * ey + R[8] * ez) * inv;
        const depthT = Math.min(1, (RING_F[r] - 1) / 0.5);
        this.ringHead[j * 3] = hx; this.ringHead[j * 3 + 1] = hy; this.ringHead[j * 3 + 2] = hz0 + (pv[2] - hz0) * depthT;
        const up = -dy / (Math.hypot(dx, dy) || 1);
        let t = (up + 0.5) / 1.0;
        t = t < 0 ? 0 : t > 1 ? 1 : t * t * (3 - 2 * t);
        this.ringW[j] = RING_W_BOTTOM[r] + (RING_W_TOP[r] - RING_W_BOTTOM[r]) * t;
        let ta = (up - 0.3) / 0.5;
        ta = ta < 0 ? 0 : ta > 1 ? 1 : ta * ta * (3 - 2 * ta);
        this.ringAlpha[j] = RING_ROTATE[r] + (RING_ROTATE_TOP[r] - RING_ROTATE[r]) * ta;
      }
    }
    // mouth
    let mx = 0, my = 0, mz = 0;
    for (const i of INNER_LIP_LOOP) { mx += h[i * 3]; my += h[i * 3 + 1]; mz += h[i * 3 + 2]; }
    const nl = INNER_LIP_LOOP.length;
    this.mouthCenterHead.set([mx / nl, my / nl, mz / nl + 0.12]);
    this.sourceGapTex = Math.hypot(lm[14 * 3] - lm[13 * 3], lm[14 * 3 + 1] - lm[13 * 3 + 1]);
    // mouth open in the photo only counts above ~0.05 IOD (teeth visible)
    if (this.sourceGapTex < 0.05 * this.frame.scale) this.sourceGapTex = 0;
  }

  private sizeState(size: number): SizeState {
    let st = this.sizes.get(size);
    if (!st) {
      const src = this.src!;
      const data = size === src.size ? src.texture : resampleRegion(src.texture, src.size, src.size, 0, 0, src.size, size);
      st = { size, tex: { width: size, height: size, data }, depth: new Float32Array(size * size) };
      this.sizes.set(size, st);
    }
    return st;
  }

  render(motion: AvatarMotion, view: ViewOffset = NO_VIEW_OFFSET, out: RenderOptions = {}): RenderedFrame {
    const t0 = performance.now();
    const src = this.src;
    if (!src) throw new Error('render: generator not initialized');
    const size = out.size ?? 256;
    if (!Number.isInteger(size) || size < 32 || size > 2048 || size % 2 !== 0) throw new Error(`render: unsupported size ${size}`);
    const format = out.format ?? 'rgba';
    const st = this.sizeState(size);
    const k = size / src.size;
    const v = clampView(view);
    const pose = motion.pose;
    const fin = (x: number, d: number) => (Number.isFinite(x) ? x : d);
    const clampA = (x: number, l: number) => Math.max(-l, Math.min(l, x));
    let yaw = fin(pose.yaw, 0), pitch = fin(pose.pitch, 0), roll = fin(pose.roll, 0);
    if (this.opts.poseMode === 'relative') {
      yaw += this.sourcePose.yaw; pitch += this.sourcePose.pitch; roll += this.sourcePose.roll;
    }
    yaw = clampA(yaw + v.yaw, this.opts.maxYaw);
    pitch = clampA(pitch + v.pitch, this.opts.maxPitchRoll);
    roll = clampA(roll + v.roll, this.opts.maxPitchRoll);
    const sc = Math.max(0.8, Math.min(1.25, fin(pose.scale, 1)));
    const gain = this.opts.translationGain;
    const tx = clampA(fin(pose.tx, 0), 1) * gain, ty = clampA(fin(pose.ty, 0), 1) * gain;

    // 1. expression
    const H = applyExpression(this.rig, motion.expression, this.H);
    // 2. rigid transform p = A h + b (texture px), then × k to output px
    const Rs = this.frame.R, s = this.frame.scale, [cx, cy, cz] = this.frame.center;
    const Rt = rotationFromEuler(yaw, pitch, roll, this.Rt);
    const A = this.A, b = this.b, pv = this.rig.headPivot;
    for (let i = 0; i < 9; i++) A[i] = s * sc * Rt[i];
    const bx = cx + s * (Rs[0] * pv[0] + Rs[1] * pv[1] + Rs[2] * pv[2]) + tx * s;
    const by = cy + s * (Rs[3] * pv[0] + Rs[4] * pv[1] + Rs[5] * pv[2]) + ty * s;
    const bz = cz + s * (Rs[6] * pv[0] + Rs[7] * pv[1] + Rs[8] * pv[2]);
    b[0] = (bx - (A[0] * pv[0] + A[1] * pv[1] + A[2] * pv[2])) * k;
    b[1] = (by - (A[3] * pv[0] + A[4] * pv[1] + A[5] * pv[2])) * k;
    b[2] = (bz - (A[6] * pv[0] + A[7] * pv[1] + A[8] * pv[2])) * k;
    for (let i = 0; i < 9; i++) A[i] *= k;
    const P = this.P;
    for (let i = 0; i < 478; i++) {
      const x = H[i * 3], y = H[i * 3 + 1], z = H[i * 3 + 2];
      P[i * 3] = A[0] * x + A[1] * y + A[2] * z + b[0];
      P[i * 3 + 1] = A[3] * x + A[4] * y + A[5] * z + b[1];
      P[i * 3 + 2] = A[6] * x + A[7] * y + A[8] * z + b[2];
    }

    // output buffers
    const reuse = out.reuse;
    const n = size * size;
    const rgba = reuse?.rgba && reuse.rgba.length === n * 4 ? reuse.rgba : new Uint8ClampedArray(n * 4);
    const target: Target = { width: size, height: size, data: rgba, depth: null };
    const tex = st.tex;

    // 3. background rings (ring 0 = projected outline)
    const nS = SILHOUETTE.length, nR = RING_F.length, ring = this.ringOut, neutral = this.rig.neutral;
    // in-plane rotation of the head relative to the photo, and the pivot's projections
    const m00 = Rt[0] * Rs[0] + Rt[1] * Rs[1] + Rt[2] * Rs[2], m10 = Rt[3] * Rs[0] + Rt[4] * Rs[1] + Rt[5] * Rs[2];
    const phi = Math.atan2(m10, m00), cphi = Math.cos(phi), sphi = Math.sin(phi);
    const pvTx = A[0] * pv[0] + A[1] * pv[1] + A[2] * pv[2] + b[0], pvTy = A[3] * pv[0] + A[4] * pv[1] + A[5] * pv[2] + b[1];
    const pvSx = (cx + s * (Rs[0] * pv[0] + Rs[1] * pv[1] + Rs[2] * pv[2])) * k, pvSy = (cy + s * (Rs[3] * pv[0] + Rs[4] * pv[1] + Rs[5] * pv[2])) * k;
    for (let j = 0; j < nS; j++) {
      const vi = SILHOUETTE[j];
      ring[j * 2] = P[vi * 3]; ring[j * 2 + 1] = P[vi * 3 + 1];
    }
    for (let r = 0; r < nR; r++) {
      for (let j = 0; j < nS; j++) {
        const q = r * nS + j, vi = SILHOUETTE[j];
        const hx = this.ringHead[q * 3], hy = this.ringHead[q * 3 + 1], hz = this.ringHead[q * 3 + 2];
        const sx = this.ringSrc[q * 2] * k, sy = this.ringSrc[q * 2 + 1] * k;
        // rigid target: the head outline behaves like a sphere about the pivot (its outline does not
        // change under yaw/pitch, only under roll, translation and scale), plus a share of the full
        // 3D rotation near the face (hair close to the face moves with it)
        const dxs = sx - pvSx, dys = sy - pvSy;
        const simx = pvTx + sc * (cphi * dxs - sphi * dys), simy = pvTy + sc * (sphi * dxs + cphi * dys);
        const alpha = this.ringAlpha[q];
        const rx = simx + alpha * (A[0] * hx + A[1] * hy + A[2] * hz + b[0] - simx);
        const ry = simy + alpha * (A[3] * hx + A[4] * hy + A[5] * hz + b[1] - simy);
        const w = this.ringW[q], f = RING_FOLLOW[r];
        // outline's expression displacement (e.g. the chin dropping with the jaw)
        const ex = H[vi * 3] - neutral[vi * 3], ey = H[vi * 3 + 1] - neutral[vi * 3 + 1], ez = H[vi * 3 + 2] - neutral[vi * 3 + 2];
        const o = ((r + 1) * nS + j) * 2;
        ring[o] = sx + w * (rx - sx) + f * (A[0] * ex + A[1] * ey + A[2] * ez);
        ring[o + 1] = sy + w * (ry - sy) + f * (A[3] * ex + A[4] * ey + A[5] * ez);
      }
    }
    const lm = this.lm;
    for (let r = 0; r < nR; r++) {
      for (let j = 0; j < nS; j++) {
        const j2 = (j + 1) % nS;
        const a = (r * nS + j) * 2, a2 = (r * nS + j2) * 2, c = ((r + 1) * nS + j) * 2, c2 = ((r + 1) * nS + j2) * 2;
        // source (texture) coordinates
        let ua: number, va: number, ua2: number, va2: number;
        if (r === 0) {
          const vi = SILHOUETTE[j], vi2 = SILHOUETTE[j2];
          ua = lm[vi * 3] * k; va = lm[vi * 3 + 1] * k; ua2 = lm[vi2 * 3] * k; va2 = lm[vi2 * 3 + 1] * k;
        } else {
          const qa = ((r - 1) * nS + j) * 2, qa2 = ((r - 1) * nS + j2) * 2;
          ua = this.ringSrc[qa] * k; va = this.ringSrc[qa + 1] * k; ua2 = this.ringSrc[qa2] * k; va2 = this.ringSrc[qa2 + 1] * k;
        }
        const qc = (r * nS + j) * 2, qc2 = (r * nS + j2) * 2;
        const uc = this.ringSrc[qc] * k, vc = this.ringSrc[qc + 1] * k, uc2 = this.ringSrc[qc2] * k, vc2 = this.ringSrc[qc2 + 1] * k;
        drawTexturedTriangle(target, tex, ring[a], ring[a + 1], 0, ua, va, ring[a2], ring[a2 + 1], 0, ua2, va2, ring[c2], ring[c2 + 1], 0, uc2, vc2);
        drawTexturedTriangle(target, tex, ring[a], ring[a + 1], 0, ua, va, ring[c2], ring[c2 + 1], 0, uc2, vc2, ring[c], ring[c + 1], 0, uc, vc);
      }
    }

    // 4. mouth cavity
    const depth = st.depth;
    depth.fill(Infinity);
    target.depth = depth;
    const ms = this.mouthShader;
    ms.sourceGapPx = this.sourceGapTex * k;
    ms.targetGapPx = Math.hypot(P[14 * 3] - P[13 * 3], P[14 * 3 + 1] - P[13 * 3 + 1]);
    ms.teethPx = 0.07 * s * sc * k;
    if (ms.targetGapPx > 0.5) {
      for (let i = 0; i < 11; i++) {
        ms.srcUpper[i * 2] = lm[UPPER_INNER[i] * 3] * k; ms.srcUpper[i * 2 + 1] = lm[UPPER_INNER[i] * 3 + 1] * k;
        ms.srcLower[i * 2] = lm[LOWER_INNER[i] * 3] * k; ms.srcLower[i * 2 + 1] = lm[LOWER_INNER[i] * 3 + 1] * k;
      }
      const mc = this.mouthCenterHead;
      // the centre follows the jaw half-way (it sits between the lips)
      const jy = (H[14 * 3 + 1] - neutral[14 * 3 + 1]) * 0.5, jz = (H[14 * 3 + 2] - neutral[14 * 3 + 2]) * 0.5;
      const mx = mc[0], my = mc[1] + jy, mz = mc[2] + jz;
      const px = A[0] * mx + A[1] * my + A[2] * mz + b[0], py = A[3] * mx + A[4] * my + A[5] * mz + b[1], pz = A[6] * mx + A[7] * my + A[8] * mz + b[2];
      const nl = INNER_LIP_LOOP.length;
      for (let i = 0; i < nl; i++) {
        const i2 = (i + 1) % nl, va = INNER_LIP_LOOP[i], vb = INNER_LIP_LOOP[i2];
        drawMouthTriangle(target, tex, ms,
          P[va * 3], P[va * 3 + 1], P[va * 3 + 2] + 0.02 * s * k, LOOP_S[i], LOOP_T[i],
          P[vb * 3], P[vb * 3 + 1], P[vb * 3 + 2] + 0.02 * s * k, LOOP_S[i2], LOOP_T[i2],
          px, py, pz, 0.5, 0.5);
      }
    }

    // 5. face mesh
    const tri = src.mesh.triangles;
    for (let t = 0; t < tri.length; t += 3) {
      const i0 = tri[t], i1 = tri[t + 1], i2 = tri[t + 2];
      drawTexturedTriangle(target, tex,
        P[i0 * 3], P[i0 * 3 + 1], P[i0 * 3 + 2], lm[i0 * 3] * k, lm[i0 * 3 + 1] * k,
        P[i1 * 3], P[i1 * 3 + 1], P[i1 * 3 + 2], lm[i1 * 3] * k, lm[i1 * 3 + 1] * k,
        P[i2 * 3], P[i2 * 3 + 1], P[i2 * 3 + 2], lm[i2 * 3] * k, lm[i2 * 3 + 1] * k);
    }

    let i420: Uint8Array | undefined;
    if (format !== 'rgba') {
      const need = n + 2 * (n >> 2);
      i420 = rgbaToI420(rgba, size, size, reuse?.i420 && reuse.i420.length === need ? reuse.i420 : undefined);
    }
    const landmarks2d = reuse?.landmarks2d && reuse.landmarks2d.length === 478 * 2 ? reuse.landmarks2d : new Float32Array(478 * 2);
    for (let i = 0; i < 478; i++) { landmarks2d[i * 2] = P[i * 3]; landmarks2d[i * 2 + 1] = P[i * 3 + 1]; }
    return {
      width: size,
      height: size,
      rgba: format === 'i420' ? undefined : rgba,
      i420,
      landmarks2d,
      renderMs: performance.now() - t0,
    };
  }

  /** Pose of the enrolled photo (same conventions as landmarksToMotion), radians. */
  get sourceHeadPose(): { yaw: number; pitch: number; roll: number } {
    return { ...this.sourcePose };
  }

  /** Motion that reproduces the photo unchanged (its own pose, neutral expression). */
  restMotion(): AvatarMotion {
    const base = this.opts.poseMode === 'relative' ? { yaw: 0, pitch: 0, roll: 0 } : this.sourcePose;
    return { pose: { ...base, tx: 0, ty: 0, scale: 1 }, expression: new Float32Array(EXPRESSION_SIZE) };
  }

  close(): void {
    this.src = null;
    this.sizes.clear();
  }
}

export { IDX };
