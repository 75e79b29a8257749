/**
 * The expression code: its 12 coefficients and how they are measured from head-space landmarks
 * relative to a neutral reference (the inverse, coefficients → displacements, is expression-rig.ts).
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
import { BROW_L, BROW_R, EYE_PAIRS_L, EYE_PAIRS_R, GAP_PAIRS, IDX } from './landmark-indices.ts';
import { estimateHeadFrame, toHeadSpace, toPixel3D, type LandmarkInput } from './head-pose.ts';

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

/** Indices into the raw feature vector (head-space units) that measureFeatures fills. */
export const F_GAP = 0, F_WIDTH = 1, F_LIFT_L = 2, F_LIFT_R = 3, F_SHIFT = 4, F_OPEN_L = 5, F_OPEN_R = 6,
  F_BROW_L = 7, F_BROW_R = 8, F_INNER_BROW = 9, F_GAZE_X = 10, F_GAZE_Y = 11;
export const FEATURE_SIZE = 12;

export interface NeutralReference {
  features: Float32Array;
  center: [number, number, number];
  scale: number;
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
