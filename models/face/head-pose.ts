/**
 * Pose solver: Human's landmarks → pixel-unit 3D points → the face-attached head frame and its
 * Euler angles.
 *
 * Coordinates
 * -----------
 * Input landmarks are Human's `face.mesh`: [x, y, z] with x, y in image pixels (y down) and z in
 * the facemesh model's own units (its 192-px crop), smaller z = closer to the camera. z is brought
 * to pixel units with `humanZScale()` (the crop side is ≈ 1.4 × the landmark bounding box).
 *
 * "Head space" is a face-attached frame: origin at the midpoint of the outer eye corners
 * (33, 263), unit length = their 3D distance ("IOD"), x = towards the subject's left (image right
 * for an unmirrored frontal face), y = down, z = away from the camera.
 *   - x axis: sum of the right→left vectors 234→454, 33→263, 133→362 (cheek and eye lines)
 *   - y axis: forehead top 10 → nose bottom 2, made orthogonal to x (neither point moves with the
 *     jaw, brows or eyes, so expressions do not leak into the pose).
 *
 * Pose: rotation R (head space → camera) = Rz(roll)·Ry(yaw)·Rx(pitch), radians:
 *   yaw > 0: nose moves towards +x (image right); pitch > 0: nose moves up (−y);
 *   roll > 0: the head's x axis turns towards +y (clockwise on screen).
 * tx, ty: head-space origin offset from the neutral reference, in neutral IODs (x right, y down);
 * scale: IOD / neutral IOD. Without a neutral reference tx = ty = 0 and scale = 1.
 * Note pitch 0 means "the 10→2 line lies in the image plane", a few degrees off a frontal face;
 * the renderer only uses pose differences against the source photo, so the offset cancels.
 */
import { IDX, LANDMARK_COUNT } from './landmark-indices.ts';

export interface HeadPose {
  yaw: number;
  pitch: number;
  roll: number;
  tx: number;
  ty: number;
  scale: number;
}

/** Face-attached frame measured from landmarks (camera = pixel units incl. scaled z). */
export interface HeadFrame {
  /** row-major 3×3; columns are the head axes expressed in camera coordinates */
  R: Float64Array;
  center: [number, number, number];
  /** IOD in pixels */
  scale: number;
}

/** Human crops the face at ≈1.4 × the landmark bounding box and feeds the model 192 px. */
const HUMAN_CROP_FACTOR = 1.4;
const HUMAN_MODEL_SIZE = 192;

export type LandmarkInput = Float32Array | ArrayLike<number> | ReadonlyArray<ArrayLike<number>>;

/** Factor that brings Human's z to the pixel units of x and y. */
export function humanZScale(flat: ArrayLike<number>): number {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < 468; i++) {
    const x = flat[i * 3], y = flat[i * 3 + 1];
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  return (HUMAN_CROP_FACTOR * Math.max(x1 - x0, y1 - y0)) / HUMAN_MODEL_SIZE;
}

/** Flatten Human landmarks (number[][] or flat) to 478×3, validating shape and finiteness. */
export function flattenLandmarks(input: LandmarkInput): Float32Array {
  const out = new Float32Array(LANDMARK_COUNT * 3);
  const first = (input as ArrayLike<unknown>)[0];
  if (typeof first === 'object' && first !== null) {
    const rows = input as ReadonlyArray<ArrayLike<number>>;
    if (rows.length < LANDMARK_COUNT) throw new Error(`expected ${LANDMARK_COUNT} landmarks, got ${rows.length}`);
    for (let i = 0; i < LANDMARK_COUNT; i++) {
      out[i * 3] = rows[i][0];
      out[i * 3 + 1] = rows[i][1];
      out[i * 3 + 2] = rows[i][2] ?? 0;
    }
  } else {
    const flat = input as ArrayLike<number>;
    if (flat.length < LANDMARK_COUNT * 3) throw new Error(`expected ${LANDMARK_COUNT * 3} landmark values, got ${flat.length}`);
    for (let i = 0; i < LANDMARK_COUNT * 3; i++) out[i] = flat[i];
  }
  for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i])) throw new Error('landmarks contain non-finite values');
  return out;
}

