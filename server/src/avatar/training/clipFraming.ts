/**
 * How a tracked frame becomes a training frame, shared by both clip paths (a video file decoded on
 * the server, prepareClip.ts; frames the browser decoded and tracked, prepareUpload.ts): the crop's
 * framing, cutting the crop with the landmarks moved into it, and the motion code each frame would
 * have on the wire.
 */
import { computeNeutralReference, landmarksToMotion, toPixel3D, type HeadPose, type NeutralReference } from '../../../../models/face/expression-code.ts';
import { quantizeMotion } from '../../../../protocol/src/motion.ts';
import { resampleRegion } from '../../../../models/image/resampleRegion.ts';

/** Landmark smoothing σ, in frames of the source. */
export const LANDMARK_SIGMA_FRAMES = 1;
/** Crop smoothing σ, seconds. */
export const CROP_SIGMA_S = 0.3;
/** More than this fraction of the training frames with a second person → MULTIPLE_PEOPLE. */
export const MULTI_FRAME_FRACTION = 0.2;

/** Crop framing, as enrollIdentityFromPhoto's: centre moved down by this fraction of the face size. */
export const CENTRE_DOWN = 0.1;

/** enrollIdentityFromPhoto's framing of one frame: landmark box centre + 0.1·faceSize down, side = cropFactor·faceSize. */
export function rawCrop(lm: Float32Array | Float64Array, cropFactor: number, offset = 0): { cx: number; cy: number; side: number; faceSize: number } {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < 468; i++) {
    const x = lm[offset + i * 3]!, y = lm[offset + i * 3 + 1]!;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  const faceSize = Math.max(x1 - x0, y1 - y0);
  return { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2 + CENTRE_DOWN * faceSize, side: cropFactor * faceSize, faceSize };
}

export interface CutCrop {
  /** size×size RGBA (alpha 255) */
  rgba: Uint8Array;
  /** the crop square in source pixels */
  crop: { x: number; y: number; side: number };
  /** 478×3 in crop pixels, z in pixel units (toPixel3D) */
  landmarks: Float32Array;
  /** the same with z in Human's raw units (what landmarksToMotion takes) */
  humanLandmarks: Float32Array;
}

/**
 * Cut frame i's crop out of its RGBA source: `crops` holds (cx, cy, side) per frame, `landmarks`
 * 478×3 per frame in source pixels (both smoothed already).
 */
export function cutCrop(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, crops: Float64Array, landmarks: Float64Array | Float32Array, i: number, size: number): CutCrop {
  const side = Math.max(1, crops[i * 3 + 2]!);
  const crop = { x: crops[i * 3]! - side / 2, y: crops[i * 3 + 1]! - side / 2, side };
  const out = resampleRegion(rgba, width, height, crop.x, crop.y, side, size);
  // continuous pixel coordinates: crop pixel X covers source [crop.x + X·k⁻¹, …), k = size/side
  const k = size / side;
  const human = new Float32Array(478 * 3);
  for (let p = 0; p < 478; p++) {
    const o = i * 1434 + p * 3;
    human[p * 3] = (landmarks[o]! - crop.x) * k;
    human[p * 3 + 1] = (landmarks[o + 1]! - crop.y) * k;
    human[p * 3 + 2] = landmarks[o + 2]!;
  }
  return { rgba: new Uint8Array(out.buffer, out.byteOffset, out.byteLength), crop, landmarks: toPixel3D(human), humanLandmarks: human };
}

/** Until assignMotion runs (the neutral reference needs the first training frame). */
export const PLACEHOLDER_MOTION: Readonly<{ pose: HeadPose; expression: Float32Array }> = Object.freeze({ pose: { yaw: 0, pitch: 0, roll: 0, tx: 0, ty: 0, scale: 1 }, expression: new Float32Array(0) });

/**
 * Every frame's motion: landmarksToMotion with the first training frame as neutral, through the
 * wire's quantisation (exactly what a worker would receive). Returns the neutral reference.
 */
export function assignMotion(
  train: readonly { humanLandmarks: Float32Array }[],
  all: readonly { index: number; humanLandmarks: Float32Array; motion: { pose: HeadPose; expression: Float32Array } }[],
): NeutralReference {
  if (train.length === 0) throw new TypeError('assignMotion needs at least one training frame');
  const neutral = computeNeutralReference(train[0]!.humanLandmarks);
  for (const fr of all) fr.motion = quantizeMotion(landmarksToMotion(fr.humanLandmarks, { neutral }), fr.index);
  return neutral;
}
