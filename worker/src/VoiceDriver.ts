/**
 * Voice driver of an avatar session: the owner's microphone PCM (any rate, mono or stereo, as
 * AudioTapReceiver or @roamhq/wrtc's RTCAudioSink delivers it) → streaming audio-to-motion model → expression (mouth,
 * brows, blinks come from the model package), plus idle head motion; and the same audio republished through a delay line so that
 * viewers hear it in sync with the rendered lips.
 *
 * Sync: the delay is measured, not assumed. For every rendered frame we know which audio instant its
 * expression came from and when that audio arrived; the video is late by (render time − arrival
 * time). The republished audio is delayed by a smoothed estimate of that lag (bounded 0–300 ms).
 */
import { EXPRESSION_SIZE } from '../../models/face/expression-code.ts';
import type { AvatarMotion } from './generator/generator.ts';

/** The streaming model (models/audio2motion): PCM in, expression frames out. */
export interface AudioToExpression {
  readonly lookaheadMs: number;
  /** Returns the frames completed by this chunk; `tMs` is the audio time (ms since the stream start) each frame describes. */
  push(pcm: Int16Array | Float32Array, sampleRate: number, channels: number): { expression: Float32Array; voiced: number; tMs: number }[];
  close(): void;
}

export interface AudioChunk {
  samples: Int16Array;
  sampleRate: number;
  channelCount: number;
  numberOfFrames: number;
}

const MAX_DELAY_MS = 300;

export class VoiceDriver {
  readonly #model: AudioToExpression;
  readonly #emit: (chunk: AudioChunk) => void;
  /** (audio time at the end of a chunk, wall time it arrived) */
  readonly #arrivals: { tMs: number; wallMs: number }[] = [];
  readonly #queue: { chunk: AudioChunk; wallMs: number }[] = [];
  readonly #expression = new Float32Array(EXPRESSION_SIZE);
  readonly #motion: AvatarMotion = { pose: { yaw: 0, pitch: 0, roll: 0, tx: 0, ty: 0, scale: 1 }, expression: this.#expression };
  #audioMs = 0;
  #latestTMs = -1;
  #voiced = 0;
  #delayMs: number;
  #pump: NodeJS.Timeout;
  #closed = false;
  framesIn = 0;
  lagSamples = 0;
  /** Called with the new expression whenever the model produced one (the session may render early). */
  onExpression: ((expression: Float32Array) => void) | undefined;

  constructor(model: AudioToExpression, emit: (chunk: AudioChunk) => void, initialDelayMs = model.lookaheadMs + 40) {
    this.#model = model;
    this.#emit = emit;
    this.#delayMs = Math.min(MAX_DELAY_MS, initialDelayMs);
    this.#pump = setInterval(() => this.#flush(), 5);
  }

  get delayMs(): number {
    return this.#delayMs;
  }

  get voiced(): number {
    return this.#voiced;
  }

  /** Audio chunks waiting in the delay line (diagnostics, tests). */
  get queuedChunks(): number {
    return this.#queue.length;
  }

  /** One chunk of the owner's microphone. Never throws on bad audio. */
  pushAudio(chunk: AudioChunk, wallMs = performance.now()): void {
    if (this.#closed) return;
    const { samples, sampleRate, channelCount } = chunk;
    if (!(sampleRate >= 8000 && sampleRate <= 96000) || !(channelCount >= 1 && channelCount <= 8) || samples.length === 0) return;
    this.framesIn++;
    this.#audioMs += (samples.length / channelCount / sampleRate) * 1000;
    this.#arrivals.push({ tMs: this.#audioMs, wallMs });
    if (this.#arrivals.length > 400) this.#arrivals.splice(0, this.#arrivals.length - 400);
    this.#queue.push({ chunk: { ...chunk, samples: samples.slice() }, wallMs });
    // Never more than 2 × the largest delay of audio waiting (protects memory if the pump stalls).
    if (this.#queue.length > (2 * MAX_DELAY_MS) / 10) this.#queue.shift();
    let frames: ReturnType<AudioToExpression['push']>;
    try {
      frames = this.#model.push(samples, sampleRate, channelCount);
    } catch {
      return;
    }
    const last = frames[frames.length - 1];
    if (!last) return;
    const m = last.expression;
    for (let i = 0; i < EXPRESSION_SIZE && i < m.length; i++) this.#expression[i] = Number.isFinite(m[i]!) ? Math.max(-1, Math.min(1, m[i]!)) : 0;
    this.#voiced = last.voiced;
    this.#latestTMs = last.tMs;
    try {
      this.onExpression?.(this.#expression);
    } catch {
      // a listener's failure is not the audio's
    }
  }

  /** Motion for the frame rendered now; also measures how late this video is versus its audio. */
  current(now = performance.now()): AvatarMotion {
    const t = now / 1000;
    const pose = this.#motion.pose;
    // Calm idle head motion, a little livelier while speaking.
    const amp = 1 + this.#voiced;
    pose.yaw = 0.025 * amp * Math.sin(t * 0.9);
    pose.pitch = 0.015 * amp * Math.sin(t * 1.3 + 1);
    pose.roll = 0.01 * Math.sin(t * 0.6 + 2);
    if (this.#latestTMs >= 0) {
      const arrival = this.#arrivals.find((a) => a.tMs >= this.#latestTMs);
      if (arrival) {
        const lag = now - arrival.wallMs;
        if (lag >= 0 && lag < 1000) {
          this.lagSamples++;
          this.#delayMs = Math.min(MAX_DELAY_MS, this.#delayMs + (lag - this.#delayMs) * 0.05);
        }
      }
    }
    return this.#motion;
  }

  #flush(): void {
    const now = performance.now();
    while (this.#queue.length > 0 && now - this.#queue[0]!.wallMs >= this.#delayMs) {
      const { chunk } = this.#queue.shift()!;
      try {
        this.#emit(chunk);
      } catch {
        // the audio source is gone
      }
    }
    // A long stall (DTX, network) must not build a backlog: drop what is older than twice the delay.
    while (this.#queue.length > 0 && now - this.#queue[0]!.wallMs > 2 * MAX_DELAY_MS) this.#queue.shift();
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pump);
    this.#queue.length = 0;
    this.#model.close();
  }
}
