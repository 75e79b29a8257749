/**
 * Streaming audio front end for audio → motion (pure TypeScript: no Node or DOM imports).
 *
 *   PCM (any rate 8–48 kHz, mono/stereo, Int16 or Float32, interleaved)
 *     → `downmixToMono` (sanitises NaN/±Inf to 0, clamps to [−1, 1])
 *     → `StreamingResampler` (windowed-sinc, to 16 kHz)
 *     → `StreamingFeatureExtractor` (25 ms Hann window, 10 ms hop: 40 log-mel bands + log energy)
 *
 * Every stage is incremental: `push()` returns only what the new samples completed, and the result
 * is bit-identical to processing the whole signal at once (`resampleOffline`, `extractOffline`)
 * whatever the chunking, because each output sample / frame is computed by the same code from the
 * same input samples.
 *
 * Timing (exact):
 *   - resampler: output sample n sits at input time n·inRate/16000; it needs input up to
 *     `resamplerLookaheadMs(inRate)` later (half the kernel: 8 zero crossings of the anti-alias
 *     filter; 0 ms at 16 kHz where it is bypassed, 0.53 ms at 48 kHz, 1.06 ms at 8 kHz, the worst case).
 *   - features: frame t covers 16 kHz samples [160·t, 160·t + 400); its time stamp is the window
 *     centre, `frameTimeMs(t)` = 10·t + 12.5 ms; it is complete once sample 160·t + 399 has arrived,
 *     i.e. 12.5 ms after its time stamp (`FEATURE_LOOKAHEAD_MS`).
 *   The model (audio2motion.json `contextFrames.future`) adds its own look-ahead on top; the total is
 *   `pipelineLookaheadMs()`.
 */

export const SAMPLE_RATE = 16000;
export const HOP = 160;
export const WIN = 400;
export const NFFT = 512;
export const N_MELS = 40;
export const FMIN = 60;
export const FMAX = 7600;
export const PREEMPHASIS = 0.97;
/** added to each mel band energy before the log (≈ −90 dBFS white noise) */
export const MEL_FLOOR = 1e-7;
/** added to the frame mean square before the log */
export const ENERGY_FLOOR = 1e-9;
/** 40 log-mel bands + 1 log energy */
export const FEATURE_DIM = N_MELS + 1;
export const HOP_MS = (HOP / SAMPLE_RATE) * 1000;
export const WIN_MS = (WIN / SAMPLE_RATE) * 1000;
/** a frame is available this long after its time stamp (window centre) */
export const FEATURE_LOOKAHEAD_MS = WIN_MS / 2;

/** zero crossings of the resampling kernel on each side */
const RS_ZEROS = 8;
/** passband edge as a fraction of the lower Nyquist frequency */
const RS_ROLLOFF = 0.94;
const RS_TABLE_RES = 512;
const RS_KAISER_BETA = 8.0;

export const FEATURE_CONFIG = {
  sampleRate: SAMPLE_RATE,
  hop: HOP,
  win: WIN,
  nfft: NFFT,
  nMels: N_MELS,
  fmin: FMIN,
  fmax: FMAX,
  melScale: 'htk',
  window: 'hann (periodic)',
  preemphasis: PREEMPHASIS,
  melFloor: MEL_FLOOR,
  energyFloor: ENERGY_FLOOR,
  featureDim: FEATURE_DIM,
  layout: '40 × ln(mel power + melFloor) (low → high), then ln(mean square of the raw window + energyFloor)',
  frameTime: 't·10 ms + 12.5 ms (window centre)',
  resampler: { kind: 'kaiser-windowed sinc', zeros: RS_ZEROS, rolloff: RS_ROLLOFF, beta: RS_KAISER_BETA },
} as const;

export function frameTimeMs(t: number): number {
  return t * HOP_MS + WIN_MS / 2;
}

