/**
 * Seeded audio augmentation for training data (pure TypeScript, 16 kHz mono float):
 * random EQ/tilt, room reverb (Schroeder/Freeverb-style comb + all-pass network with random size
 * and damping), additive noise (white, pink, brown, hum, fan, clicks/tones) at a random SNR, gain,
 * occasional hard clipping, band-limiting through an 8/11.025/12 kHz round trip (the same resampler
 * as inference: narrow-band callers), DTX-like digital-silence holes in pauses, int16 quantisation.
 */
import { StreamingResampler, SAMPLE_RATE } from '../features.ts';
import { pick } from './corpus.ts';

export type Rng = () => number;

function gauss(r: Rng): number {
  const u = Math.max(1e-12, r()), v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function rms(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s / Math.max(1, x.length));
}

/** speech power over the frames that are not near-silent (so long pauses do not dilute the SNR) */
function activeRms(x: Float32Array): number {
  const hop = 160;
  const es: number[] = [];
  for (let i = 0; i + hop <= x.length; i += hop) {
    let s = 0;
    for (let k = i; k < i + hop; k++) s += x[k] * x[k];
    es.push(s / hop);
  }
  if (es.length === 0) return rms(x);
  const sorted = [...es].sort((a, b) => b - a);
  const top = sorted.slice(0, Math.max(1, Math.floor(sorted.length * 0.5)));
  return Math.sqrt(top.reduce((a, b) => a + b, 0) / top.length) + 1e-9;
}

export function makeNoise(r: Rng, n: number, kind?: string): Float32Array {
  const k = kind ?? pick(r, ['white', 'pink', 'pink', 'brown', 'hum', 'fan', 'fan', 'clicks', 'tones']);
  const out = new Float32Array(n);
  if (k === 'white') for (let i = 0; i < n; i++) out[i] = gauss(r);
  else if (k === 'pink') {
    let b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0, b6 = 0;
    for (let i = 0; i < n; i++) { // Paul Kellet's filter
      const w = gauss(r);
      b0 = 0.99886 * b0 + w * 0.0555179; b1 = 0.99332 * b1 + w * 0.0750759; b2 = 0.969 * b2 + w * 0.153852;
      b3 = 0.8665 * b3 + w * 0.3104856; b4 = 0.55 * b4 + w * 0.5329522; b5 = -0.7616 * b5 - w * 0.016898;
      out[i] = b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362;
      b6 = w * 0.115926;
    }
  } else if (k === 'brown') {
    let y = 0;
    for (let i = 0; i < n; i++) { y = 0.995 * y + 0.1 * gauss(r); out[i] = y; }
  } else if (k === 'hum') {
    const f0 = r() < 0.5 ? 50 : 60;
    const amps = [1, 0.5 * r(), 0.3 * r(), 0.2 * r(), 0.1 * r()];
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let h = 0; h < amps.length; h++) s += amps[h] * Math.sin((2 * Math.PI * f0 * (h + 1) * i) / SAMPLE_RATE);
      out[i] = s + 0.05 * gauss(r);
    }
  } else if (k === 'fan') {
    let y = 0;
    const a = 0.8 + 0.18 * r();
    for (let i = 0; i < n; i++) { y = a * y + (1 - a) * gauss(r); out[i] = y; }
  } else if (k === 'clicks') {
    for (let i = 0; i < n; i++) out[i] = 0.05 * gauss(r);
    const count = Math.floor((n / SAMPLE_RATE) * (1 + 6 * r()));
    for (let c = 0; c < count; c++) {
      const at = Math.floor(r() * n), len = 20 + Math.floor(r() * 400), amp = 1 + 4 * r();
      for (let i = 0; i < len && at + i < n; i++) out[at + i] += amp * gauss(r) * Math.exp(-i / (len / 4));
    }
  } else { // tones: beeps / notification-like sounds, a few seconds of simple chords
    let t = 0;
    while (t < n) {
      const len = Math.floor(SAMPLE_RATE * (0.1 + 0.8 * r()));
      const f = 200 + 2000 * r(), f2 = f * (1.2 + 0.5 * r()), on = r() < 0.7;
      for (let i = 0; i < len && t + i < n; i++) {
        const env = Math.min(1, i / 80, (len - i) / 80);
        out[t + i] = on ? env * (Math.sin((2 * Math.PI * f * i) / SAMPLE_RATE) + 0.5 * Math.sin((2 * Math.PI * f2 * i) / SAMPLE_RATE)) : 0;
      }
      t += len;
    }
  }
  const g = 1 / (rms(out) + 1e-9);
  for (let i = 0; i < n; i++) out[i] *= g;
  return out;
}

/** First-order tilt + optional resonant peak (random microphone / channel colouring). */
function randomEq(r: Rng, x: Float32Array): void {
  // tilt: mix of the signal with its one-pole low-pass (a < 0: bright, a > 0: dark)
  const tilt = (r() - 0.5) * 1.2;
  const c = Math.exp((-2 * Math.PI * (300 + 2000 * r())) / SAMPLE_RATE);
  let lp = 0;
  for (let i = 0; i < x.length; i++) {
    lp = (1 - c) * x[i] + c * lp;
    x[i] = x[i] + tilt * (lp - x[i]);
  }
  if (r() < 0.5) { // peaking biquad (RBJ)
    const f0 = 200 + 3500 * r(), gainDb = (r() - 0.5) * 18, q = 0.5 + 2 * r();
    const A = 10 ** (gainDb / 40), w0 = (2 * Math.PI * f0) / SAMPLE_RATE, alpha = Math.sin(w0) / (2 * q);
    const b0 = 1 + alpha * A, b1 = -2 * Math.cos(w0), b2 = 1 - alpha * A;
    const a0 = 1 + alpha / A, a1 = -2 * Math.cos(w0), a2 = 1 - alpha / A;
    let x1 = 0, x2 = 0, y1 = 0, y2 = 0;
    for (let i = 0; i < x.length; i++) {
      const y = (b0 * x[i] + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2) / a0;
      x2 = x1; x1 = x[i]; y2 = y1; y1 = y;
      x[i] = y;
    }
  }
  // high-pass at 60–200 Hz (cheap microphones, WebRTC's own high-pass)
  const hc = Math.exp((-2 * Math.PI * (60 + 140 * r())) / SAMPLE_RATE);
  let px = 0, py = 0;
  for (let i = 0; i < x.length; i++) {
    const y = hc * (py + x[i] - px);
    px = x[i]; py = y;
    x[i] = y;
  }
}