/** Human landmarks → pixel-unit 3D points (z scaled). `zScale` overrides the estimate. */
export function toPixel3D(input: LandmarkInput, zScale?: number): Float32Array {
  const p = flattenLandmarks(input);
  const k = zScale ?? humanZScale(p);
  for (let i = 0; i < LANDMARK_COUNT; i++) p[i * 3 + 2] *= k;
  return p;
}

function norm3(v: number[]): number[] {
  const l = Math.hypot(v[0], v[1], v[2]) || 1;
  return [v[0] / l, v[1] / l, v[2] / l];
}
function cross(a: number[], b: number[]): number[] {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

/** Estimate the face-attached frame from pixel-unit 3D points (see file comment). */
export function estimateHeadFrame(p: ArrayLike<number>): HeadFrame {
  const v = (i: number, j: number) => [p[j * 3] - p[i * 3], p[j * 3 + 1] - p[i * 3 + 1], p[j * 3 + 2] - p[i * 3 + 2]];
  const a = v(IDX.cheekR, IDX.cheekL), b = v(IDX.eyeOuterR, IDX.eyeOuterL), c = v(IDX.eyeInnerR, IDX.eyeInnerL);
  const ex = norm3([a[0] + b[0] + c[0], a[1] + b[1] + c[1], a[2] + b[2] + c[2]]);
  const ey0 = norm3(v(IDX.foreheadTop, IDX.noseBottom));
  const ez = norm3(cross(ex, ey0));
  const ey = cross(ez, ex);
  const R = new Float64Array([ex[0], ey[0], ez[0], ex[1], ey[1], ez[1], ex[2], ey[2], ez[2]]);
  const o = IDX.eyeOuterR * 3, q = IDX.eyeOuterL * 3;
  const center: [number, number, number] = [(p[o] + p[q]) / 2, (p[o + 1] + p[q + 1]) / 2, (p[o + 2] + p[q + 2]) / 2];
  const scale = Math.hypot(p[q] - p[o], p[q + 1] - p[o + 1], p[q + 2] - p[o + 2]);
  return { R, center, scale };
}

/** Pixel-unit points → head space (R^T (p − c) / s). */
export function toHeadSpace(p: ArrayLike<number>, f: HeadFrame, out = new Float32Array(p.length)): Float32Array {
  const R = f.R, [cx, cy, cz] = f.center, inv = 1 / f.scale;
  const n = p.length / 3;
  for (let i = 0; i < n; i++) {
    const dx = p[i * 3] - cx, dy = p[i * 3 + 1] - cy, dz = p[i * 3 + 2] - cz;
    out[i * 3] = (R[0] * dx + R[3] * dy + R[6] * dz) * inv;
    out[i * 3 + 1] = (R[1] * dx + R[4] * dy + R[7] * dz) * inv;
    out[i * 3 + 2] = (R[2] * dx + R[5] * dy + R[8] * dz) * inv;
  }
  return out;
}

/** R = Rz(roll)·Ry(yaw)·Rx(pitch), row-major (conventions in the file comment). */
export function rotationFromEuler(yaw: number, pitch: number, roll: number, out = new Float64Array(9)): Float64Array {
  const ca = Math.cos(yaw), sa = Math.sin(yaw), cb = Math.cos(pitch), sb = Math.sin(pitch), cg = Math.cos(roll), sg = Math.sin(roll);
  out[0] = cg * ca; out[1] = cg * sa * sb - sg * cb; out[2] = -cg * sa * cb - sg * sb;
  out[3] = sg * ca; out[4] = sg * sa * sb + cg * cb; out[5] = -sg * sa * cb + cg * sb;
  out[6] = sa; out[7] = -ca * sb; out[8] = ca * cb;
  return out;
}

export function eulerFromRotation(R: ArrayLike<number>): { yaw: number; pitch: number; roll: number } {
  const yaw = Math.asin(Math.max(-1, Math.min(1, R[6])));
  const pitch = Math.atan2(-R[7], R[8]);
  const roll = Math.atan2(R[3], R[0]);
  return { yaw, pitch, roll };
}
