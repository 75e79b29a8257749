/**
 * Streaming audio → expression code (Node; onnxruntime-node, synchronous).
 *
 *   const a2m = await StreamingAudio2Motion.create();
 *   sink.ondata = ({ samples, sampleRate, channelCount }) => {
 *     for (const f of a2m.push(samples, sampleRate, channelCount)) send(f.expression, f.tMs);
 *   };
 *
 * One output per 10 ms of audio. `tMs` is the audio time the expression belongs to (window centre,
 * ms since the first pushed sample, strictly increasing by 10); it is returned once the audio up to
 * `tMs + lookaheadMs` has been pushed. Pipeline: downmix → resample to 16 kHz → log-mel frames →
 * the ONNX model on a window of 24 past + 4 future frames → mouth (jawOpen, mouthWide, smile) →
 * gated by speech activity (Silero VAD v5 and the model's own voiced output: silence closes the
 * mouth) → procedural blinks and energy-driven brows (optional) → Float32Array(12) in
 * models/face/expression-code.ts order, clamped to [−1, 1].
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXPR, EXPRESSION_SIZE } from '../face/expression-code.ts';
import {
  downmixToMono, FEATURE_DIM, FEATURE_LOOKAHEAD_MS, frameTimeMs, HOP, HOP_MS, MAX_RESAMPLER_LOOKAHEAD_MS, N_MELS, SAMPLE_RATE,
  silenceFeature, StreamingFeatureExtractor, StreamingResampler, WIN,
} from './features.ts';
import { ort, SyncSession } from './ort-sync.ts';
import { defaultSileroPath, SileroVad } from './vad.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_MODEL_PATH = path.join(here, 'audio2motion.onnx');

export interface ModelSidecar {
  name: string;
  version: number;
  inputs: { features: { shape: [string, number, number] } };
  contextFrames: { past: number; future: number };
  outputs: { mouth: string[]; viseme: string[]; voiced: string };
  [k: string]: unknown;
}

export type GateMode = 'both' | 'silero' | 'model' | 'none';

export interface Audio2MotionOptions {
  /** ONNX file (default: models/audio2motion/audio2motion.onnx); its sidecar is the same path with .json */
  modelPath?: string;
  /**
   * What closes the mouth outside speech (default 'both'): Silero VAD v5 and the model's own voiced
   * output must both agree that it is speech. Falls back to 'model' when the Silero file is missing.
   */
  gate?: GateMode;
  sileroPath?: string;
  /** procedural blinks (default true): every 2–6 s, seeded */
  blinks?: boolean;
  /** brows rise a little on loud/emphasised speech (default true) */
  brows?: boolean;
  /** jawOpen/mouthWide/smile gain (default 1) */
  mouthGain?: number;
  /** seed of the blink timing (default 1) */
  seed?: number;
}

export interface MotionOutput {
  /** 12 coefficients, expression-code order, each in [−1, 1] */
  expression: Float32Array;
  /** speech activity 0..1 after gating */
  voiced: number;
  /** most likely viseme (index into the sidecar's outputs.viseme) */
  viseme: number;
  /** audio time of this frame, ms since the first pushed sample */
  tMs: number;
}

const MAX_BATCH = 64;
const ZEROS = new Float32Array(HOP * MAX_BATCH);

function clamp1(v: number): number {
  if (!(v === v)) return 0;
  return v > 1 ? 1 : v < -1 ? -1 : v;
}

