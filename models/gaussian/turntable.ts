/**
 * A trained head's turntable: the rest pose (neutral expression) rendered at a row of free-view yaws
 * (−45° … +45°), side by side in one RGBA strip, for the owner's "My avatars" preview. Written by the
 * training job at its end (server/src/avatar/training/trainingProcess.ts).
 */
import { EXPRESSION_SIZE } from '../face/expression-code.ts';
import { restAngles } from './gaussians.ts';
import type { GaussianHead } from './head.ts';

/** The yaws of the turntable's frames, degrees. */
export const TURNTABLE_YAWS_DEG: readonly number[] = Object.freeze([-45, -30, -15, 0, 15, 30, 45]);

export interface TurntableStrip {
  /** one frame's side; the strip is `size · frames` wide */
  size: number;
  frames: number;
  width: number;
  height: number;
  rgba: Uint8Array;
}

/** Renders the strip; `size` a multiple of 16 (the renderer's). */
export function renderTurntable(head: GaussianHead, size = 128, yawsDeg: readonly number[] = TURNTABLE_YAWS_DEG): TurntableStrip {
  if (!Number.isInteger(size) || size < 16 || size % 16 !== 0) throw new TypeError(`renderTurntable: size must be a multiple of 16, not ${size}`);
  if (yawsDeg.length === 0) throw new TypeError('renderTurntable: no yaws');
  const motion = { pose: { ...restAngles(head.scaffold), tx: 0, ty: 0, scale: 1 }, expression: new Float32Array(EXPRESSION_SIZE) };
  const width = size * yawsDeg.length;
  const rgba = new Uint8Array(width * size * 4);
  yawsDeg.forEach((yaw, f) => {
    const img = head.render(motion, { yaw: (yaw * Math.PI) / 180, pitch: 0, roll: 0 }, size);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const p = (y * size + x) * 3;
        const o = (y * width + f * size + x) * 4;
        for (let c = 0; c < 3; c++) rgba[o + c] = Math.max(0, Math.min(255, Math.round(img[p + c]! * 255)));
        rgba[o + 3] = 255;
      }
    }
  });
  return { size, frames: yawsDeg.length, width, height: size, rgba };
}
