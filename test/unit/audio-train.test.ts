/** The audio2motion training pipeline end to end on a tiny configuration (scripts/train.ts --tiny). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { runPipeline } from '../../models/audio2motion/pipeline.ts';
import { haveSphinx } from '../../models/audio2motion/data/sphinx.ts';
import { buildEspeakHelper, synthesize } from '../../models/audio2motion/data/espeak.ts';
import { targetsFromPhones, VISEME_INDEX } from '../../models/audio2motion/visemes.ts';
import { StreamingAudio2Motion } from '../../models/audio2motion/Audio2Motion.ts';

const haveEspeak = fs.existsSync('/usr/include/espeak-ng/speak_lib.h');
const skip = !haveEspeak || !haveSphinx()
  ? 'needs Debian espeak-ng libespeak-ng-dev pocketsphinx pocketsphinx-en-us pocketsphinx-testdata'
  : false;

test('espeak-ng phoneme events give timed phonemes whose targets close the lips on p/b/m and open them on vowels', { skip }, async () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'a2m-espeak-'));
  try {
    const bin = buildEspeakHelper(cache);
    assert.ok(!bin.startsWith(path.resolve('.')), 'the helper binary is built outside the repository');
    const s = await synthesize(bin, 'Bob ate a map.', { voice: 'en-us', rate: 160, pitch: 50, range: 50 }, cache);
    assert.ok(s.sampleRate > 8000 && s.pcm.length > s.sampleRate * 0.5);
    const names = s.phones.map((p) => p.ph).filter(Boolean);
    assert.ok(names.includes('b') && names.includes('m') && names.includes('p'), names.join(' '));
    for (let i = 1; i < s.phones.length; i++) assert.ok(s.phones[i].startMs >= s.phones[i - 1].startMs);
    const times = Array.from({ length: Math.floor((s.pcm.length / s.sampleRate) * 100) }, (_, t) => t * 10 + 12.5);
    const tg = targetsFromPhones(s.phones, times);
    const jawWhere = (v: number) => times.map((_, t) => t).filter((t) => tg.viseme[t] === v).map((t) => tg.mouth[t * 3]);
    const closed = jawWhere(VISEME_INDEX.PP), open = jawWhere(VISEME_INDEX.aa);
    assert.ok(closed.length > 0 && open.length > 0);
    assert.ok(Math.min(...closed) < 0.05, 'lips close on a bilabial');
    assert.ok(Math.max(...open) > 0.4, 'jaw opens on an open vowel');
    // with 500 ms of silence in front, the mouth is closed there and starts moving only shortly before speech
    const shifted = [{ ph: '', startMs: 0, endMs: 500 }, ...s.phones.map((p) => ({ ...p, startMs: p.startMs + 500, endMs: p.endMs + 500 }))];
    const tg2 = targetsFromPhones(shifted, [100, 250, 450]);
    assert.ok(Math.abs(tg2.mouth[0]) < 1e-3 && Math.abs(tg2.mouth[3]) < 0.01 && tg2.speech[0] === 0, 'silence is a closed mouth');
    assert.ok(Math.abs(tg2.mouth[6]) < 0.05, 'anticipation starts shortly before speech');
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
});

test('the tiny training run generates data, trains, exports ONNX that onnxruntime-node loads, and scores held-out clips', { skip, timeout: 120_000 }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'a2m-train-'));
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'a2m-cache-'));
  try {
    const lines: string[] = [];
    const res = await runPipeline({ tiny: true, outDir: out, cacheDir: cache, log: (l) => lines.push(l) });
    assert.ok(lines.some((l) => l.startsWith('step 5/5')), lines.join('\n'));
    assert.equal(res.onnxPath, path.join(out, 'audio2motion.onnx'));
    // the public async API loads it too
    const session = await ort.InferenceSession.create(res.onnxPath);
    assert.deepEqual(session.inputNames, ['features']);
    assert.deepEqual([...session.outputNames].sort(), ['mouth', 'viseme', 'voiced']);
    await session.release();
    const sidecar = JSON.parse(fs.readFileSync(res.sidecarPath, 'utf8'));
    assert.equal(sidecar.contextFrames.past + sidecar.contextFrames.future + 1, sidecar.inputs.features.shape[1]);
    assert.ok(Number.isFinite(res.heldOut['real']!.mouth_corr));
    assert.ok(res.heldOut['real']!.frames > 500, 'held-out real speech was scored');
    // the streaming API runs on the freshly trained file
    const a = await StreamingAudio2Motion.create({ modelPath: res.onnxPath });
    const frames = a.push(new Float32Array(4800), 48000, 1);
    a.close();
    assert.ok(frames.length >= 5);
    // deterministic: same seed, same weights
    const again = await runPipeline({ tiny: true, outDir: path.join(out, 'again'), cacheDir: cache });
    assert.deepEqual(fs.readFileSync(again.onnxPath), fs.readFileSync(res.onnxPath));
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  }
});
