/**
 * Keypoint-avatar expression code: what the browser measures from Human's 478 face landmarks and
 * what the renderer turns back into landmark displacements.
 *
 * Pure TypeScript, no Node or DOM imports: runs in the browser (tracker) and in Node (generator).
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
 *
 * Expression code (12 coefficients, see EXPRESSION_NAMES)
 * ------------------------------------------------------
 * Chosen because each one (a) is measurable from the 478 landmarks robustly with a 2D tracker,
 * (b) is visible at 256² and (c) can be synthesised by moving mesh vertices of one photo:
 *   0 jawOpen      inner-lip gap (pairs 13/14, 82/87, 312/317) − neutral, / 0.45 IOD. The jaw is
 *                  the dominant speech motion; a gap of 0.45 IOD (~4 cm) is a wide-open mouth.
 *                  Rendered as a rotation of the lower face about a pivot near the ears.
 *   1 mouthWide    mouth-corner distance (61/291) − neutral, / 0.15 IOD: + stretch/wide smile,
 *                  − pucker/"oo" (rendered with the lips pushed forward). Visemes need width.
 *   2 smile        mean corner lift above the lip midline (13/14), / 0.08 IOD; − = frown.
 *   3 smileAsym    (left lift − right lift)/2, / 0.08 IOD: smirks, one-sided speech.
 *   4 mouthShiftX  mouth centre (61/291) x relative to nose bottom 2, / 0.10 IOD.
 *   5 blinkL,      1 − eye opening / neutral eye opening (pairs 386/374, 385/380, 387/373 for the
 *   6 blinkR       left eye; 159/145, 158/153, 160/144 right), opening normalised by eye width.
 *                  1 = closed. Negative values = eyes widened, scaled so that −1 = 25 % wider.
 *                  Ratios (not distances) transfer between faces with different eye sizes.
 *   7 browL,       brow height (293/334/296 resp. 63/105/66) above the eye corners − neutral,
 *   8 browR        / 0.08 IOD. Separate sides: raised single brows are common and expressive.
 *   9 browFurrow   inner-brow distance (107/336) neutral − current, / 0.06 IOD (frowning).
 *  10 gazeX,       iris centre (468, 473) relative to the eye-corner midpoint, in eye widths,
 *  11 gazeY        − neutral, / 0.25 (x) and / 0.15 (y).
 * Sides: "L" is the subject's own left (image right when the camera is not mirrored).
 * All coefficients are clamped to [−1, 1]; the wire format quantises them to int8 (÷127).
 * Measured relative to a neutral reference (the user's calibration frame) so that a person's
 * resting face maps to ~0 whatever their anatomy; the renderer applies them relative to the source
 * photo's own resting geometry, which is what keeps the photo's identity.
 */

export const EXPRESSION_NAMES = [
  'jawOpen', 'mouthWide', 'smile', 'smileAsym', 'mouthShiftX',
  'blinkL', 'blinkR', 'browL', 'browR', 'browFurrow', 'gazeX', 'gazeY',
] as const;
export type ExpressionName = (typeof EXPRESSION_NAMES)[number];
export const EXPRESSION_SIZE = EXPRESSION_NAMES.length;
export const EXPR: { readonly [K in ExpressionName]: number } = Object.fromEntries(EXPRESSION_NAMES.map((n, i) => [n, i])) as { [K in ExpressionName]: number };

/** Feature change (head-space units, IOD) that corresponds to a coefficient of 1. */
export const EXPRESSION_SCALE = {
  jawOpen: 0.45,
  mouthWide: 0.15,
  smile: 0.08,
  smileAsym: 0.08,
  mouthShiftX: 0.1,
  brow: 0.08,
  browFurrow: 0.06,
  gazeX: 0.25,
  gazeY: 0.15,
  /** eye widening: −1 means the opening is 25 % larger than neutral */
  eyeWiden: 0.25,
} as const;

export interface HeadPose {
  yaw: number;
  pitch: number;
  roll: number;
  tx: number;
  ty: number;
  scale: number;
}

export interface Motion {
  pose: HeadPose;
  expression: Float32Array;
}

