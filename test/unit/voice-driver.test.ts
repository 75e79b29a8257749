/** VoiceDriver: the worker's audio → expression bridge and its A/V delay line. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VoiceDriver, type AudioChunk, type AudioToExpression } from '../../worker/src/VoiceDriver.ts';

/** A deterministic model double: jawOpen follows the chunk's loudness; reports its own audio time. */
function loudnessModel(): AudioToExpression & { closed: boolean } {
  let tMs = 0;
  return {
    lookaheadMs: 30,
    closed: false,
    push(pcm, sampleRate, channels) {
      let s = 0;
      for (let i = 0; i < pcm.length; i++) s += Math.abs(Number(pcm[i]));
      tMs += (pcm.length / channels / sampleRate) * 1000;
      const e = new Float32Array(12);
      e[0] = Number.isFinite(s) ? s / pcm.length / 1000 : Number.NaN;
      return [{ expression: e, voiced: e[0]! > 0.1 ? 1 : 0, tMs }];
    },
    close() {
      this.closed = true;
    },
  };
}

const chunk = (value: number, sampleRate = 48000, channelCount = 1): AudioChunk => ({
  samples: new Int16Array((sampleRate / 100) * channelCount).fill(value),
  sampleRate,
  channelCount,
  numberOfFrames: sampleRate / 100,
});

test('republished audio leaves the delay line after the lip-sync delay, in order', async (t) => {
  const out: AudioChunk[] = [];
  const driver = new VoiceDriver(loudnessModel(), (c) => out.push(c), 60);
  t.after(() => driver.close());
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) driver.pushAudio(chunk(i + 1), t0);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(out.length, 0, 'nothing before the delay');
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(out.map((c) => c.samples[0]), [1, 2, 3, 4, 5]);
  driver.close();
});

test('expression follows the model, clamped to [-1, 1] with NaN replaced by 0', (t) => {
  const driver = new VoiceDriver(loudnessModel(), () => undefined);
  t.after(() => driver.close());
  driver.pushAudio(chunk(500));
  assert.ok(Math.abs(driver.current().expression[0]! - 0.5) < 1e-6);
  driver.pushAudio(chunk(30000));
  assert.equal(driver.current().expression[0], 1);
  driver.close();
});

test('bad audio (empty, absurd rates or channel counts) is ignored without throwing', (t) => {
  const driver = new VoiceDriver(loudnessModel(), () => undefined);
  t.after(() => driver.close());
  driver.pushAudio({ samples: new Int16Array(0), sampleRate: 48000, channelCount: 1, numberOfFrames: 0 });
  driver.pushAudio(chunk(100, 1000));
  driver.pushAudio({ ...chunk(100), channelCount: 0 });
  assert.equal(driver.framesIn, 0);
  driver.pushAudio(chunk(100, 16000, 2));
  assert.equal(driver.framesIn, 1, 'stereo 16 kHz is fine');
  driver.close();
});

test('the delay follows the measured video lag and stays bounded', (t) => {
  const driver = new VoiceDriver(loudnessModel(), () => undefined, 40);
  t.after(() => driver.close());
  // The newest audio arrived 200 ms ago: frames rendered now from it are 200 ms late.
  const t0 = performance.now() - 1190;
  for (let i = 0; i < 100; i++) driver.pushAudio(chunk(100), t0 + i * 10);
  for (let i = 0; i < 200; i++) driver.current();
  assert.ok(driver.delayMs > 150 && driver.delayMs <= 300, `delay ${driver.delayMs}`);
  const far = performance.now() - 5000;
  for (let i = 0; i < 100; i++) driver.pushAudio(chunk(100), far + i * 10);
  for (let i = 0; i < 500; i++) driver.current();
  assert.ok(driver.delayMs <= 300, `bounded (${driver.delayMs})`);
});

test('a stalled pump cannot grow the queue without bound (it keeps the newest 600 ms), and close() is idempotent and closes the model', async () => {
  const model = loudnessModel();
  const out: AudioChunk[] = [];
  const driver = new VoiceDriver(model, (c) => out.push(c), 300);
  // 100 s of audio pushed without yielding: the pump (a timer) cannot run meanwhile.
  const t0 = performance.now();
  for (let i = 0; i < 10_000; i++) driver.pushAudio(chunk(i % 30_000), t0);
  assert.equal(driver.framesIn, 10_000);
  assert.ok(driver.queuedChunks <= 60, `${driver.queuedChunks} chunks queued (bound: 2 × 300 ms of 10 ms chunks)`);
  assert.ok(driver.queuedChunks >= 50, `the newest audio is kept (${driver.queuedChunks} chunks)`);
  // What comes out once the pump runs again is the newest audio, in order.
  await new Promise((r) => setTimeout(r, 380));
  const values = out.map((c) => c.samples[0]!);
  assert.ok(values.length >= 50, `${values.length} chunks republished`);
  assert.deepEqual(values, values.map((_, k) => 10_000 - values.length + k));
  driver.close();
  driver.close();
  assert.equal(model.closed, true);
  assert.equal(driver.queuedChunks, 0);
});
