/**
 * The face tracker's neutral reference: the user's resting face, which expressions and
 * tx/ty/scale are measured against.
 *
 * The first `autoCalibrateMs` (500 ms) of face-found frames after start() build it automatically
 * (per-feature median over the frames, so a blink inside the window does not count); frames in
 * that window are emitted against the median so far. `calibrateNeutral()` re-does it on request.
 */
import { computeNeutralReference, type NeutralReference } from '../../../models/face/expression-code.ts';
import { median } from './median.ts';

/** Per-component median of neutral references (robust to a blink or a word inside the window). */
function medianNeutral(refs: NeutralReference[]): NeutralReference {
  const n = refs[0]!.features.length;
  const features = new Float32Array(n);
  for (let i = 0; i < n; i++) features[i] = median(refs.map((r) => r.features[i]!));
  const center: [number, number, number] = [0, 1, 2].map((k) => median(refs.map((r) => r.center[k]!))) as [number, number, number];
  return { features, center, scale: median(refs.map((r) => r.scale)) };
}

/** One calibration window: automatic (no promise) or requested by calibrateNeutral(). */
interface CalibrationWindow {
  untilMs: number | null;
  durationMs: number;
  refs: NeutralReference[];
  resolve?: (r: NeutralReference) => void;
  reject?: (e: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
}

export class NeutralCalibration {
  /** The neutral reference in use (null before the first calibrated frame). */
  reference: NeutralReference | null = null;
  private window: CalibrationWindow | null = null;

  /** True while a calibration window is open. */
  get active(): boolean {
    return this.window !== null;
  }

  /**
   * Take the neutral reference from the next `durationMs` of face-found frames. Rejects after
   * `durationMs + 5 s` without enough face frames, or when superseded or cancelled.
   */
  request(durationMs: number): Promise<NeutralReference> {
    this.cancel(new Error('calibrateNeutral: superseded by a new calibration'));
    return new Promise<NeutralReference>((resolve, reject) => {
      const c: CalibrationWindow = { untilMs: null, durationMs, refs: [], resolve, reject };
      c.timer = setTimeout(() => {
        if (this.window === c) {
          this.window = null;
          reject(new Error('calibrateNeutral: no face long enough to calibrate'));
        }
      }, durationMs + 5000);
      this.window = c;
    });
  }

  /** Open the automatic window (start()) unless a reference or a window exists; 0 = off. */
  startAutomatic(durationMs: number): void {
    if (!this.reference && durationMs > 0 && !this.window) this.window = { untilMs: null, durationMs, refs: [] };
  }

  /**
   * A face-found frame's landmarks at `captureTime` (ms). Inside a window it updates the reference
   * (the median so far for an automatic window or before any reference exists; at the end of the
   * window for a requested one). `calibrating`: the frame belongs to a window; `completed`: the
   * window ended with it.
   */
  addFrame(landmarks: Float32Array, captureTime: number): { calibrating: boolean; completed: boolean } {
    const c = this.window;
    if (!c) return { calibrating: false, completed: false };
    if (c.untilMs === null) c.untilMs = captureTime + c.durationMs;
    c.refs.push(computeNeutralReference(landmarks));
    const done = captureTime >= c.untilMs && c.refs.length >= 3;
    if (done || !c.resolve || !this.reference) {
      // automatic calibration (or no reference yet): use the median so far right away
      this.reference = medianNeutral(c.refs);
    }
    if (done) {
      this.window = null;
      if (c.timer) clearTimeout(c.timer);
      c.resolve?.(this.reference!);
    }
    return { calibrating: true, completed: done };
  }

  /** Close the open window; a requested one rejects with `err`. */
  cancel(err: Error): void {
    const c = this.window;
    if (!c) return;
    if (c.timer) clearTimeout(c.timer);
    this.window = null;
    c.reject?.(err);
  }
}
