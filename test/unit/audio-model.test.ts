/** The committed audio2motion model through the streaming API (models/audio2motion/Audio2Motion.ts). */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';
import { StreamingAudio2Motion, DEFAULT_MODEL_PATH, type MotionOutput } from '../../models/audio2motion/Audio2Motion.ts';
import { extractOffline, FEATURE_DIM, frameTimeMs, resampleOffline, SAMPLE_RATE, silenceFeature } from '../../models/audio2motion/features.ts';
import { SyncSession, ort } from '../../models/audio2motion/ort-sync.ts';
import { readPcm16 } from '../../models/audio2motion/data/sphinx.ts';
import { targetsFromPhones, VISEME_INDEX, type TimedPhone } from '../../models/audio2motion/visemes.ts';
import { pearson } from '../../models/audio2motion/evaluate.ts';
import { EXPR, EXPRESSION_SIZE } from '../../models/face/expression-code.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtureDir = path.join(here, '../fixtures/audio');
const sidecar = JSON.parse(fs.readFileSync(DEFAULT_MODEL_PATH.replace(/\.onnx$/, '.json'), 'utf8'));

function loadFixture(): { pcm: Float32Array; phones: TimedPhone[] } {
  const { pcm, sampleRate } = readPcm16(path.join(fixtureDir, 'librivox-0930.wav'));
  assert.equal(sampleRate, SAMPLE_RATE);
  const meta = JSON.parse(fs.readFileSync(path.join(fixtureDir, 'librivox-0930.json'), 'utf8')) as { phones: Array<[string, number, number]> };
  return { pcm, phones: meta.phones.map(([ph, startMs, endMs]) => ({ ph, startMs, endMs })) };
}

function toInt16Stereo(x: Float32Array): Int16Array {
  const out = new Int16Array(x.length * 2);
  for (let i = 0; i < x.length; i++) {
    const v = Math.max(-32768, Math.min(32767, Math.round(x[i] * 32767)));
    out[2 * i] = v;
    out[2 * i + 1] = v;
  }
  return out;
}

/** pushes in 10 ms chunks like RTCAudioSink */
function pushChunks(a: StreamingAudio2Motion, pcm: Float32Array | Int16Array, rate: number, channels: number): MotionOutput[] {
  const step = (rate / 100) * channels;
  const out: MotionOutput[] = [];
  for (let i = 0; i < pcm.length; i += step) out.push(...a.push(pcm.subarray(i, i + step), rate, channels));
  return out;
}

function checkFrames(frames: MotionOutput[], firstT = 0): void {
  frames.forEach((f, i) => {
    assert.equal(f.expression.length, EXPRESSION_SIZE);
    for (const v of f.expression) assert.ok(Number.isFinite(v) && v >= -1 && v <= 1, `coefficient ${v}`);
    assert.ok(Number.isFinite(f.voiced) && f.voiced >= 0 && f.voiced <= 1);
    assert.ok(Math.abs(f.tMs - frameTimeMs(firstT + i)) < 1e-9, `tMs ${f.tMs} at ${i}`);
  });
}

const opened: StreamingAudio2Motion[] = [];
async function make(o: Parameters<typeof StreamingAudio2Motion.create>[0] = {}): Promise<StreamingAudio2Motion> {
  const a = await StreamingAudio2Motion.create(o);
  opened.push(a);
  return a;
}
after(() => opened.forEach((a) => a.close()));

test('the committed ONNX model loads in onnxruntime-node with the documented inputs and outputs', () => {
  const s = new SyncSession(DEFAULT_MODEL_PATH);
  assert.deepEqual(s.inputNames, ['features']);
  assert.deepEqual(s.outputNames, ['mouth', 'viseme', 'voiced']);
  const W = sidecar.contextFrames.past + 1 + sidecar.contextFrames.future;
  const x = new Float32Array(2 * W * FEATURE_DIM);
  for (let i = 0; i < 2 * W; i++) x.set(silenceFeature(), i * FEATURE_DIM);
  const out = s.run({ features: new ort.Tensor('float32', x, [2, W, FEATURE_DIM]) });
  assert.deepEqual(out['mouth'].dims, [2, 3]);
  assert.deepEqual(out['viseme'].dims, [2, sidecar.outputs.viseme.length]);
  assert.deepEqual(out['voiced'].dims, [2, 1]);
  s.close();
  assert.ok(fs.statSync(DEFAULT_MODEL_PATH).size < 2_000_000, 'small weights');
  assert.ok(sidecar.lookaheadMs.total <= 60);
});

