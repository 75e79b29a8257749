/** Streaming audio front end of audio2motion (models/audio2motion/features.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  downmixToMono, extractOffline, FEATURE_DIM, FEATURE_LOOKAHEAD_MS, frameTimeMs, HOP, MAX_RESAMPLER_LOOKAHEAD_MS, N_MELS,
  pipelineLookaheadMs, resampleOffline, resamplerLookaheadMs, SAMPLE_RATE, StreamingFeatureExtractor, StreamingResampler, WIN,
} from '../../models/audio2motion/features.ts';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** a speech-like test signal: harmonic tone with a moving formant-ish envelope plus noise bursts */
function signal(n: number, rate: number, seed = 1): Float32Array {
  const r = lcg(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const f0 = 120 + 30 * Math.sin(2 * Math.PI * 0.7 * t);
    let v = 0;
    for (let h = 1; h <= 8; h++) v += Math.sin(2 * Math.PI * f0 * h * t) / h;
    const env = 0.5 + 0.5 * Math.sin(2 * Math.PI * 3 * t);
    x[i] = 0.2 * env * v + 0.02 * (r() - 0.5) + (Math.floor(t * 4) % 3 === 0 ? 0.05 * (r() - 0.5) : 0);
  }
  return x;
}

function chunked<T extends Float32Array>(x: T, r: () => number, maxChunk: number, fn: (c: T) => void): void {
  let i = 0;
  while (i < x.length) {
    const n = Math.min(x.length - i, Math.floor(r() * maxChunk)); // 0-length chunks included
    fn(x.subarray(i, i + n) as T);
    i += n;
  }
}

test('streaming features equal offline features for random chunk sizes', () => {
  const x = signal(SAMPLE_RATE * 2 + 123, SAMPLE_RATE);
  const off = extractOffline(x);
  assert.equal(off.length % FEATURE_DIM, 0);
  assert.equal(off.length / FEATURE_DIM, Math.floor((x.length - WIN) / HOP) + 1);
  for (const [seed, maxChunk] of [[1, 7], [2, 160], [3, 1000], [4, 40000]] as const) {
    const fx = new StreamingFeatureExtractor();
    const parts: number[] = [];
    chunked(x, lcg(seed), maxChunk, (c) => parts.push(...fx.push(c)));
    assert.equal(parts.length, off.length, `chunks up to ${maxChunk}`);
    let maxErr = 0;
    for (let i = 0; i < off.length; i++) maxErr = Math.max(maxErr, Math.abs(parts[i] - off[i]));
    assert.ok(maxErr < 1e-5, `max error ${maxErr}`);
  }
  for (const v of off) assert.ok(Number.isFinite(v));
});

test('a feature frame appears as soon as its window is complete, not later (look-ahead bound)', () => {
  const fx = new StreamingFeatureExtractor();
  const x = signal(4000, SAMPLE_RATE);
  let produced = 0;
  for (let i = 0; i < x.length; i++) {
    produced += fx.push(x.subarray(i, i + 1)).length / FEATURE_DIM;
    // after i+1 samples, exactly the frames whose window [160t, 160t+400) is inside are out
    const expected = i + 1 < WIN ? 0 : Math.floor((i + 1 - WIN) / HOP) + 1;
    assert.equal(produced, expected);
    if (produced > 0) {
      // newest frame's time stamp is exactly 12.5 ms before the newest sample's end
      const tNewest = frameTimeMs(produced - 1);
      const lastSampleEndMs = ((WIN + (produced - 1) * HOP) / SAMPLE_RATE) * 1000;
      assert.ok(Math.abs(lastSampleEndMs - tNewest - FEATURE_LOOKAHEAD_MS) < 1e-9);
    }
  }
  assert.equal(FEATURE_LOOKAHEAD_MS, 12.5);
  // whole pipeline with the shipped model's 4 future frames: ≤ 60 ms at every input rate
  for (const rate of [8000, 11025, 16000, 22050, 32000, 44100, 48000]) {
    assert.ok(pipelineLookaheadMs(4, rate) <= 60, `${rate}: ${pipelineLookaheadMs(4, rate)}`);
    assert.ok(resamplerLookaheadMs(rate) <= MAX_RESAMPLER_LOOKAHEAD_MS + 1e-12);
  }
  assert.ok(MAX_RESAMPLER_LOOKAHEAD_MS < 1.1);
  assert.ok(pipelineLookaheadMs(4) < 54);
});

