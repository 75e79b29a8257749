/**
 * The voice bench's audio path, apart from the live run so it can be tested: reading a speech clip
 * (any WAV our reader or ffmpeg accepts: any rate, mono or stereo, any length), the 16 kHz mono copy
 * pocketsphinx aligns, and the 48 kHz signal of one round (clip + silence) cut into the 10 ms frames
 * an `RTCAudioSource` takes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readPcm16, writeWav } from '../models/audio2motion/data/sphinx.ts';

/** Samples per 10 ms at 48 kHz: the only frame size `RTCAudioSource.onData` accepts at that rate. */
export const FRAME_48K = 480;

export interface SpeechClip {
  /** Mono samples in [-1, 1]. */
  pcm: Float32Array;
  sampleRate: number;
  /** 16 kHz mono 16-bit WAV of the same clip (what pocketsphinx reads). */
  file16k: string;
}

/** Linear resampling (enough for a benchmark signal; ffmpeg does it properly when present). */
function resample(pcm: Float32Array, from: number, to: number): Float32Array {
  if (from === to) return pcm;
  const n = Math.floor((pcm.length * to) / from);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = (i * from) / to;
    const j = Math.floor(x);
    out[i] = (pcm[j] ?? 0) * (1 - (x - j)) + (pcm[j + 1] ?? pcm[j] ?? 0) * (x - j);
  }
  return out;
}

function ffmpegTo16k(file: string, out: string): boolean {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-nostdin', '-y', '-i', file, '-ac', '1', '-ar', '16000', '-c:a', 'pcm_s16le', '-f', 'wav', out], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

/**
 * Reads a speech clip and writes its 16 kHz mono copy into `workDir`. 16-bit PCM WAVs of any rate and
 * channel count are read directly; anything else (24-bit, float, other containers) through ffmpeg.
 */
export function loadSpeechClip(file: string, workDir: string): SpeechClip {
  fs.mkdirSync(workDir, { recursive: true });
  const file16k = path.join(workDir, 'speech-16k.wav');
  let pcm: Float32Array;
  let sampleRate: number;
  try {
    ({ pcm, sampleRate } = readPcm16(file));
  } catch (err) {
    if (!ffmpegTo16k(file, file16k)) throw new Error(`${file}: not a WAV our reader or ffmpeg can read (${(err as Error).message})`);
    ({ pcm, sampleRate } = readPcm16(file16k));
    return { pcm, sampleRate, file16k };
  }
  if (pcm.length === 0) throw new Error(`${file}: no audio samples`);
  if (!ffmpegTo16k(file, file16k)) writeWav(file16k, resample(pcm, sampleRate, 16000), 16000);
  return { pcm, sampleRate, file16k };
}

/**
 * One round of the live bench: the clip at 48 kHz then `gapS` of silence, zero-padded to a whole
 * number of 10 ms frames (a clip plus its gap is rarely one).
 */
export function roundSignal(pcm: Float32Array, sampleRate: number, gapS = 1.5): { signal: Int16Array; speechSamples: number } {
  const speech = resample(pcm, sampleRate, 48000);
  const gap = Math.round(48000 * gapS);
  const total = Math.ceil((speech.length + gap) / FRAME_48K) * FRAME_48K;
  const signal = new Int16Array(total);
  for (let i = 0; i < speech.length; i++) signal[i] = Math.round(32767 * Math.max(-1, Math.min(1, speech[i]!)));
  return { signal, speechSamples: speech.length };
}

/** The 10 ms frame of the looped signal that starts at sample `sent` (a multiple of {@link FRAME_48K}). */
export function frameAt(signal: Int16Array, sent: number): Int16Array {
  const pos = sent % signal.length;
  return signal.slice(pos, pos + FRAME_48K);
}
