/**
 * Keypoint-avatar expression code: what the browser measures from Human's 478 face landmarks and
 * what the renderer turns back into landmark displacements.
 *
 * Pure TypeScript, no Node or DOM imports: runs in the browser (tracker) and in Node (generator).
 *
 * The public entry point of the face model; the parts live next to it:
 *   landmark-indices.ts     index tables of Human's 478-point face mesh
 *   head-pose.ts            pose solver: landmarks → head frame, head space, Euler angles
 *   expression-features.ts  the 12 expression coefficients and their measurement
 *   expression-rig.ts       coefficients → landmark displacements of a source face
 * This module combines them (`landmarksToMotion`) and re-exports what they offer.
 */
import { estimateHeadFrame, eulerFromRotation, flattenLandmarks, toHeadSpace, toPixel3D, type HeadPose, type LandmarkInput } from './head-pose.ts';
import { DEFAULT_NEUTRAL_FEATURES, featuresToExpression, measureFeatures, type NeutralReference } from './expression-features.ts';

export {
  BROW_ALL_L, BROW_ALL_R, EYE_LOWER0_L, EYE_LOWER0_R, EYE_LOWER1_L, EYE_LOWER1_R, EYE_UPPER0_L, EYE_UPPER0_R,
  EYE_UPPER1_L, EYE_UPPER1_R, EYE_UPPER2_L, EYE_UPPER2_R, IDX, INNER_LIP_LOOP, IRIS_L, IRIS_R, LANDMARK_COUNT,
  LIPS_LOWER_INNER, LIPS_LOWER_OUTER, LIPS_LOWER_SEMI, LIPS_UPPER_INNER, LIPS_UPPER_OUTER, LIPS_UPPER_SEMI,
  MOUTH_CORNER_L, MOUTH_CORNER_R, SILHOUETTE,
} from './landmark-indices.ts';
export {
  estimateHeadFrame, eulerFromRotation, flattenLandmarks, humanZScale, rotationFromEuler, toHeadSpace, toPixel3D,
  type HeadFrame, type HeadPose, type LandmarkInput,
} from './head-pose.ts';
export {
  DEFAULT_NEUTRAL_FEATURES, EXPR, EXPRESSION_NAMES, EXPRESSION_SCALE, EXPRESSION_SIZE, FEATURE_SIZE,
  computeNeutralReference, featuresToExpression, measureFeatures, type ExpressionName, type NeutralReference,
} from './expression-features.ts';
export { applyExpression, createExpressionRig, type ExpressionRig } from './expression-rig.ts';

export interface Motion {
  pose: HeadPose;
  expression: Float32Array;
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
