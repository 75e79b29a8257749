/**
 * The face tracker's capture loop: camera frames of a <video> → Human detections, one at a time.
 *
 * requestVideoFrameCallback on a private <video> element (tfjs writes width/height attributes on
 * the elements it reads, so the caller's self-view element is never used directly). At each new
 * camera frame: if the previous detection is still running the frame is DROPPED (counted), never
 * queued; otherwise the frame is copied into a tensor synchronously inside the callback (so the
 * pixels are exactly the frame that the timestamp describes) and detection runs asynchronously.
 * captureMs = performance.timeOrigin + the frame's capture time (rVFC `captureTime` when the browser
 * gives it for camera frames, otherwise performance.now() in the callback), modulo 2^32.
 */
import type { Human, Result } from '@vladmandic/human';
import type { FaceEngine, TensorLike } from './faceEngine.ts';
import type { TrackerStats } from './TrackerStats.ts';

export interface TrackingLoopOptions {
  /** skip camera frames so that at most this many are analysed per second (default: camera rate) */
  maxFps?: number;
  /**
   * Called synchronously for every analysed frame, right after its pixels were copied, with the
   * private <video> showing exactly that frame; the return value comes back as MotionInfo.tag.
   * For frame ids, latency probes and tests (keep it cheap: it runs in the capture callback).
   */
  frameTag?: (video: HTMLVideoElement, meta: VideoFrameCallbackMetadata | null) => unknown;
}

/** A camera frame whose detection finished. */
export interface AnalysedFrame {
  /** the frame's capture time in the performance.now() timeline, ms */
  captureTime: number;
  /** ms spent in detection (tensor copy + Human) */
  detectMs: number;
  /** rVFC metadata of the frame (null without rVFC) */
  meta: VideoFrameCallbackMetadata | null;
  /** what options.frameTag returned for this frame */
  tag: unknown;
}

export interface TrackingLoopHandlers {
  /** a detection of a frame finished while the loop runs (throwing counts as a failure) */
  onResult(res: Result, frame: AnalysedFrame): void;
  /** copying or detecting a frame failed */
  onError(err: unknown): void;
}

export class TrackingLoop {
  private active = false;
  private busy = false;
  private rvfcHandle: number | null = null;
  private fallbackTimer: ReturnType<typeof setTimeout> | null = null;
  private lastAnalysedAt = -Infinity;
  private lastMediaTime = -1;

  constructor(
    private readonly video: HTMLVideoElement,
    private readonly engine: FaceEngine,
    private readonly opts: TrackingLoopOptions,
    private readonly stats: TrackerStats,
    private readonly handlers: TrackingLoopHandlers,
  ) {}

  get running(): boolean {
    return this.active;
  }

  start(): void {
    this.active = true;
    this.schedule();
  }

  stop(): void {
    this.active = false;
    if (this.rvfcHandle !== null && 'cancelVideoFrameCallback' in this.video) this.video.cancelVideoFrameCallback(this.rvfcHandle);
    this.rvfcHandle = null;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = null;
  }

  private schedule(): void {
    if (!this.active) return;
    if ('requestVideoFrameCallback' in this.video) {
      this.rvfcHandle = this.video.requestVideoFrameCallback((_now, meta) => this.onFrame(meta));
    } else {
      // no rVFC (old browsers): poll for a new frame at ~60 Hz using currentTime
      this.fallbackTimer = setTimeout(() => {
        const mt = this.video.currentTime;
        if (mt !== this.lastMediaTime && this.video.readyState >= 2) {
          this.lastMediaTime = mt;
          this.onFrame(null);
        } else {
          this.schedule();
        }
      }, 16);
    }
  }

  private onFrame(meta: VideoFrameCallbackMetadata | null): void {
    if (!this.active) return;
    this.schedule();
    const pnow = performance.now();
    this.stats.frameCaptured(pnow, meta?.presentedFrames);
    const maxFps = this.opts.maxFps;
    if (this.busy || (maxFps && pnow - this.lastAnalysedAt < 1000 / maxFps - 4)) {
      this.stats.dropped++;
      return;
    }
    const w = this.video.videoWidth, h = this.video.videoHeight;
    if (!w || !h || this.video.readyState < 2) return;
    // the frame's capture time: the camera's own timestamp when the browser reports it (in the
    // performance.now() timeline), else now; never a time in the future
    const ct = meta?.captureTime;
    const captureTime = typeof ct === 'number' && Number.isFinite(ct) && ct <= pnow + 1 && ct > pnow - 1000 ? ct : pnow;
    this.busy = true;
    this.lastAnalysedAt = pnow;
    const t0 = performance.now();
    let input: TensorLike;
    try {
      // synchronous copy of exactly this frame
      input = this.engine.tf.browser.fromPixels(this.video, 3);
    } catch (err) {
      this.busy = false;
      this.handlers.onError(err);
      return;
    }
    let tag: unknown;
    try {
      tag = this.opts.frameTag?.(this.video, meta);
    } catch (err) {
      console.error(err);
    }
    this.engine.human
      .detect(input as unknown as Parameters<Human['detect']>[0])
      .then((res) => {
        const detectMs = performance.now() - t0;
        this.stats.frameAnalysed(detectMs);
        if (!this.active) return;
        this.handlers.onResult(res, { captureTime, detectMs, meta, tag });
      })
      .catch((err) => this.handlers.onError(err))
      .finally(() => {
        this.engine.tf.dispose(input);
        this.busy = false;
      });
  }
}