/** Look-ahead of the resampler for a given input rate, in ms (0 at 16 kHz: bypassed). */
export function resamplerLookaheadMs(inRate: number): number {
  if (inRate === SAMPLE_RATE) return 0;
  const fc = Math.min(1, SAMPLE_RATE / inRate) * RS_ROLLOFF;
  return (RS_ZEROS / fc / inRate) * 1000;
}

/** Worst case over 8–48 kHz input (8 kHz, the narrowest kernel in time is the widest in samples). */
export const MAX_RESAMPLER_LOOKAHEAD_MS = Math.max(...[8000, 11025, 12000, 22050, 24000, 32000, 44100, 48000].map(resamplerLookaheadMs));

/** Total look-ahead of the audio → motion pipeline for a model with `futureFrames` frames of right context. */
export function pipelineLookaheadMs(futureFrames: number, inRate: number = 8000): number {
  return resamplerLookaheadMs(inRate) + FEATURE_LOOKAHEAD_MS + futureFrames * HOP_MS;
}

function sanitize(v: number): number {
  // NaN / ±Inf → 0, anything beyond full scale is clipping
  if (!(v === v) || v === Infinity || v === -Infinity) return 0;
  return v > 1 ? 1 : v < -1 ? -1 : v;
}

/**
 * Interleaved PCM → mono float in [−1, 1] (channel average). Int16 is scaled by 1/32768. Writes into
 * `out` (grown only when too small) and returns the filled view.
 */
export function downmixToMono(pcm: Float32Array | Int16Array, channels: number, out?: Float32Array): Float32Array {
  const ch = Math.max(1, Math.floor(channels) || 1);
  const n = Math.floor(pcm.length / ch);
  const dst = out && out.length >= n ? out : new Float32Array(n);
  const scale = pcm instanceof Int16Array ? 1 / 32768 / ch : 1 / ch;
  if (pcm instanceof Int16Array) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < ch; c++) s += pcm[i * ch + c];
      dst[i] = s * scale;
    }
  } else {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < ch; c++) s += sanitize(pcm[i * ch + c]);
      dst[i] = s * scale;
    }
  }
  return dst.subarray(0, n);
}

let kernelTable: Float32Array | null = null;
function besselI0(x: number): number {
  let s = 1, t = 1;
  for (let k = 1; k < 50; k++) {
    t *= (x / (2 * k)) * (x / (2 * k));
    s += t;
    if (t < 1e-12 * s) break;
  }
  return s;
}
/** g(u) = sinc(u)·kaiser(u / zeros), u ∈ [0, zeros], sampled every 1/RS_TABLE_RES (+2 guard entries) */
function getKernelTable(): Float32Array {
  if (kernelTable) return kernelTable;
  const n = RS_ZEROS * RS_TABLE_RES + 2;
  const t = new Float32Array(n);
  const i0b = besselI0(RS_KAISER_BETA);
  for (let i = 0; i < n; i++) {
    const u = i / RS_TABLE_RES;
    if (u >= RS_ZEROS) { t[i] = 0; continue; }
    const sinc = u === 0 ? 1 : Math.sin(Math.PI * u) / (Math.PI * u);
    const r = u / RS_ZEROS;
    t[i] = sinc * (besselI0(RS_KAISER_BETA * Math.sqrt(Math.max(0, 1 - r * r))) / i0b);
  }
  kernelTable = t;
  return t;
}

/**
 * Streaming band-limited resampler (mono float) from any rate to 16 kHz (or `outRate`).
 * Output sample n is at input position n·inRate/outRate (exact rational arithmetic, no drift).
 * `push` returns a view of an internal buffer that is valid until the next call.
 */
export class StreamingResampler {
  readonly inRate: number;
  readonly outRate: number;
  /** look-ahead in ms (see `resamplerLookaheadMs`) */
  readonly lookaheadMs: number;
  private readonly bypass: boolean;
  private readonly fc: number;
  private readonly halfWidth: number;
  private readonly table: Float32Array;
  /** input history; buf[0] is absolute input sample `bufStart` */
  private buf = new Float32Array(4096);
  private bufLen = 0;
  private bufStart = 0;
  /** absolute index of the first input sample of the current 1-second cycle */
  private cycleBase = 0;
  /** output index within the cycle (0 ≤ phase < outRate) */
  private phase = 0;
  private out = new Float32Array(1024);
  /** samples emitted so far */
  emitted = 0;