/** Face-attached frame measured from landmarks (camera = pixel units incl. scaled z). */
export interface HeadFrame {
  /** row-major 3×3; columns are the head axes expressed in camera coordinates */
  R: Float64Array;
  center: [number, number, number];
  /** IOD in pixels */
  scale: number;
}

/** Raw feature vector (head-space units). Indices: see FEATURE_* below. */
const F_GAP = 0, F_WIDTH = 1, F_LIFT_L = 2, F_LIFT_R = 3, F_SHIFT = 4, F_OPEN_L = 5, F_OPEN_R = 6,
  F_BROW_L = 7, F_BROW_R = 8, F_INNER_BROW = 9, F_GAZE_X = 10, F_GAZE_Y = 11;
export const FEATURE_SIZE = 12;

export interface NeutralReference {
  features: Float32Array;
  center: [number, number, number];
  scale: number;
}

// ---- landmark index sets (Human / MediaPipe 468 topology) ----
export const IDX = {
  eyeOuterR: 33, eyeInnerR: 133, eyeOuterL: 263, eyeInnerL: 362,
  cheekR: 234, cheekL: 454, foreheadTop: 10, noseBottom: 2, noseTip: 1, chin: 152,
  upperLipInner: 13, lowerLipInner: 14, mouthCornerR: 61, mouthCornerL: 291,
  irisL: 468, irisR: 473,
  browInnerR: 107, browInnerL: 336,
} as const;
const GAP_PAIRS = [[13, 14], [82, 87], [312, 317]] as const;
const EYE_PAIRS_L = [[386, 374], [385, 380], [387, 373]] as const;
const EYE_PAIRS_R = [[159, 145], [158, 153], [160, 144]] as const;
const BROW_L = [293, 334, 296] as const;
const BROW_R = [63, 105, 66] as const;

export const LIPS_UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291];
export const LIPS_LOWER_OUTER = [146, 91, 181, 84, 17, 314, 405, 321, 375];
export const LIPS_UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308];
export const LIPS_LOWER_INNER = [95, 88, 178, 87, 14, 317, 402, 318, 324];
export const LIPS_UPPER_SEMI = [76, 184, 74, 73, 72, 11, 302, 303, 304, 408, 306, 183, 42, 41, 38, 12, 268, 271, 272, 407, 62, 292];
export const LIPS_LOWER_SEMI = [77, 90, 180, 85, 16, 315, 404, 320, 307, 96, 89, 179, 86, 15, 316, 403, 319, 325];
/** inner-lip loop in order (boundary of the mesh's mouth hole) */
export const INNER_LIP_LOOP = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95];
export const MOUTH_CORNER_R = [61, 62, 76, 78];
export const MOUTH_CORNER_L = [291, 292, 306, 308];
export const EYE_UPPER0_L = [466, 388, 387, 386, 385, 384, 398];
export const EYE_LOWER0_L = [263, 249, 390, 373, 374, 380, 381, 382, 362];
export const EYE_UPPER1_L = [467, 260, 259, 257, 258, 286, 414];
export const EYE_UPPER2_L = [342, 445, 444, 443, 442, 441, 413];
export const EYE_LOWER1_L = [359, 255, 339, 254, 253, 252, 256, 341, 463];
export const EYE_UPPER0_R = [246, 161, 160, 159, 158, 157, 173];
export const EYE_LOWER0_R = [33, 7, 163, 144, 145, 153, 154, 155, 133];
export const EYE_UPPER1_R = [247, 30, 29, 27, 28, 56, 190];
export const EYE_UPPER2_R = [113, 225, 224, 223, 222, 221, 189];
export const EYE_LOWER1_R = [130, 25, 110, 24, 23, 22, 26, 112, 243];
export const BROW_ALL_L = [383, 300, 293, 334, 296, 336, 285, 417, 265, 353, 276, 283, 282, 295];
export const BROW_ALL_R = [156, 70, 63, 105, 66, 107, 55, 193, 35, 124, 46, 53, 52, 65];
export const IRIS_L = [468, 469, 470, 471, 472];
export const IRIS_R = [473, 474, 475, 476, 477];
/** face outline loop (mesh boundary), clockwise on screen starting at the forehead top */
export const SILHOUETTE = [
  10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288,
  397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136,
  172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
];