export class StreamingAudio2Motion {
  /** total look-ahead, ms: worst-case resampler (8 kHz input) + half window + future frames */
  readonly lookaheadMs: number;
  readonly sidecar: ModelSidecar;
  readonly gate: GateMode;
  private readonly session: SyncSession;
  private readonly vad: SileroVad | null;
  private readonly past: number;
  private readonly future: number;
  private readonly W: number;
  private readonly opts: Required<Pick<Audio2MotionOptions, 'blinks' | 'brows' | 'mouthGain' | 'seed'>>;
  private resampler: StreamingResampler | null = null;
  private fx = new StreamingFeatureExtractor();
  private mono: Float32Array = new Float32Array(4096);
  /** feature history: frame (histBase + i) at row i */
  private hist: Float32Array;
  private histRows = 0;
  private histBase = 0;
  /** next frame to predict */
  private nextOut = 0;
  /** frames extracted so far */
  private framesIn = 0;
  private readonly input: Float32Array;
  private readonly silence = silenceFeature();
  // post-processing state
  private gateS = 0;
  private gateM = 0;
  private browEnv = 0;
  private eMean = -7;
  private eVar = 4;
  private blinkNext = 0;
  private blinkStart = -1e9;
  private rngState: number;
  private closed = false;
  /** chunks ignored because of an unusable sample rate */
  droppedChunks = 0;

  private constructor(session: SyncSession, sidecar: ModelSidecar, vad: SileroVad | null, gate: GateMode, o: Audio2MotionOptions) {
    this.session = session;
    this.sidecar = sidecar;
    this.vad = vad;
    this.gate = gate;
    this.past = sidecar.contextFrames.past;
    this.future = sidecar.contextFrames.future;
    this.W = this.past + 1 + this.future;
    this.lookaheadMs = MAX_RESAMPLER_LOOKAHEAD_MS + FEATURE_LOOKAHEAD_MS + this.future * HOP_MS;
    this.opts = { blinks: o.blinks ?? true, brows: o.brows ?? true, mouthGain: o.mouthGain ?? 1, seed: o.seed ?? 1 };
    this.rngState = (this.opts.seed * 2654435761) >>> 0 || 1;
    this.hist = new Float32Array((this.W + MAX_BATCH + 8) * FEATURE_DIM);
    this.input = new Float32Array(MAX_BATCH * this.W * FEATURE_DIM);
    this.resetHistory();
    this.blinkNext = 1500 + 3000 * this.rand();
  }

  static async create(opts: Audio2MotionOptions = {}): Promise<StreamingAudio2Motion> {
    const modelPath = opts.modelPath ?? DEFAULT_MODEL_PATH;
    const sidecarPath = modelPath.replace(/\.onnx$/, '') + '.json';
    const sidecar = JSON.parse(await fs.promises.readFile(sidecarPath, 'utf8')) as ModelSidecar;
    const session = new SyncSession(modelPath);
    let gate: GateMode = opts.gate ?? 'both';
    let vad: SileroVad | null = null;
    if (gate === 'both' || gate === 'silero') {
      const sp = opts.sileroPath ?? defaultSileroPath();
      if (sp) vad = new SileroVad(sp);
      else gate = 'model';
    }
    return new StreamingAudio2Motion(session, sidecar, vad, gate, opts);
  }