  constructor(inRate: number, outRate: number = SAMPLE_RATE) {
    if (!(Number.isInteger(inRate) && inRate >= 1000 && inRate <= 384000)) throw new RangeError(`unsupported sample rate ${inRate}`);
    this.inRate = inRate;
    this.outRate = outRate;
    this.bypass = inRate === outRate;
    this.fc = Math.min(1, outRate / inRate) * RS_ROLLOFF;
    this.halfWidth = RS_ZEROS / this.fc;
    this.table = getKernelTable();
    this.lookaheadMs = this.bypass ? 0 : (this.halfWidth / inRate) * 1000;
  }

  /** number of input samples received */
  get received(): number {
    return this.bufStart + this.bufLen;
  }

  push(x: Float32Array): Float32Array {
    if (this.bypass) {
      this.emitted += x.length;
      if (this.out.length < x.length) this.out = new Float32Array(x.length);
      this.out.set(x);
      return this.out.subarray(0, x.length);
    }
    // append
    if (this.bufLen + x.length > this.buf.length) {
      const nb = new Float32Array(Math.max(this.buf.length * 2, this.bufLen + x.length));
      nb.set(this.buf.subarray(0, this.bufLen));
      this.buf = nb;
    }
    this.buf.set(x, this.bufLen);
    this.bufLen += x.length;
    const { inRate, outRate, halfWidth, fc, table } = this;
    const end = this.bufStart + this.bufLen; // one past the last absolute input index
    const maxOut = Math.ceil(((x.length + 2) * outRate) / inRate) + 2;
    if (this.out.length < maxOut) this.out = new Float32Array(maxOut);
    let n = 0;
    for (;;) {
      const num = this.phase * inRate; // position = cycleBase + num / outRate
      const ip = Math.floor(num / outRate);
      const frac = (num - ip * outRate) / outRate;
      const center = this.cycleBase + ip; // integer part of the position
      const pos = center + frac;
      const kHi = Math.floor(pos + halfWidth);
      if (kHi >= end) break;
      const kLo = Math.ceil(pos - halfWidth);
      let acc = 0;
      for (let k = kLo; k <= kHi; k++) {
        const bi = k - this.bufStart;
        if (bi < 0) continue; // before the stream start: zeros
        const u = Math.abs(pos - k) * fc * RS_TABLE_RES;
        const i = u | 0;
        const w = table[i] + (u - i) * (table[i + 1] - table[i]);
        acc += this.buf[bi] * w;
      }
      if (n >= this.out.length) {
        const no = new Float32Array(this.out.length * 2);
        no.set(this.out);
        this.out = no;
      }
      this.out[n++] = acc * fc;
      this.phase++;
      if (this.phase === outRate) {
        this.phase = 0;
        this.cycleBase += inRate;
      }
    }
    this.emitted += n;
    // drop input no longer needed
    const num = this.phase * inRate;
    const nextPos = this.cycleBase + num / outRate;
    const keepFrom = Math.max(this.bufStart, Math.floor(nextPos - halfWidth) - 1);
    const drop = keepFrom - this.bufStart;
    if (drop > 0) {
      this.buf.copyWithin(0, drop, this.bufLen);
      this.bufLen -= drop;
      this.bufStart = keepFrom;
    }
    return this.out.subarray(0, n);
  }

  /** Pads with zeros so that every output sample whose position lies inside the input is produced. */
  flush(): Float32Array {
    if (this.bypass) return this.out.subarray(0, 0);
    const total = this.received;
    const need = Math.max(0, Math.floor(((total - 1) * this.outRate) / this.inRate) + 1 - this.emitted);
    if (need === 0) return this.out.subarray(0, 0);
    const pad = new Float32Array(Math.ceil(this.halfWidth) + 2);
    const got = this.push(pad);
    return got.subarray(0, Math.min(need, got.length));
  }
}