export const LANDMARK_COUNT = 478;
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

/** Raw features from head-space points (units: IOD, eye widths for gaze, ratios for eyes). */
export function measureFeatures(h: ArrayLike<number>, out = new Float32Array(FEATURE_SIZE)): Float32Array {
  const X = (i: number) => h[i * 3], Y = (i: number) => h[i * 3 + 1], Z = (i: number) => h[i * 3 + 2];
  let gap = 0;
  for (const [u, l] of GAP_PAIRS) gap += Y(l) - Y(u);
  gap /= GAP_PAIRS.length;
  const midY = (Y(13) + Y(14)) / 2;
  const eyeOpen = (pairs: readonly (readonly [number, number])[], a: number, b: number) => {
    let s = 0;
    for (const [u, l] of pairs) s += Y(l) - Y(u);
    return s / pairs.length / (Math.hypot(X(a) - X(b), Y(a) - Y(b), Z(a) - Z(b)) || 1);
  };
  const browH = (pts: readonly number[], a: number, b: number) => {
    let s = 0;
    for (const i of pts) s += Y(i);
    return (Y(a) + Y(b)) / 2 - s / pts.length;
  };
  const gaze = (iris: number, a: number, b: number) => {
    const w = Math.hypot(X(a) - X(b), Y(a) - Y(b)) || 1;
    return [(X(iris) - (X(a) + X(b)) / 2) / w, (Y(iris) - (Y(a) + Y(b)) / 2) / w];
  };
  out[F_GAP] = gap;
  out[F_WIDTH] = Math.hypot(X(291) - X(61), Y(291) - Y(61));
  out[F_LIFT_L] = midY - Y(291);
  out[F_LIFT_R] = midY - Y(61);
  out[F_SHIFT] = (X(61) + X(291)) / 2 - X(2);
  out[F_OPEN_L] = eyeOpen(EYE_PAIRS_L, 263, 362);
  out[F_OPEN_R] = eyeOpen(EYE_PAIRS_R, 33, 133);
  out[F_BROW_L] = browH(BROW_L, 263, 362);
  out[F_BROW_R] = browH(BROW_R, 33, 133);
  out[F_INNER_BROW] = X(IDX.browInnerL) - X(IDX.browInnerR);
  const gl = gaze(IDX.irisL, 263, 362), gr = gaze(IDX.irisR, 33, 133);
  out[F_GAZE_X] = (gl[0] + gr[0]) / 2;
  out[F_GAZE_Y] = (gl[1] + gr[1]) / 2;
  return out;
}

/** Typical resting features (adult, frontal, mouth closed) for use before calibration. */
export const DEFAULT_NEUTRAL_FEATURES = Float32Array.from([0.02, 0.55, 0.0, 0.0, 0.0, 0.3, 0.3, 0.33, 0.33, 0.34, 0.0, 0.0]);

/** Build a neutral reference from landmarks of a resting face (the user's calibration frame). */
export function computeNeutralReference(landmarks: LandmarkInput, zScale?: number): NeutralReference {
  const p = toPixel3D(landmarks, zScale);
  const f = estimateHeadFrame(p);
  return { features: measureFeatures(toHeadSpace(p, f)), center: f.center, scale: f.scale };
}

const clamp1 = (v: number) => (v > 1 ? 1 : v < -1 ? -1 : Number.isFinite(v) ? v : 0);