  private rand(): number {
    let t = (this.rngState += 0x6d2b79f5) >>> 0;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  private resetHistory(): void {
    this.histRows = this.past;
    this.histBase = -this.past;
    for (let i = 0; i < this.past; i++) this.hist.set(this.silence, i * FEATURE_DIM);
  }

  /** Starts a new stream (time back to 0). */
  reset(): void {
    this.resampler = null;
    this.fx = new StreamingFeatureExtractor();
    this.resetHistory();
    this.nextOut = 0;
    this.framesIn = 0;
    this.vad?.reset();
    this.gateS = this.gateM = this.browEnv = 0;
    this.blinkStart = -1e9;
    this.blinkNext = 1500 + 3000 * this.rand();
  }

  /**
   * Feeds PCM (interleaved; Int16 or Float32 in [−1, 1]; any rate 8–48 kHz; the rate may change
   * between calls) and returns the frames it completed, oldest first. Never throws on bad samples
   * (NaN/Inf → 0, beyond full scale → clipped); an unusable sample rate drops the chunk.
   */
  push(pcm: Float32Array | Int16Array, sampleRate: number, channels = 1): MotionOutput[] {
    if (this.closed || !pcm || pcm.length === 0) return [];
    const rate = Math.round(sampleRate);
    if (!(rate >= 4000 && rate <= 192000)) {
      this.droppedChunks++;
      return [];
    }
    const mono = downmixToMono(pcm, channels, this.mono);
    if (mono.buffer !== this.mono.buffer) this.mono = new Float32Array(mono.buffer);
    if (!this.resampler || this.resampler.inRate !== rate) {
      const out: MotionOutput[] = [];
      if (this.resampler) this.feed16k(this.resampler.flush(), out);
      this.resampler = new StreamingResampler(rate);
      return this.feed16k(this.resampler.push(mono), out);
    }
    return this.feed16k(this.resampler.push(mono), []);
  }

  /** A gap with no audio (DTX, lost packets): advances time with digital silence. */
  pushSilence(ms: number): MotionOutput[] {
    if (this.closed || !(ms > 0)) return [];
    const out: MotionOutput[] = [];
    if (this.resampler) {
      this.feed16k(this.resampler.flush(), out);
      this.resampler = null;
    }
    let left = Math.round((Math.min(ms, 3_600_000) / 1000) * SAMPLE_RATE);
    while (left > 0) {
      const n = Math.min(left, ZEROS.length);
      this.feed16k(ZEROS.subarray(0, n), out);
      left -= n;
    }
    return out;
  }

  private feed16k(x: Float32Array, out: MotionOutput[]): MotionOutput[] {
    if (x.length === 0) return out;
    // process in slices so that history and batch buffers stay bounded for any chunk size
    const slice = HOP * MAX_BATCH;
    for (let o = 0; o < x.length; o += slice) {
      const part = x.subarray(o, Math.min(x.length, o + slice));
      this.vad?.push(part);
      const frames = this.fx.push(part);
      const n = frames.length / FEATURE_DIM;
      this.appendFrames(frames, n);
      this.predict(out);
    }
    return out;
  }

  private appendFrames(frames: Float32Array, n: number): void {
    if (n === 0) return;
    const need = this.histRows + n;
    const cap = this.hist.length / FEATURE_DIM;
    if (need > cap) {
      // keep the rows still needed: from frame nextOut − past
      const keepFrom = this.nextOut - this.past - this.histBase;
      const keep = this.histRows - keepFrom;
      this.hist.copyWithin(0, keepFrom * FEATURE_DIM, this.histRows * FEATURE_DIM);
      this.histRows = keep;
      this.histBase += keepFrom;
      if (this.histRows + n > cap) {
        const nh = new Float32Array((this.histRows + n + 8) * FEATURE_DIM);
        nh.set(this.hist.subarray(0, this.histRows * FEATURE_DIM));
        this.hist = nh;
      }
    }
    this.hist.set(frames.subarray(0, n * FEATURE_DIM), this.histRows * FEATURE_DIM);
    this.histRows += n;
    this.framesIn += n;
  }

  private predict(out: MotionOutput[]): void {
    const { W, past, future } = this;
    const F = FEATURE_DIM;
    while (this.nextOut + future < this.framesIn) {
      const n = Math.min(MAX_BATCH, this.framesIn - future - this.nextOut);
      for (let j = 0; j < n; j++) {
        const row = this.nextOut + j - past - this.histBase;
        this.input.set(this.hist.subarray(row * F, (row + W) * F), j * W * F);
      }
      const t = new ort.Tensor('float32', this.input.subarray(0, n * W * F), [n, W, F]);
      const res = this.session.run({ features: t });
      const mouth = res['mouth'].data as Float32Array;
      const vis = res['viseme'].data as Float32Array;
      const voiced = res['voiced'].data as Float32Array;
      const nv = vis.length / n;
      for (let j = 0; j < n; j++) {
        const f = this.nextOut + j;
        const row = f - this.histBase;
        const energy = this.hist[row * F + N_MELS];
        let vi = 0;
        for (let k = 1; k < nv; k++) if (vis[j * nv + k] > vis[j * nv + vi]) vi = k;
        out.push(this.post(f, mouth[j * 3], mouth[j * 3 + 1], mouth[j * 3 + 2], voiced[j], vi, energy));
      }
      this.nextOut += n;
    }
  }

  /** gating, brows, blinks for frame f */
  private post(f: number, jaw: number, wide: number, smile: number, pVoiced: number, vi: number, energy: number): MotionOutput {
    const tMs = frameTimeMs(f);
    // Silero: the last 32 ms chunk available when this frame is emitted (no extra look-ahead)
    const availSample = (f + this.future) * HOP + WIN;
    const pS = this.vad ? this.vad.probAt(availSample) : 1;
    const pM = Number.isFinite(pVoiced) ? pVoiced : 0;
    // soft gates: fast attack (≈ 20 ms), slower release (≈ 80 ms)
    const tgtS = Math.min(1, Math.max(0, (pS - 0.15) / 0.35));
    const tgtM = Math.min(1, Math.max(0, (pM - 0.2) / 0.4));
    this.gateS += (tgtS - this.gateS) * (tgtS > this.gateS ? 0.4 : 0.12);
    this.gateM += (tgtM - this.gateM) * (tgtM > this.gateM ? 0.4 : 0.12);
    let g: number;
    switch (this.gate) {
      case 'both': g = Math.min(this.gateS, this.gateM); break;
      case 'silero': g = this.gateS; break;
      case 'model': g = this.gateM; break;
      default: g = 1;
    }
    const e = new Float32Array(EXPRESSION_SIZE);
    const k = this.opts.mouthGain * g;
    e[EXPR.jawOpen] = clamp1(jaw * k);
    e[EXPR.mouthWide] = clamp1(wide * k);
    e[EXPR.smile] = clamp1(smile * k);
    if (this.opts.brows) {
      // loudness relative to this speaker's running speech level (only adapted while speaking)
      const en = Number.isFinite(energy) ? energy : -20;
      if (g > 0.5) {
        const d = en - this.eMean;
        this.eMean += 0.005 * d;
        this.eVar += 0.005 * (d * d - this.eVar);
      }
      const z = (en - this.eMean) / Math.sqrt(Math.max(0.25, this.eVar));
      const target = g > 0.5 ? Math.min(0.35, Math.max(0, 0.25 * (z - 0.8))) : 0;
      this.browEnv += (target - this.browEnv) * (target > this.browEnv ? 0.15 : 0.04);
      e[EXPR.browL] = clamp1(this.browEnv);
      e[EXPR.browR] = clamp1(this.browEnv * 0.9);
    }
    if (this.opts.blinks) {
      if (tMs >= this.blinkNext) {
        this.blinkStart = tMs;
        this.blinkNext = tMs + 2000 + 4000 * this.rand();
      }
      const dt = tMs - this.blinkStart;
      // 60 ms closing, 30 ms closed, 110 ms opening
      const b = dt < 0 || dt > 200 ? 0 : dt < 60 ? dt / 60 : dt < 90 ? 1 : 1 - (dt - 90) / 110;
      e[EXPR.blinkL] = b;
      e[EXPR.blinkR] = b;
    }
    return { expression: e, voiced: g, viseme: vi, tMs };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.session.close();
    this.vad?.close();
  }
}

/** Convenience for offline use (tests, evaluation): the whole signal through a fresh stream. */
export async function motionForSignal(pcm: Float32Array | Int16Array, sampleRate: number, opts: Audio2MotionOptions = {}): Promise<MotionOutput[]> {
  const a = await StreamingAudio2Motion.create(opts);
  try {
    const out = a.push(pcm, sampleRate, 1);
    // drain: enough digital silence for the look-ahead
    out.push(...a.pushSilence(Math.ceil(a.lookaheadMs) + 20));
    return out;
  } finally {
    a.close();
  }
}