test('silence, low noise and DTX gaps keep the mouth closed', async () => {
  const a = await make({ blinks: false, brows: false });
  assert.ok(a.lookaheadMs <= 60, `look-ahead ${a.lookaheadMs} ms`);
  const zeros = new Int16Array(48000 * 2 * 2); // 2 s of 48 kHz stereo digital silence
  const f1 = pushChunks(a, zeros, 48000, 2);
  // quiet room noise (−55 dBFS)
  let s = 7;
  const noise = new Float32Array(48000 * 2);
  for (let i = 0; i < noise.length; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; noise[i] = ((s / 4294967296) - 0.5) * 0.006; }
  const f2 = pushChunks(a, noise, 48000, 1);
  const f3 = a.pushSilence(500);
  const all = [...f1, ...f2, ...f3];
  checkFrames(all);
  assert.ok(all.length >= 440, `${all.length} frames for 4.5 s`);
  const maxJaw = Math.max(...all.map((f) => f.expression[EXPR.jawOpen]));
  const maxWide = Math.max(...all.map((f) => Math.abs(f.expression[EXPR.mouthWide])));
  assert.ok(maxJaw <= 0.05, `jawOpen up to ${maxJaw} in silence`);
  assert.ok(maxWide <= 0.1, `|mouthWide| up to ${maxWide} in silence`);
  assert.ok(all.every((f) => f.voiced < 0.3));
});

test('the mouth opens on the vowels of a held-out real clip and follows the phoneme-derived openness', async () => {
  const { pcm, phones } = loadFixture();
  const a = await make({ blinks: false, brows: false });
  // as WebRTC would deliver it: 48 kHz stereo Int16 in 10 ms chunks
  const frames = [...pushChunks(a, toInt16Stereo(resampleOffline(pcm, SAMPLE_RATE, 48000)), 48000, 2), ...a.pushSilence(100)];
  checkFrames(frames);
  const n = Math.min(frames.length, Math.floor(pcm.length / 160));
  const times = Array.from({ length: n }, (_, t) => frameTimeMs(t));
  const tg = targetsFromPhones(phones, times);
  const jaw = frames.slice(0, n).map((f) => f.expression[EXPR.jawOpen]);
  const target = Array.from({ length: n }, (_, t) => tg.mouth[t * 3]);
  const vowels = new Set([VISEME_INDEX.aa, VISEME_INDEX.E, VISEME_INDEX.oh]);
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / Math.max(1, xs.length);
  const onVowels = mean(jaw.filter((_, t) => vowels.has(tg.viseme[t])));
  const onSilence = mean(jaw.filter((_, t) => tg.speech[t] === 0));
  const onBilabials = mean(jaw.filter((_, t) => tg.viseme[t] === VISEME_INDEX.PP));
  const r = pearson(jaw, target);
  assert.ok(onVowels > 0.15, `mean jawOpen on open vowels ${onVowels.toFixed(3)}`);
  assert.ok(onVowels > onSilence + 0.12, `vowels ${onVowels.toFixed(3)} vs silence ${onSilence.toFixed(3)}`);
  assert.ok(onVowels > onBilabials + 0.05, `vowels ${onVowels.toFixed(3)} vs p/b/m ${onBilabials.toFixed(3)}`);
  assert.ok(r > 0.45, `Pearson r ${r.toFixed(3)} with the phoneme-derived jawOpen`);
});