/** Features → expression coefficients, relative to neutral features. */
export function featuresToExpression(ft: ArrayLike<number>, neutral: ArrayLike<number>, out = new Float32Array(EXPRESSION_SIZE)): Float32Array {
  const S = EXPRESSION_SCALE;
  const blink = (open: number, open0: number) => {
    const r = 1 - open / Math.max(open0, 1e-3);
    return r >= 0 ? r : r / S.eyeWiden;
  };
  out[EXPR.jawOpen] = clamp1((ft[F_GAP] - neutral[F_GAP]) / S.jawOpen);
  out[EXPR.mouthWide] = clamp1((ft[F_WIDTH] - neutral[F_WIDTH]) / S.mouthWide);
  const liftL = ft[F_LIFT_L] - neutral[F_LIFT_L], liftR = ft[F_LIFT_R] - neutral[F_LIFT_R];
  out[EXPR.smile] = clamp1((liftL + liftR) / 2 / S.smile);
  out[EXPR.smileAsym] = clamp1((liftL - liftR) / 2 / S.smileAsym);
  out[EXPR.mouthShiftX] = clamp1((ft[F_SHIFT] - neutral[F_SHIFT]) / S.mouthShiftX);
  out[EXPR.blinkL] = clamp1(blink(ft[F_OPEN_L], neutral[F_OPEN_L]));
  out[EXPR.blinkR] = clamp1(blink(ft[F_OPEN_R], neutral[F_OPEN_R]));
  out[EXPR.browL] = clamp1((ft[F_BROW_L] - neutral[F_BROW_L]) / S.brow);
  out[EXPR.browR] = clamp1((ft[F_BROW_R] - neutral[F_BROW_R]) / S.brow);
  out[EXPR.browFurrow] = clamp1((neutral[F_INNER_BROW] - ft[F_INNER_BROW]) / S.browFurrow);
  out[EXPR.gazeX] = clamp1((ft[F_GAZE_X] - neutral[F_GAZE_X]) / S.gazeX);
  out[EXPR.gazeY] = clamp1((ft[F_GAZE_Y] - neutral[F_GAZE_Y]) / S.gazeY);
  return out;
}

export interface LandmarksToMotionOptions {
  /** the user's resting face; without it DEFAULT_NEUTRAL_FEATURES are used and tx = ty = 0, scale = 1 */
  neutral?: NeutralReference;
  /** override Human's z → pixel factor */
  zScale?: number;
  /** input is already pixel-unit 3D (z scaled), e.g. points produced by the renderer */
  pixel3D?: boolean;
}

/** Human landmarks (478 × [x, y, z]) → head pose + expression code. */
export function landmarksToMotion(landmarks: LandmarkInput, opts: LandmarksToMotionOptions = {}): Motion {
  const p = opts.pixel3D ? flattenLandmarks(landmarks) : toPixel3D(landmarks, opts.zScale);
  const f = estimateHeadFrame(p);
  const h = toHeadSpace(p, f);
  const ft = measureFeatures(h);
  const n = opts.neutral;
  const expression = featuresToExpression(ft, n ? n.features : DEFAULT_NEUTRAL_FEATURES);
  const e = eulerFromRotation(f.R);
  const pose: HeadPose = n
    ? { ...e, tx: (f.center[0] - n.center[0]) / n.scale, ty: (f.center[1] - n.center[1]) / n.scale, scale: f.scale / n.scale }
    : { ...e, tx: 0, ty: 0, scale: 1 };
  return { pose, expression };
}

// ---------------------------------------------------------------------------------------------
// Inverse mapping: coefficients → head-space landmark displacements of a given (source) face.
// ---------------------------------------------------------------------------------------------

/**
 * Displacement rig built once from the source face's head-space landmarks.
 * Linear blendshapes (separate bases for positive and negative coefficients) for everything but
 * the jaw, which is a weighted rotation about a pivot below the ears (so the chin swings down and
 * back instead of sliding). Bases are defined in head-space units on the source's own geometry,
 * so e.g. blink = 1 exactly closes *this* face's eyes and jawOpen = 1 opens *this* mouth 0.45 IOD.
 */
export interface ExpressionRig {
  neutral: Float32Array;
  /** per coefficient: 478×3 displacement for coefficient +1 and −1 (null = none) */
  pos: (Float32Array | null)[];
  neg: (Float32Array | null)[];
  /** per-vertex jaw weight 0..1 */
  jawWeight: Float32Array;
  /** mouth-corner vertices: they drop by exactly half of the lower lip's drop */
  jawCorners: Uint16Array;
  jawPivot: [number, number];
  /** head-space pivot of head rotation (between the ears, at the neck) */
  headPivot: [number, number, number];
  /** source features (for reference) */
  features: Float32Array;
}

const N = LANDMARK_COUNT;