/** Whole-signal resampling (same code as streaming, then `flush`). */
export function resampleOffline(x: Float32Array, inRate: number, outRate: number = SAMPLE_RATE): Float32Array {
  if (inRate === outRate) return x.slice();
  const r = new StreamingResampler(inRate, outRate);
  const a = r.push(x).slice();
  const b = r.flush();
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// ---------------------------------------------------------------- log-mel features

function hzToMel(f: number): number {
  return 2595 * Math.log10(1 + f / 700);
}
function melToHz(m: number): number {
  return 700 * (10 ** (m / 2595) - 1);
}

interface MelBank {
  start: Int32Array;
  weights: Float32Array[];
}
let melBank: MelBank | null = null;
function getMelBank(): MelBank {
  if (melBank) return melBank;
  const nb = NFFT / 2 + 1;
  const m0 = hzToMel(FMIN), m1 = hzToMel(FMAX);
  const pts: number[] = [];
  for (let i = 0; i < N_MELS + 2; i++) pts.push(melToHz(m0 + ((m1 - m0) * i) / (N_MELS + 1)));
  const start = new Int32Array(N_MELS);
  const weights: Float32Array[] = [];
  for (let b = 0; b < N_MELS; b++) {
    const lo = pts[b], c = pts[b + 1], hi = pts[b + 2];
    const ws: number[] = [];
    let first = -1;
    for (let k = 0; k < nb; k++) {
      const f = (k * SAMPLE_RATE) / NFFT;
      let w = 0;
      if (f > lo && f <= c) w = (f - lo) / (c - lo);
      else if (f > c && f < hi) w = (hi - f) / (hi - c);
      if (w > 0) {
        if (first < 0) first = k;
        ws.length = k - first;
        ws.push(w);
      }
    }
    if (first < 0) { // too narrow for the FFT grid: take the nearest bin
      first = Math.round((c * NFFT) / SAMPLE_RATE);
      ws.push(1);
    }
    start[b] = first;
    weights.push(Float32Array.from(ws, (v) => v ?? 0));
  }
  melBank = { start, weights };
  return melBank;
}

let fftTables: { cos: Float64Array; sin: Float64Array; rev: Uint16Array; window: Float64Array } | null = null;
function getFftTables() {
  if (fftTables) return fftTables;
  const n = NFFT;
  const cos = new Float64Array(n / 2), sin = new Float64Array(n / 2);
  for (let i = 0; i < n / 2; i++) {
    cos[i] = Math.cos((2 * Math.PI * i) / n);
    sin[i] = -Math.sin((2 * Math.PI * i) / n);
  }
  const bits = Math.log2(n);
  const rev = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
    rev[i] = r;
  }
  const window = new Float64Array(WIN);
  for (let i = 0; i < WIN; i++) window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / WIN);
  fftTables = { cos, sin, rev, window };
  return fftTables;
}

/** In-place radix-2 FFT of size NFFT. */
function fft(re: Float64Array, im: Float64Array): void {
  const { cos, sin, rev } = getFftTables();
  const n = NFFT;
  for (let i = 0; i < n; i++) {
    const j = rev[i];
    if (j > i) {
      let t = re[i]; re[i] = re[j]; re[j] = t;
      t = im[i]; im[i] = im[j]; im[j] = t;
    }
  }
  for (let size = 2; size <= n; size <<= 1) {
    const half = size >> 1, step = n / size;
    for (let s = 0; s < n; s += size) {
      for (let k = 0; k < half; k++) {
        const wr = cos[k * step], wi = sin[k * step];
        const a = s + k, b = a + half;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr; im[b] = im[a] - xi;
        re[a] += xr; im[a] += xi;
      }
    }
  }
}

