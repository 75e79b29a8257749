/** A WAV of digital silence for Chromium's fake microphone (a page that never becomes the active speaker). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeWav } from '../../models/audio2motion/data/sphinx.ts';

/** Writes a 16-bit PCM mono WAV of digital silence. */
export function writeSilenceWav(file: string, seconds: number, rate = 48_000): void {
  writeWav(file, new Float32Array(Math.round(seconds * rate)), rate);
}

/** A silence WAV in a fresh temp directory; returns its path. */
export function tempSilenceWav(seconds = 3): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'silence-')), 'silence.wav');
  writeSilenceWav(file, seconds);
  return file;
}