/** Spread anchor displacements to other vertices (Shepard average × nearest-anchor Gaussian falloff). */
function spread(h: Float32Array, anchors: Map<number, [number, number, number]>, sigma: number, only?: (i: number) => boolean): Float32Array {
  const out = new Float32Array(N * 3);
  const idx = [...anchors.keys()];
  const s2 = 1 / (2 * sigma * sigma);
  for (let v = 0; v < 468; v++) { // iris points (468..477) only move with gaze
    const a = anchors.get(v);
    if (a) {
      out[v * 3] = a[0]; out[v * 3 + 1] = a[1]; out[v * 3 + 2] = a[2];
      continue;
    }
    if (only && !only(v)) continue;
    let ws = 0, wmax = 0, dx = 0, dy = 0, dz = 0;
    for (const i of idx) {
      const d2 = (h[v * 3] - h[i * 3]) ** 2 + (h[v * 3 + 1] - h[i * 3 + 1]) ** 2 + (h[v * 3 + 2] - h[i * 3 + 2]) ** 2;
      const w = Math.exp(-d2 * s2);
      const d = anchors.get(i)!;
      ws += w; dx += w * d[0]; dy += w * d[1]; dz += w * d[2];
      if (w > wmax) wmax = w;
    }
    if (ws > 1e-12) {
      out[v * 3] = (dx / ws) * wmax; out[v * 3 + 1] = (dy / ws) * wmax; out[v * 3 + 2] = (dz / ws) * wmax;
    }
  }
  return out;
}