/**
 * Incremental 16 kHz → feature frames. `push(samples)` returns the frames the new samples completed,
 * as a flat [frames × FEATURE_DIM] view of an internal buffer (valid until the next call).
 */
export class StreamingFeatureExtractor {
  /** raw 16 kHz samples; buf[0] is absolute sample `bufStart`; one extra sample of history for pre-emphasis */
  private buf = new Float32Array(WIN * 4);
  private bufLen = 0;
  private bufStart = 0;
  private readonly re = new Float64Array(NFFT);
  private readonly im = new Float64Array(NFFT);
  private out = new Float32Array(FEATURE_DIM * 16);
  /** index of the next frame to produce */
  nextFrame = 0;

  /** time stamp (ms, window centre) of frame t */
  static frameTimeMs(t: number): number {
    return frameTimeMs(t);
  }

  push(x: Float32Array): Float32Array {
    let produced = 0;
    let off = 0;
    // process in pieces so the buffer stays small whatever the chunk size
    while (off < x.length || off === 0) {
      const room = this.buf.length - this.bufLen;
      const take = Math.min(room, x.length - off);
      this.buf.set(x.subarray(off, off + take), this.bufLen);
      this.bufLen += take;
      off += take;
      produced = this.drain(produced);
      if (off >= x.length) break;
    }
    return this.out.subarray(0, produced * FEATURE_DIM);
  }

  private drain(produced: number): number {
    for (;;) {
      const s0 = this.nextFrame * HOP; // absolute start sample
      if (s0 + WIN > this.bufStart + this.bufLen) break;
      if ((produced + 1) * FEATURE_DIM > this.out.length) {
        const no = new Float32Array(this.out.length * 2);
        no.set(this.out);
        this.out = no;
      }
      this.computeFrame(s0 - this.bufStart, this.out, produced * FEATURE_DIM);
      produced++;
      this.nextFrame++;
    }
    // keep from one sample before the next frame start
    const keepFrom = Math.max(this.bufStart, this.nextFrame * HOP - 1);
    const drop = keepFrom - this.bufStart;
    if (drop > 0) {
      this.buf.copyWithin(0, drop, this.bufLen);
      this.bufLen -= drop;
      this.bufStart = keepFrom;
    }
    return produced;
  }

  private computeFrame(i0: number, out: Float32Array, o: number): void {
    const { window } = getFftTables();
    const { re, im, buf } = this;
    let ms = 0;
    for (let i = 0; i < WIN; i++) {
      const v = buf[i0 + i];
      const prev = i0 + i - 1 >= 0 ? buf[i0 + i - 1] : 0;
      ms += v * v;
      re[i] = (v - PREEMPHASIS * prev) * window[i];
      im[i] = 0;
    }
    for (let i = WIN; i < NFFT; i++) { re[i] = 0; im[i] = 0; }
    fft(re, im);
    const { start, weights } = getMelBank();
    for (let b = 0; b < N_MELS; b++) {
      const w = weights[b], s = start[b];
      let e = 0;
      for (let k = 0; k < w.length; k++) {
        const r = re[s + k], j = im[s + k];
        e += w[k] * (r * r + j * j);
      }
      out[o + b] = Math.log(e + MEL_FLOOR);
    }
    out[o + N_MELS] = Math.log(ms / WIN + ENERGY_FLOOR);
  }
}

/** Whole-signal features (16 kHz mono), identical to streaming. Flat [frames × FEATURE_DIM]. */
export function extractOffline(samples16k: Float32Array): Float32Array {
  const fx = new StreamingFeatureExtractor();
  return fx.push(samples16k).slice();
}

/** The feature vector of digital silence (used to pad the model's past context at stream start). */
export function silenceFeature(): Float32Array {
  const f = new Float32Array(FEATURE_DIM);
  for (let b = 0; b < N_MELS; b++) f[b] = Math.log(MEL_FLOOR);
  f[N_MELS] = Math.log(ENERGY_FLOOR);
  return f;
}