test('the streaming API equals the model on offline features, whatever the chunking', async () => {
  const { pcm } = loadFixture();
  const clip = pcm.subarray(0, 16000);
  const offline = extractOffline(clip);
  const frames = offline.length / FEATURE_DIM;
  const { past, future } = sidecar.contextFrames;
  const W = past + 1 + future;
  const padded = new Float32Array((past + frames) * FEATURE_DIM);
  for (let i = 0; i < past; i++) padded.set(silenceFeature(), i * FEATURE_DIM);
  padded.set(offline, past * FEATURE_DIM);
  const usable = frames - future;
  const x = new Float32Array(usable * W * FEATURE_DIM);
  for (let t = 0; t < usable; t++) x.set(padded.subarray(t * FEATURE_DIM, (t + W) * FEATURE_DIM), t * W * FEATURE_DIM);
  const s = new SyncSession(DEFAULT_MODEL_PATH);
  const ref = s.run({ features: new ort.Tensor('float32', x, [usable, W, FEATURE_DIM]) })['mouth'].data as Float32Array;
  s.close();
  let seed = 5;
  for (const maxChunk of [1, 37, 160, 4000]) {
    const a = await make({ gate: 'none', blinks: false, brows: false });
    const out: MotionOutput[] = [];
    for (let i = 0; i < clip.length;) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const n = 1 + (seed % maxChunk);
      out.push(...a.push(clip.subarray(i, i + n), SAMPLE_RATE, 1));
      i += n;
    }
    assert.equal(out.length, usable, `chunks ≤ ${maxChunk}`);
    for (let t = 0; t < usable; t++) {
      for (let k = 0; k < 3; k++) assert.ok(Math.abs(out[t].expression[k] - ref[t * 3 + k]) < 1e-5, `frame ${t} coefficient ${k}`);
    }
  }
});

test('garbage input (NaN, infinities, huge values, empty chunks, bad rates, rate switches) never throws and stays bounded', async () => {
  const a = await make();
  const out: MotionOutput[] = [];
  const garbage = new Float32Array(4800);
  for (let i = 0; i < garbage.length; i++) garbage[i] = [NaN, Infinity, -Infinity, 1e38, -1e38, 5, -7][i % 7];
  out.push(...a.push(new Float32Array(0), 48000, 2));
  out.push(...a.push(new Int16Array(0), 16000, 1));
  out.push(...a.push(garbage, 48000, 1));
  out.push(...a.push(garbage, 44100, 2)); // rate and channel switch
  out.push(...a.push(Float32Array.from([0.5]), 8000, 3)); // fewer samples than channels
  assert.deepEqual(a.push(garbage, NaN, 1), []);
  assert.deepEqual(a.push(garbage, 0, 1), []);
  assert.deepEqual(a.push(garbage, -16000, 1), []);
  assert.equal(a.droppedChunks, 3);
  // full-scale square wave (clipping) at 8 kHz, then 16 kHz Int16 extremes
  const sq = new Float32Array(8000).map((_, i) => (Math.floor(i / 20) % 2 ? 1 : -1));
  out.push(...a.push(sq, 8000, 1));
  out.push(...a.push(new Int16Array(16000).map((_, i) => (i % 2 ? 32767 : -32768)), 16000, 1));
  out.push(...a.pushSilence(300));
  out.push(...a.pushSilence(NaN), ...a.pushSilence(-5));
  checkFrames(out);
  assert.ok(out.length > 150);
});

test('a 5-minute session runs far faster than real time with flat memory', async () => {
  const a = await make();
  const { pcm } = loadFixture();
  const x48 = toInt16Stereo(resampleOffline(pcm, SAMPLE_RATE, 48000));
  const gc = (() => {
    v8.setFlagsFromString('--expose_gc');
    return vm.runInNewContext('gc') as () => void;
  })();
  const mem = () => { gc(); const m = process.memoryUsage(); return m.heapUsed + m.external + m.arrayBuffers; };
  const chunk = 480 * 2;
  let frames = 0, pos = 0, lastT = -1;
  const run = (seconds: number) => {
    for (let i = 0; i < seconds * 100; i++) {
      if (pos + chunk > x48.length) pos = 0;
      const out = a.push(x48.subarray(pos, pos + chunk), 48000, 2);
      pos += chunk;
      for (const f of out) { assert.ok(f.tMs > lastT); lastT = f.tMs; }
      frames += out.length;
      if (i % 1000 === 999) a.pushSilence(200); // a DTX gap now and then
    }
  };
  run(30);
  const m0 = mem();
  const t0 = performance.now();
  run(270);
  const ms = performance.now() - t0;
  const m1 = mem();
  const perFrame = ms / 27000;
  assert.ok(frames > 29000);
  assert.ok(perFrame < 1, `${perFrame.toFixed(3)} ms per 10 ms frame (real-time factor ${(perFrame / 10).toFixed(3)})`);
  assert.ok(m1 - m0 < 8e6, `memory grew by ${((m1 - m0) / 1e6).toFixed(1)} MB over 4.5 min of audio`);
});
