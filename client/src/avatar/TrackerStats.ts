/**
 * The face tracker's counters and recent timings since start(), and the FaceTrackerStats
 * snapshot built from them (FaceTracker.stats()).
 */
import type { FaceBackend } from './faceEngine.ts';

export interface FaceTrackerStats {
  backend: FaceBackend;
  /** motion-producing analyses per second over the last 2 s (face found or not) */
  fps: number;
  /** camera frames per second over the last 2 s (from rVFC presentedFrames where available) */
  cameraFps: number;
  /** detection time (tensor copy + Human), ms, over the last 120 analyses */
  detectMsP50: number;
  detectMsP95: number;
  /** share of analysed frames with a usable face since start() */
  faceFoundRatio: number;
  framesCaptured: number;
  framesAnalysed: number;
  /**
   * camera frames not analysed because detection was busy (or maxFps): callbacks skipped plus
   * frames the browser presented without a callback (main thread busy), from rVFC presentedFrames
   */
  framesDropped: number;
  framesWithFace: number;
  motionFramesEmitted: number;
  errors: number;
  calibrated: boolean;
  tensors: number;
}

/** Append `v`, keeping only the last `max` entries. */
function pushBounded<T>(arr: T[], v: T, max: number): void {
  arr.push(v);
  if (arr.length > max) arr.splice(0, arr.length - max);
}

export class TrackerStats {
  captured = 0;
  analysed = 0;
  dropped = 0;
  withFace = 0;
  emitted = 0;
  errors = 0;
  private readonly detectTimes: number[] = [];
  private readonly analysedAt: number[] = [];
  private readonly capturedAt: number[] = [];
  /** [performance.now(), rVFC presentedFrames] of recent camera frames */
  private readonly presentedAt: [number, number][] = [];
  private lastPresented: number | null = null;

  /** Back to zero (start()). */
  reset(): void {
    this.captured = this.analysed = this.dropped = this.withFace = this.emitted = this.errors = 0;
    this.detectTimes.length = this.analysedAt.length = this.capturedAt.length = this.presentedAt.length = 0;
    this.lastPresented = null;
  }

  /** A camera frame reached the capture callback at `now`, with rVFC's presentedFrames if any. */
  frameCaptured(now: number, presented: number | undefined): void {
    this.captured++;
    pushBounded(this.capturedAt, now, 240);
    if (typeof presented === 'number') {
      // frames presented while no callback could run (main thread busy) were never analysed
      if (this.lastPresented !== null && presented > this.lastPresented + 1) this.dropped += presented - this.lastPresented - 1;
      this.lastPresented = presented;
      pushBounded(this.presentedAt, [now, presented], 240);
    }
  }

  /** A detection finished after `detectMs`. */
  frameAnalysed(detectMs: number): void {
    this.analysed++;
    pushBounded(this.detectTimes, detectMs, 120);
    pushBounded(this.analysedAt, performance.now(), 240);
  }

  snapshot(backend: FaceBackend, calibrated: boolean, tensors: number): FaceTrackerStats {
    const now = performance.now();
    const rate = (ts: number[]) => {
      const recent = ts.filter((t) => t > now - 2000);
      if (recent.length < 2) return 0;
      return ((recent.length - 1) * 1000) / (recent[recent.length - 1]! - recent[0]!);
    };
    const pr = this.presentedAt.filter(([t]) => t > now - 2000);
    const cameraFps = pr.length >= 2 ? ((pr[pr.length - 1]![1] - pr[0]![1]) * 1000) / (pr[pr.length - 1]![0] - pr[0]![0]) : rate(this.capturedAt);
    const sorted = [...this.detectTimes].sort((a, b) => a - b);
    const pct = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);
    return {
      backend,
      fps: rate(this.analysedAt),
      cameraFps,
      detectMsP50: pct(0.5),
      detectMsP95: pct(0.95),
      faceFoundRatio: this.analysed ? this.withFace / this.analysed : 0,
      framesCaptured: this.captured,
      framesAnalysed: this.analysed,
      framesDropped: this.dropped,
      framesWithFace: this.withFace,
      motionFramesEmitted: this.emitted,
      errors: this.errors,
      calibrated,
      tensors,
    };
  }
}