/** Build the rig for a source face given its head-space landmarks (478×3). */
export function createExpressionRig(h: Float32Array): ExpressionRig {
  const X = (i: number) => h[i * 3], Y = (i: number) => h[i * 3 + 1], Z = (i: number) => h[i * 3 + 2];
  const pos: (Float32Array | null)[] = new Array(EXPRESSION_SIZE).fill(null);
  const neg: (Float32Array | null)[] = new Array(EXPRESSION_SIZE).fill(null);
  const S = EXPRESSION_SCALE;
  const features = measureFeatures(h);
  const set = (m: Map<number, [number, number, number]>, ids: readonly number[], d: [number, number, number]) => {
    for (const i of ids) m.set(i, d);
  };
  const zero: [number, number, number] = [0, 0, 0];
  const upperLips = [...LIPS_UPPER_OUTER, ...LIPS_UPPER_INNER, ...LIPS_UPPER_SEMI];
  const lowerLips = [...LIPS_LOWER_OUTER, ...LIPS_LOWER_INNER, ...LIPS_LOWER_SEMI];
  const allLips = [...new Set([...upperLips, ...lowerLips])];
  const noseAnchors = [1, 2, 4, 5, 6, 168, 98, 327, 19, 94];
  const eyesAnchors = [...EYE_LOWER0_L, ...EYE_LOWER0_R, ...EYE_UPPER0_L, ...EYE_UPPER0_R];
  const mouthCx = (X(61) + X(291)) / 2;
  const halfW = Math.max(1e-3, (X(291) - X(61)) / 2);

  // --- jaw: per-vertex rotation weight ---
  const jawWeight = new Float32Array(N);
  const midY = (Y(13) + Y(14)) / 2;
  const lowerSet = new Set(lowerLips), upperSet = new Set(upperLips);
  const cornerSet = new Set([...MOUTH_CORNER_L, ...MOUTH_CORNER_R]);
  const chinY = Y(IDX.chin);
  for (let v = 0; v < 468; v++) {
    let w: number;
    if (cornerSet.has(v)) w = 0; // corners: moved explicitly by half the lip drop (see applyExpression)
    else if (lowerSet.has(v)) w = 1;
    else if (upperSet.has(v)) w = 0;
    else {
      const t = (Y(v) - (midY - 0.05)) / Math.max(0.05, (chinY - midY) * 0.45);
      w = t <= 0 ? 0 : t >= 1 ? 1 : t * t * (3 - 2 * t);
      // the jaw hinge sits at the sides: far-lateral points above the chin line move less
      const lat = Math.abs(X(v) - mouthCx) / Math.max(1e-3, Math.abs(X(IDX.cheekL) - X(IDX.cheekR)) / 2);
      if (lat > 0.75) w *= Math.max(0.35, 1 - (lat - 0.75) * 2);
    }
    jawWeight[v] = w;
  }
  const earY = (Y(IDX.cheekL) + Y(IDX.cheekR)) / 2, earZ = (Z(IDX.cheekL) + Z(IDX.cheekR)) / 2;
  const jawPivot: [number, number] = [earY + 0.1, earZ + 0.35];

  // --- mouthWide ---
  {
    const m = new Map<number, [number, number, number]>();
    for (const i of allLips) m.set(i, [(S.mouthWide / 2) * Math.max(-1, Math.min(1, (X(i) - mouthCx) / halfW)), 0, 0]);
    set(m, noseAnchors, zero);
    set(m, eyesAnchors, zero);
    set(m, [IDX.chin, 152, 175, 199], zero);
    pos[EXPR.mouthWide] = spread(h, m, 0.22);
    const mn = new Map<number, [number, number, number]>();
    for (const i of allLips) {
      const r = Math.max(-1, Math.min(1, (X(i) - mouthCx) / halfW));
      mn.set(i, [(-S.mouthWide / 2) * r, 0, -0.06 * (1 - r * r) - 0.02]);
    }
    set(mn, noseAnchors, zero);
    set(mn, eyesAnchors, zero);
    set(mn, [IDX.chin, 175, 199], zero);
    neg[EXPR.mouthWide] = spread(h, mn, 0.22);
    // stored as the displacement for coefficient −1
  }
  // --- smile / frown (vertical corner lift), smileAsym ---
  const cornerLift = (sideL: number, sideR: number, sigma = 0.2) => {
    const m = new Map<number, [number, number, number]>();
    // inner lip midline fixed; the corners move; lip points in between follow with |x| weight
    for (const i of allLips) {
      const r = (X(i) - mouthCx) / halfW;
      const a = Math.min(1, Math.abs(r)) ** 2;
      const s = r >= 0 ? sideL : sideR;
      m.set(i, [0, -S.smile * s * a, 0]);
    }
    set(m, [13, 14], zero);
    set(m, noseAnchors, zero);
    set(m, eyesAnchors, zero);
    set(m, [IDX.chin, 175, 199], zero);
    return spread(h, m, sigma);
  };
  pos[EXPR.smile] = cornerLift(1, 1);
  neg[EXPR.smile] = cornerLift(-1, -1);
  pos[EXPR.smileAsym] = cornerLift(1, -1);
  neg[EXPR.smileAsym] = cornerLift(-1, 1);
  // --- mouthShiftX ---
  {
    const m = new Map<number, [number, number, number]>();
    set(m, allLips, [S.mouthShiftX, 0, 0]);
    set(m, noseAnchors, zero);
    set(m, eyesAnchors, zero);
    set(m, [...SILHOUETTE], zero);
    pos[EXPR.mouthShiftX] = spread(h, m, 0.25);
    neg[EXPR.mouthShiftX] = pos[EXPR.mouthShiftX]!.map((x) => -x);
  }
  // --- blinks ---
  const blink = (upper0: number[], lower0: number[], upper1: number[], upper2: number[], lower1: number[], widen: boolean) => {
    const m = new Map<number, [number, number, number]>();
    // lower-lid y as a function of x (piecewise linear over lower0)
    const lower = lower0.map((i) => [X(i), Y(i), Z(i)]).sort((a, b) => a[0] - b[0]);
    const lowerAt = (x: number) => {
      if (x <= lower[0][0]) return lower[0][1];
      for (let k = 1; k < lower.length; k++) {
        if (x <= lower[k][0]) {
          const t = (x - lower[k - 1][0]) / Math.max(1e-6, lower[k][0] - lower[k - 1][0]);
          return lower[k - 1][1] + t * (lower[k][1] - lower[k - 1][1]);
        }
      }
      return lower[lower.length - 1][1];
    };
    const upper = upper0.map((i) => [X(i), Y(i)]).sort((a, b) => a[0] - b[0]);
    const upperAt = (x: number) => {
      if (x <= upper[0][0]) return upper[0][1];
      for (let k = 1; k < upper.length; k++) {
        if (x <= upper[k][0]) {
          const t = (x - upper[k - 1][0]) / Math.max(1e-6, upper[k][0] - upper[k - 1][0]);
          return upper[k - 1][1] + t * (upper[k][1] - upper[k - 1][1]);
        }
      }
      return upper[upper.length - 1][1];
    };
    const corners = [lower0[0], lower0[lower0.length - 1]];
    const cornerSetE = new Set(corners);
    if (!widen) {
      for (const i of upper0) m.set(i, [0, 0.85 * Math.max(0, lowerAt(X(i)) - Y(i)), 0]);
      for (const i of lower0) if (!cornerSetE.has(i)) m.set(i, [0, -0.15 * Math.max(0, Y(i) - upperAt(X(i))), 0]);
      for (const i of upper1) m.set(i, [0, 0.45 * 0.85 * Math.max(0, lowerAt(X(i)) - upperAt(X(i))), 0]);
      for (const i of upper2) m.set(i, [0, 0.12 * 0.85 * Math.max(0, lowerAt(X(i)) - upperAt(X(i))), 0]);
    } else {
      for (const i of upper0) m.set(i, [0, -S.eyeWiden * Math.max(0, lowerAt(X(i)) - Y(i)), 0]);
      for (const i of lower0) if (!cornerSetE.has(i)) m.set(i, zero);
      for (const i of upper1) m.set(i, [0, -0.5 * S.eyeWiden * Math.max(0, lowerAt(X(i)) - upperAt(X(i))), 0]);
      for (const i of upper2) m.set(i, zero);
    }
    set(m, corners, zero);
    set(m, lower1, zero);
    const sideSet = new Set([...upper0, ...lower0, ...upper1, ...upper2, ...lower1]);
    return spread(h, m, 0.05, (i) => sideSet.has(i));
  };
  pos[EXPR.blinkL] = blink(EYE_UPPER0_L, EYE_LOWER0_L, EYE_UPPER1_L, EYE_UPPER2_L, EYE_LOWER1_L, false);
  neg[EXPR.blinkL] = blink(EYE_UPPER0_L, EYE_LOWER0_L, EYE_UPPER1_L, EYE_UPPER2_L, EYE_LOWER1_L, true);
  pos[EXPR.blinkR] = blink(EYE_UPPER0_R, EYE_LOWER0_R, EYE_UPPER1_R, EYE_UPPER2_R, EYE_LOWER1_R, false);
  neg[EXPR.blinkR] = blink(EYE_UPPER0_R, EYE_LOWER0_R, EYE_UPPER1_R, EYE_UPPER2_R, EYE_LOWER1_R, true);
  // --- brows ---
  const brow = (browPts: number[], upper2: number[], upper1: number[], lower0: number[], upper0: number[], sign: number) => {
    const m = new Map<number, [number, number, number]>();
    set(m, browPts, [0, -S.brow * sign, 0]);
    set(m, upper2, [0, -0.4 * S.brow * sign, 0]);
    set(m, upper1, [0, -0.1 * S.brow * sign, 0]);
    set(m, lower0, zero);
    set(m, upper0, zero);
    set(m, noseAnchors, zero);
    return spread(h, m, 0.18);
  };
  pos[EXPR.browL] = brow(BROW_ALL_L, EYE_UPPER2_L, EYE_UPPER1_L, EYE_LOWER0_L, EYE_UPPER0_L, 1);
  neg[EXPR.browL] = brow(BROW_ALL_L, EYE_UPPER2_L, EYE_UPPER1_L, EYE_LOWER0_L, EYE_UPPER0_L, -1);
  pos[EXPR.browR] = brow(BROW_ALL_R, EYE_UPPER2_R, EYE_UPPER1_R, EYE_LOWER0_R, EYE_UPPER0_R, 1);
  neg[EXPR.browR] = brow(BROW_ALL_R, EYE_UPPER2_R, EYE_UPPER1_R, EYE_LOWER0_R, EYE_UPPER0_R, -1);
  // --- furrow: inner brows move towards the midline and down ---
  {
    const m = new Map<number, [number, number, number]>();
    const innerL = [336, 296, 285, 295, 282], innerR = [107, 66, 55, 65, 52];
    set(m, innerL, [-S.browFurrow / 2, 0, 0]);
    set(m, innerR, [S.browFurrow / 2, 0, 0]);
    set(m, [300, 383, 70, 156], zero);
    set(m, [...EYE_UPPER0_L, ...EYE_UPPER0_R, ...EYE_LOWER0_L, ...EYE_LOWER0_R], zero);
    set(m, noseAnchors, zero);
    pos[EXPR.browFurrow] = spread(h, m, 0.12);
    neg[EXPR.browFurrow] = pos[EXPR.browFurrow]!.map((x) => -x);
  }
  // --- gaze: irises only (the renderer slides the eye texture) ---
  for (const [k, dx, dy] of [[EXPR.gazeX, 1, 0], [EXPR.gazeY, 0, 1]] as const) {
    const b = new Float32Array(N * 3);
    const wl = Math.hypot(X(263) - X(362), Y(263) - Y(362)), wr = Math.hypot(X(33) - X(133), Y(33) - Y(133));
    for (const i of IRIS_L) { b[i * 3] = dx * S.gazeX * wl; b[i * 3 + 1] = dy * S.gazeY * wl; }
    for (const i of IRIS_R) { b[i * 3] = dx * S.gazeX * wr; b[i * 3 + 1] = dy * S.gazeY * wr; }
    pos[k] = b;
    neg[k] = b.map((x) => -x);
  }
  const headPivot: [number, number, number] = [0, Y(IDX.noseBottom) + 0.3, earZ + 0.45];
  return { neutral: h.slice(), pos, neg, jawWeight, jawCorners: Uint16Array.from(cornerSet), jawPivot, headPivot, features };
}