test('the resampler streams exactly like the offline path and never waits longer than its kernel half-width', () => {
  for (const rate of [8000, 11025, 22050, 44100, 48000]) {
    const x = signal(Math.round(rate * 0.7), rate, 3);
    const off = resampleOffline(x, rate);
    assert.equal(off.length, Math.floor(((x.length - 1) * SAMPLE_RATE) / rate) + 1, `${rate}: output length`);
    const rs = new StreamingResampler(rate);
    const got: number[] = [];
    chunked(x, lcg(rate), 997, (c) => {
      got.push(...rs.push(c));
      // every output whose kernel is fully inside the received input has been produced
      const need = rs.received - 1 - (resamplerLookaheadMs(rate) / 1000) * rate;
      const due = need < 0 ? 0 : Math.floor((need * SAMPLE_RATE) / rate) + 1;
      assert.ok(got.length >= due - 1, `${rate}: ${got.length} < ${due}`);
    });
    got.push(...rs.flush());
    assert.equal(got.length, off.length);
    let maxErr = 0;
    for (let i = 0; i < off.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i] - off[i]));
    assert.ok(maxErr < 1e-6, `${rate}: ${maxErr}`);
  }
});

test('resampling any rate keeps in-band tones, removes what cannot exist at 16 kHz, and keeps time', () => {
  for (const rate of [8000, 11025, 22050, 44100, 48000]) {
    const n = rate; // 1 s
    const f = 440, fHigh = 11000;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = 0.5 * Math.sin((2 * Math.PI * f * i) / rate) + (fHigh < rate / 2 ? 0.3 * Math.sin((2 * Math.PI * fHigh * i) / rate) : 0);
    const y = resampleOffline(x, rate);
    // compare with the ideal 440 Hz tone in the middle (away from the edges)
    let err = 0, cnt = 0;
    for (let i = 2000; i < y.length - 2000; i++) {
      err += (y[i] - 0.5 * Math.sin((2 * Math.PI * f * i) / SAMPLE_RATE)) ** 2;
      cnt++;
    }
    const rmsErr = Math.sqrt(err / cnt);
    assert.ok(rmsErr < 0.01, `${rate}: rms error ${rmsErr} (tone kept, 11 kHz removed, no time shift)`);
  }
});

test('stereo Int16 and Float32 input downmix to the channel average; garbage samples are sanitised', () => {
  const i16 = Int16Array.from([1000, 3000, -32768, 32766, 0, 0]);
  assert.deepEqual([...downmixToMono(i16, 2)].map((v) => Math.round(v * 32768)), [2000, -1, 0]);
  const f32 = Float32Array.from([0.5, -0.5, NaN, 0.25, Infinity, -Infinity, 1e9, 1e9]);
  const m = downmixToMono(f32, 2);
  assert.deepEqual([...m], [0, 0.125, 0, 1]);
  // odd length: trailing partial frame ignored
  assert.equal(downmixToMono(Float32Array.from([1, 1, 1]), 2).length, 1);
  // the features of garbage are finite
  const g = new Float32Array(8000);
  for (let i = 0; i < g.length; i++) g[i] = i % 3 === 0 ? NaN : i % 3 === 1 ? 1e30 : -Infinity;
  const feats = extractOffline(downmixToMono(g, 1));
  for (const v of feats) assert.ok(Number.isFinite(v));
  // digital silence sits on the floor
  const sil = extractOffline(new Float32Array(4000));
  assert.ok(Math.abs(sil[0] - Math.log(1e-7)) < 1e-6 && Math.abs(sil[N_MELS] - Math.log(1e-9)) < 1e-6);
});

test('a stereo 48 kHz stream gives the same features as its mono 16 kHz original', () => {
  const x16 = signal(SAMPLE_RATE, SAMPLE_RATE, 9);
  // make a 48 kHz version by resampling, duplicate to stereo
  const x48 = resampleOffline(x16, SAMPLE_RATE, 48000);
  const st = new Float32Array(x48.length * 2);
  for (let i = 0; i < x48.length; i++) { st[2 * i] = x48[i]; st[2 * i + 1] = x48[i]; }
  const back = resampleOffline(downmixToMono(st, 2), 48000);
  const a = extractOffline(x16), b = extractOffline(back);
  const frames = Math.min(a.length, b.length) / FEATURE_DIM;
  let maxDiff = 0;
  for (let t = 2; t < frames - 2; t++) {
    for (let k = 0; k < 30; k++) { // bands below ~5 kHz: identical up to resampling error
      maxDiff = Math.max(maxDiff, Math.abs(a[t * FEATURE_DIM + k] - b[t * FEATURE_DIM + k]));
    }
  }
  assert.ok(maxDiff < 0.05, `log-mel difference ${maxDiff}`);
});
