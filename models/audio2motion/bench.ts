/**
 * Speed of the audio2motion pipeline on one core:
 *   node --import tsx models/audio2motion/bench.ts [seconds=120]   (taskset -c 0 … to pin it)
 * Prints ms per 10 ms frame and the real-time factor for: the ONNX model alone (one window per
 * call, as in streaming), Silero VAD alone, and the whole StreamingAudio2Motion.push path on
 * 48 kHz stereo Int16 delivered in 10 ms chunks (downmix, resampling, features, VAD, model,
 * post-processing).
 */
import { StreamingAudio2Motion, DEFAULT_MODEL_PATH } from './Audio2Motion.ts';
import { FEATURE_DIM, SAMPLE_RATE, resampleOffline } from './features.ts';
import { SyncSession, ort } from './ort-sync.ts';
import { defaultSileroPath, SileroVad } from './vad.ts';

const seconds = Number(process.argv[2] ?? 120);
const frames = seconds * 100;

// speech-like test audio: a harmonic source with a syllable-rate envelope and noise
const x16 = new Float32Array(SAMPLE_RATE * 4);
let s = 1;
for (let i = 0; i < x16.length; i++) {
  s = (Math.imul(s, 1103515245) + 12345) >>> 0;
  const t = i / SAMPLE_RATE;
  let v = 0;
  for (let h = 1; h < 10; h++) v += Math.sin(2 * Math.PI * 130 * h * t) / h;
  x16[i] = 0.2 * Math.max(0, Math.sin(2 * Math.PI * 2.5 * t)) * v + 0.01 * ((s / 4294967296) - 0.5);
}
const x48 = resampleOffline(x16, SAMPLE_RATE, 48000);
const pcm = new Int16Array(x48.length * 2);
for (let i = 0; i < x48.length; i++) pcm[2 * i] = pcm[2 * i + 1] = Math.round(x48[i] * 32767);

const a = await StreamingAudio2Motion.create();
const W = a.sidecar.contextFrames.past + 1 + a.sidecar.contextFrames.future;

// model alone
const sess = new SyncSession(DEFAULT_MODEL_PATH);
const win = new ort.Tensor('float32', new Float32Array(W * FEATURE_DIM).map(() => Math.random() * 4 - 12), [1, W, FEATURE_DIM]);
for (let i = 0; i < 200; i++) sess.run({ features: win });
let t0 = performance.now();
for (let i = 0; i < frames; i++) sess.run({ features: win });
const model = (performance.now() - t0) / frames;
sess.close();

// Silero alone (per 10 ms of audio)
const sp = defaultSileroPath();
let vadMs = NaN;
if (sp) {
  const vad = new SileroVad(sp);
  const chunk = x16.subarray(0, 160);
  for (let i = 0; i < 300; i++) vad.push(chunk);
  t0 = performance.now();
  for (let i = 0; i < frames; i++) vad.push(x16.subarray((i % 390) * 160, (i % 390) * 160 + 160));
  vadMs = (performance.now() - t0) / frames;
  vad.close();
}

// whole path
const step = 480 * 2;
let pos = 0, out = 0;
for (let i = 0; i < 300; i++) { if (pos + step > pcm.length) pos = 0; out += a.push(pcm.subarray(pos, pos + step), 48000, 2).length; pos += step; }
t0 = performance.now();
for (let i = 0; i < frames; i++) {
  if (pos + step > pcm.length) pos = 0;
  out += a.push(pcm.subarray(pos, pos + step), 48000, 2).length;
  pos += step;
}
const whole = (performance.now() - t0) / frames;
a.close();

const row = (name: string, ms: number) => console.log(`${name.padEnd(44)} ${ms.toFixed(4)} ms per 10 ms frame  (real-time factor ${(ms / 10).toFixed(4)})`);
console.log(`audio2motion bench: ${seconds} s of audio, model window ${W} frames, ${out} frames out`);
row('ONNX model alone (batch 1)', model);
row('Silero VAD v5 alone', vadMs);
row('StreamingAudio2Motion.push (48 kHz stereo)', whole);