/**
 * Apply an expression to the rig's neutral head-space points. Writes 478×3 into `out`.
 * jawOpen moves the inner-lip gap by jawOpen × 0.45 IOD (the target gap is kept ≥ 0).
 */
export function applyExpression(rig: ExpressionRig, expr: ArrayLike<number>, out = new Float32Array(N * 3)): Float32Array {
  const h = rig.neutral;
  out.set(h);
  for (let k = 0; k < EXPRESSION_SIZE; k++) {
    if (k === EXPR.jawOpen) continue;
    const c = expr[k];
    if (!c) continue;
    const b = c > 0 ? rig.pos[k] : rig.neg[k];
    if (!b) continue;
    const a = Math.abs(c);
    for (let i = 0; i < N * 3; i++) out[i] += a * b[i];
  }
  // jaw: rotation about the x axis through (pivotY, pivotZ) by angle θ·w; θ chosen so the lower
  // inner lip (14) drops by the requested amount.
  let drop = (expr[EXPR.jawOpen] || 0) * EXPRESSION_SCALE.jawOpen;
  const gap0 = rig.features[F_GAP];
  if (gap0 + drop < 0) drop = -gap0;
  if (drop !== 0) {
    const [py, pz] = rig.jawPivot;
    const dy = h[14 * 3 + 1] - py, dz = h[14 * 3 + 2] - pz;
    // dy·cosθ − dz·sinθ = dy + drop: solve with Newton iterations
    let th = drop / Math.max(1e-3, Math.hypot(dy, dz));
    for (let it = 0; it < 4; it++) {
      const f = dy * Math.cos(th) - dz * Math.sin(th) - dy - drop;
      const df = -dy * Math.sin(th) - dz * Math.cos(th);
      if (Math.abs(df) < 1e-9) break;
      th -= f / df;
    }
    const w = rig.jawWeight;
    const y14 = out[14 * 3 + 1];
    for (let v = 0; v < 468; v++) {
      const wv = w[v];
      if (wv === 0) continue;
      const t = th * wv, c = Math.cos(t), s = Math.sin(t);
      const y = out[v * 3 + 1] - py, z = out[v * 3 + 2] - pz;
      out[v * 3 + 1] = py + y * c - z * s;
      out[v * 3 + 2] = pz + y * s + z * c;
    }
    const half = (out[14 * 3 + 1] - y14) / 2;
    for (const v of rig.jawCorners) out[v * 3 + 1] += half;
  }
  return out;
}
