/**
 * The live checks of the personal-avatar recorder's overlay: is the face tracked, well lit and large
 * enough in the frame? One detection with the page's face engine (the same Human models the clip is
 * tracked with) and the mean brightness of the face box.
 */
import type { FaceEngine } from './faceEngine.ts';

export interface FaceQuality {
  /** exactly one face found with a usable score */
  tracked: boolean;
  /** mean luma of the face box (0..255) within MIN_LUMA..MAX_LUMA */
  lit: boolean;
  /** face box height / frame height ≥ MIN_FACE_SHARE */
  large: boolean;
  faces: number;
  luma: number | null;
  faceShare: number | null;
}

/** Below this mean luma a face is too dark to train on; above MAX_LUMA it is washed out. */
export const MIN_LUMA = 60;
export const MAX_LUMA = 215;
/** The face should fill at least this share of the frame height (the trainer crops the head). */
export const MIN_FACE_SHARE = 0.25;
const MIN_SCORE = 0.5;

let scratch: HTMLCanvasElement | undefined;

/** Mean luma of a box of `source` (pixels of the source), sampled on a small canvas. */
function meanLuma(source: HTMLVideoElement | HTMLCanvasElement, box: [number, number, number, number]): number {
  scratch ??= document.createElement('canvas');
  const side = 32;
  scratch.width = side;
  scratch.height = side;
  const ctx = scratch.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(source, box[0], box[1], Math.max(1, box[2]), Math.max(1, box[3]), 0, 0, side, side);
  const px = ctx.getImageData(0, 0, side, side).data;
  let sum = 0;
  for (let i = 0; i < px.length; i += 4) sum += 0.299 * px[i]! + 0.587 * px[i + 1]! + 0.114 * px[i + 2]!;
  return sum / (side * side);
}

export async function assessFace(engine: FaceEngine, source: HTMLVideoElement | HTMLCanvasElement): Promise<FaceQuality> {
  const height = source instanceof HTMLVideoElement ? source.videoHeight : source.height;
  const res = await engine.human.detect(source);
  const faces = (res.face ?? []).filter((f) => (f.faceScore ?? f.score ?? 0) >= MIN_SCORE);
  const face = faces[0];
  if (!face || height === 0) return { tracked: false, lit: false, large: false, faces: faces.length, luma: null, faceShare: null };
  const box = face.box as [number, number, number, number];
  const luma = meanLuma(source, box);
  const faceShare = box[3] / height;
  return { tracked: faces.length === 1, lit: luma >= MIN_LUMA && luma <= MAX_LUMA, large: faceShare >= MIN_FACE_SHARE, faces: faces.length, luma, faceShare };
}
