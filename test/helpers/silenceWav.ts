/** A WAV of digital silence for Chromium's fake microphone (a page that never becomes the active speaker). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Writes a 16-bit PCM mono WAV of digital silence. */
export function writeSilenceWav(file: string, seconds: number, rate = 48_000): void {
  const data = Buffer.alloc(seconds * rate * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  fs.writeFileSync(file, Buffer.concat([h, data]));
}

/** A silence WAV in a fresh temp directory; returns its path. */
export function tempSilenceWav(seconds = 3): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'silence-')), 'silence.wav');
  writeSilenceWav(file, seconds);
  return file;
}