/** Schroeder/Freeverb-style room: 6 damped combs + 3 all-passes, random room size / damping / mix. */
export function reverb(r: Rng, x: Float32Array): Float32Array {
  const scale = 0.6 + 1.2 * r();
  const combs = [1116, 1188, 1277, 1356, 1422, 1491].map((d) => Math.round((d * scale * SAMPLE_RATE) / 44100));
  const aps = [556, 441, 341].map((d) => Math.round((d * SAMPLE_RATE) / 44100));
  const feedback = 0.7 + 0.25 * r();
  const damp = 0.1 + 0.6 * r();
  const wet = 0.1 + 0.5 * r();
  const tail = Math.round(SAMPLE_RATE * 0.3);
  const n = x.length + tail;
  const out = new Float32Array(n);
  const acc = new Float32Array(n);
  for (const d of combs) {
    const buf = new Float32Array(d);
    let idx = 0, filt = 0;
    for (let i = 0; i < n; i++) {
      const inp = i < x.length ? x[i] : 0;
      const y = buf[idx];
      filt = y * (1 - damp) + filt * damp;
      buf[idx] = inp + filt * feedback;
      idx = idx + 1 === d ? 0 : idx + 1;
      acc[i] += y;
    }
  }
  for (const d of aps) {
    const buf = new Float32Array(d);
    let idx = 0;
    for (let i = 0; i < n; i++) {
      const b = buf[idx];
      const y = -acc[i] + b;
      buf[idx] = acc[i] + b * 0.5;
      idx = idx + 1 === d ? 0 : idx + 1;
      acc[i] = y;
    }
  }
  const g = (wet * rms(x)) / (rms(acc) + 1e-9);
  for (let i = 0; i < n; i++) out[i] = (i < x.length ? x[i] : 0) + g * acc[i];
  return out.subarray(0, x.length);
}

function bandLimit(r: Rng, x: Float32Array): Float32Array {
  const rate = pick(r, [8000, 8000, 11025, 12000]);
  const down = new StreamingResampler(SAMPLE_RATE, rate);
  const lo = down.push(x).slice();
  const up = new StreamingResampler(rate, SAMPLE_RATE);
  const y = up.push(lo);
  const out = new Float32Array(x.length);
  // no delay to compensate: both kernels are centred on their output positions
  out.set(y.subarray(0, Math.min(y.length, x.length)));
  return out;
}

export interface AugmentOptions {
  /** probability of each effect (defaults used by the training recipe) */
  pReverb?: number;
  pNoise?: number;
  pEq?: number;
  pClip?: number;
  pBandLimit?: number;
  pHoles?: number;
}

/**
 * Augments `x` (16 kHz, not modified) whose speech-free intervals are `pauses` ([startSample, end)).
 * Returns a new array of the same length.
 */
export function augment(r: Rng, x: Float32Array, pauses: Array<[number, number]>, o: AugmentOptions = {}): Float32Array {
  let y: Float32Array = x.slice();
  if (r() < (o.pEq ?? 0.7)) randomEq(r, y);
  if (r() < (o.pReverb ?? 0.45)) y = reverb(r, y).slice();
  if (r() < (o.pNoise ?? 0.75)) {
    const snrDb = -2 + 32 * r() ** 0.8;
    const nz = makeNoise(r, y.length);
    const g = activeRms(y) / 10 ** (snrDb / 20);
    for (let i = 0; i < y.length; i++) y[i] += g * nz[i];
  } else {
    // recording noise floor
    const g = activeRms(y) * 10 ** (-(45 + 20 * r()) / 20);
    for (let i = 0; i < y.length; i++) y[i] += g * gauss(r);
  }
  if (r() < (o.pBandLimit ?? 0.2)) y = bandLimit(r, y);
  // level: peak between −35 and −1 dBFS
  let peak = 1e-9;
  for (let i = 0; i < y.length; i++) peak = Math.max(peak, Math.abs(y[i]));
  const level = 10 ** (-(1 + 34 * r()) / 20) / peak;
  const clip = r() < (o.pClip ?? 0.08);
  const drive = clip ? 2 + 6 * r() : 1;
  for (let i = 0; i < y.length; i++) {
    let v = y[i] * level * drive;
    if (v > 1) v = 1;
    else if (v < -1) v = -1;
    y[i] = v;
  }
  if (r() < (o.pHoles ?? 0.1)) { // DTX / packet-loss concealment off: digital silence inside pauses
    for (const [a, b] of pauses) {
      if (b - a < 1600 || r() < 0.5) continue;
      const s = a + Math.floor((b - a) * 0.2 * r()), e = b - Math.floor((b - a) * 0.2 * r());
      for (let i = s; i < e; i++) y[i] = 0;
    }
  }
  for (let i = 0; i < y.length; i++) y[i] = Math.round(y[i] * 32767) / 32767;
  return y;
}
