/**
 * Smoothing of the tracker's motion channels: one One-Euro filter per channel (OneEuroFilter.ts),
 * parameters derived from each channel's measured jitter. Pure TS (browser + Node tests).
 *
 * Rule (see OneEuroFilter.ts for the lag analysis): the filter lags at most one frame at every
 * speed above v₁ = (fps/2π − minCutoff)/beta and its positional lag error never exceeds
 * 1/(2π·beta). We pick v₁ = 20·σ per second at 30 fps (σ = the channel's frame-to-frame jitter on a
 * still face) and minCutoff 1 Hz, so beta = 3.77/(20σ) and the lag error is ≤ 0.84σ: lag never
 * costs more than the jitter it removes. Simulated with white jitter σ (test/unit/one-euro.test.ts):
 *   - still face: jitter drops to 0.59σ at 30 fps (0.64σ at 20 fps, 0.69σ at 12 fps);
 *   - ramps: lag ≤ one frame for every speed ≥ 10σ/s at 30 fps (≥ 5σ/s at 20 fps), lag error
 *     ≤ 0.74σ up to 200σ/s;
 *   - real motions are far faster than v₁ (a 20° head turn in 0.5 s is 0.7 rad/s = 140σ/s for yaw;
 *     a jaw opening of 0.7 in 0.3 s is 2.3/s ≈ 190σ/s): their lag is a fraction of a frame. End to
 *     end (test/e2e/face-tracker.test.ts) smoothed yaw and jawOpen line up with the ground truth
 *     within one 30 fps frame of the unsmoothed values.
 * Trade-off measured by simulation (RMS error vs the clean signal, in σ, 30 fps; still / yaw 20° at
 * 0.5 Hz / 2° at 0.25 Hz): v₁ = 10σ: 0.68 / 1.06 / 0.70; 20σ: 0.59 / 1.22 / 0.64; 35σ:
 * 0.52 / 1.48 / 0.62; 50σ: 0.47 / 1.80 / 0.61. 20σ keeps fast turns within ~1.2σ of the truth while
 * still halving still-face jitter (which is what viewers notice on an avatar).
 * dCutoff 2 Hz (τ 80 ms) for the speed estimate: lower lets the cutoff rise too late at the onset
 * of a motion; higher lets jitter open the filter while the face holds still.
 */
import type { OneEuroParams } from './OneEuroFilter.ts';

/**
 * Ranges the wire format can carry (= MOTION_LIMITS of protocol/src/motion.ts, checked by
 * test/unit/one-euro.test.ts). Copied rather than imported: motion.ts pulls msgpackr, which would
 * land in the tracker's lazy chunk although the tracker never encodes.
 */
export const WIRE_LIMITS = { angle: 32767 / 10000, translation: 32767 / 4096, logScale: 32767 / 4096, expression: 1 } as const;

/** Channel order of the tracker's filter bank. */
export const MOTION_CHANNELS = [
  'yaw', 'pitch', 'roll', 'tx', 'ty', 'logScale',
  'jawOpen', 'mouthWide', 'smile', 'smileAsym', 'mouthShiftX',
  'blinkL', 'blinkR', 'browL', 'browR', 'browFurrow', 'gazeX', 'gazeY',
] as const;
export type MotionChannel = (typeof MOTION_CHANNELS)[number];

/**
 * Frame-to-frame jitter (standard deviation) of each channel on a still face, measured on Human's
 * output in headless Chromium (wasm) for the rendered astronaut at 480² (IOD ≈ 45 px), before
 * smoothing: radians for angles, neutral IODs for tx/ty, ln units for scale, coefficients for the
 * expression. Human truncates landmark coordinates to whole pixels, which sets a floor of ≈ ±0.5 px.
 * Larger faces in the frame (closer to the camera) jitter less; sensor noise adds some.
 */
export const DEFAULT_MOTION_JITTER: Readonly<Record<MotionChannel, number>> = {
  yaw: 0.005, pitch: 0.005, roll: 0.001, tx: 0.003, ty: 0.001, logScale: 0.005,
  jawOpen: 0.012, mouthWide: 0.047, smile: 0.021, smileAsym: 0.019, mouthShiftX: 0.069,
  blinkL: 0.03, blinkR: 0.03, browL: 0.022, browR: 0.022, browFurrow: 0.087, gazeX: 0.014, gazeY: 0.02,
};

export interface JitterRule {
  /** cutoff while still, Hz (default 1) */
  minCutoff?: number;
  /** speed-filter cutoff, Hz (default 2) */
  dCutoff?: number;
  /** v₁ in jitter σ per second at refFps (default 20) */
  v1PerSigma?: number;
  /** frame rate at which "one frame" is defined (default 30: the strictest common camera rate) */
  refFps?: number;
}

/** One-Euro parameters for a channel with jitter σ (see the rule in the file comment). */
export function oneEuroForJitter(sigma: number, rule: JitterRule = {}): OneEuroParams {
  const minCutoff = rule.minCutoff ?? 1;
  const dCutoff = rule.dCutoff ?? 2;
  const v1 = Math.max(1e-9, (rule.v1PerSigma ?? 20) * sigma);
  const oneFrameCutoff = (rule.refFps ?? 30) / (2 * Math.PI);
  return { minCutoff, beta: Math.max(0, oneFrameCutoff - minCutoff) / v1, dCutoff };
}

/** Filter parameters for all channels in MOTION_CHANNELS order. */
export function motionFilterParams(jitter: Partial<Record<MotionChannel, number>> = {}, rule: JitterRule = {}): OneEuroParams[] {
  return MOTION_CHANNELS.map((c) => oneEuroForJitter(jitter[c] ?? DEFAULT_MOTION_JITTER[c], rule));
}
