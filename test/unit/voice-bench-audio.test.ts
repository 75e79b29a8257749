/** The voice bench's audio path (bench/voice-audio.ts): any WAV, any length, into an RTCAudioSource. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import wrtc from '@roamhq/wrtc';
import { FRAME_48K, frameAt, loadSpeechClip, roundSignal } from '../../bench/voice-audio.ts';
import { readPcm16 } from '../../models/audio2motion/data/sphinx.ts';

function tone(n: number, rate: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 220 * i) / rate));
}

/** 16-bit PCM WAV with `channels` interleaved copies of `pcm`. */
function writeWav16(file: string, pcm: Float32Array, rate: number, channels: number): void {
  const data = Buffer.alloc(pcm.length * 2 * channels);
  for (let i = 0; i < pcm.length; i++) for (let c = 0; c < channels; c++) data.writeInt16LE(Math.round(pcm[i]! * 32767), (i * channels + c) * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * channels * 2, 28);
  h.writeUInt16LE(channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(data.length, 40);
  fs.writeFileSync(file, Buffer.concat([h, data]));
}

/** Plays `rounds` rounds of the signal into a real wrtc RTCAudioSource, as the live bench does. */
function playIntoAudioSource(signal: Int16Array, rounds: number): number {
  const source = new wrtc.nonstandard.RTCAudioSource();
  const track = source.createTrack();
  let frames = 0;
  try {
    for (let sent = 0; sent + FRAME_48K <= signal.length * rounds; sent += FRAME_48K) {
      source.onData({ samples: frameAt(signal, sent), sampleRate: 48000, bitsPerSample: 16, channelCount: 1, numberOfFrames: FRAME_48K });
      frames++;
    }
  } finally {
    track.stop();
  }
  return frames;
}

test('a clip whose length is not a multiple of 10 ms plays into an RTCAudioSource for several rounds without a short frame', () => {
  // 1234.56 ms at 16 kHz: neither the clip nor clip + 1.5 s gap is a whole number of 10 ms frames.
  const pcm = tone(19753, 16000);
  const { signal, speechSamples } = roundSignal(pcm, 16000, 1.5);
  assert.notEqual((speechSamples + 72000) % FRAME_48K, 0, 'the test clip must not be a multiple of 10 ms');
  assert.equal(signal.length % FRAME_48K, 0);
  const frames = playIntoAudioSource(signal, 3);
  assert.equal(frames, (3 * signal.length) / FRAME_48K);
});

test('the voice bench reads 16-bit WAVs of any rate and channel count and writes a 16 kHz mono copy for the aligner', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voice-bench-audio-'));
  try {
    for (const [rate, channels] of [[16000, 1], [44100, 2], [22050, 1], [48000, 2]] as const) {
      const file = path.join(dir, `in-${rate}-${channels}.wav`);
      const n = Math.round(rate * 0.7777);
      writeWav16(file, tone(n, rate), rate, channels);
      const clip = loadSpeechClip(file, path.join(dir, `work-${rate}-${channels}`));
      assert.equal(clip.sampleRate, rate);
      assert.equal(clip.pcm.length, n);
      const copy = readPcm16(clip.file16k);
      assert.equal(copy.sampleRate, 16000);
      assert.ok(Math.abs(copy.pcm.length - 0.7777 * 16000) <= 2, `16 kHz copy has ${copy.pcm.length} samples`);
      assert.ok(playIntoAudioSource(roundSignal(clip.pcm, clip.sampleRate).signal, 1) > 0);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the voice bench reads a WAV its own reader rejects (24-bit) through ffmpeg', { skip: spawnSync('ffmpeg', ['-version']).status !== 0 && 'ffmpeg not installed' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voice-bench-audio-'));
  try {
    const src = path.join(dir, 'in16.wav');
    const file = path.join(dir, 'in24.wav');
    writeWav16(src, tone(33333, 44100), 44100, 2);
    assert.equal(spawnSync('ffmpeg', ['-v', 'error', '-y', '-i', src, '-c:a', 'pcm_s24le', file]).status, 0);
    assert.throws(() => readPcm16(file));
    const clip = loadSpeechClip(file, path.join(dir, 'work'));
    assert.equal(clip.sampleRate, 16000);
    assert.ok(Math.abs(clip.pcm.length - (33333 * 16000) / 44100) <= 2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
