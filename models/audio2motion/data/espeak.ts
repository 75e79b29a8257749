/**
 * espeak-ng synthetic speech with exact per-phoneme timings (Node only).
 *
 * The helper `espeak-phonemes.c` (next to this file) is compiled on first use with the system C
 * compiler against libespeak-ng-dev into a cache directory (never into the repository). It speaks
 * one utterance through libespeak-ng with espeakINITIALIZE_PHONEME_EVENTS | PHONEME_IPA and
 * reports each phoneme's start (audio_position, ms) next to the PCM.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TimedPhone } from '../visemes.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const HELPER_SOURCE = path.join(here, 'espeak-phonemes.c');

export function defaultCacheDir(): string {
  return process.env['AUDIO2MOTION_CACHE'] ?? path.join(os.tmpdir(), 'avatar-sfu-audio2motion');
}

export class MissingToolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingToolError';
  }
}

/** Compiles the helper (once per source version) and returns the binary path. */
export function buildEspeakHelper(cacheDir = defaultCacheDir()): string {
  const src = fs.readFileSync(HELPER_SOURCE);
  let h = 0;
  for (const b of src) h = (Math.imul(h, 31) + b) >>> 0;
  const bin = path.join(cacheDir, `espeak-phonemes-${h.toString(16)}`);
  if (fs.existsSync(bin)) return bin;
  if (!fs.existsSync('/usr/include/espeak-ng/speak_lib.h')) {
    throw new MissingToolError('libespeak-ng-dev is not installed (apt-get install espeak-ng libespeak-ng-dev)');
  }
  fs.mkdirSync(cacheDir, { recursive: true });
  const cc = ['cc', 'gcc', 'g++'].find((c) => {
    try {
      execFileSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  if (!cc) throw new MissingToolError('no C compiler (cc/gcc/g++) found');
  const tmp = `${bin}.${process.pid}.tmp`;
  const args = cc === 'g++' ? ['-x', 'c', '-O2', '-o', tmp, HELPER_SOURCE, '-lespeak-ng'] : ['-O2', '-o', tmp, HELPER_SOURCE, '-lespeak-ng'];
  execFileSync(cc, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  fs.renameSync(tmp, bin);
  return bin;
}

export interface EspeakParams {
  /** e.g. "en-us+f3" */
  voice: string;
  /** words per minute (80–450) */
  rate: number;
  /** 0–100 */
  pitch: number;
  /** pitch range 0–100 */
  range: number;
}

export interface SynthResult {
  /** mono float PCM */
  pcm: Float32Array;
  sampleRate: number;
  phones: TimedPhone[];
  /** word start times (ms) */
  words: number[];
}

/**
 * Speaks `text`. Phoneme intervals run from one event to the next (the last one to the end of the
 * audio). Stops/affricates: espeak-ng reports the release; the closure silence just before it is
 * moved into the stop (see `attachClosures`), so bilabial closures are labelled where the lips shut.
 */
export async function synthesize(bin: string, text: string, p: EspeakParams, tmpDir: string): Promise<SynthResult> {
  fs.mkdirSync(tmpDir, { recursive: true });
  const raw = path.join(tmpDir, `u-${process.pid}-${Math.random().toString(36).slice(2)}.raw`);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(bin, [p.voice, String(Math.round(p.rate)), String(Math.round(p.pitch)), String(Math.round(p.range)), raw], { stdio: ['pipe', 'pipe', 'pipe'] });
    let so = '', se = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { so += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { se += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(so) : reject(new Error(`espeak-phonemes exited ${code}: ${se.trim()}`))));
    child.stdin.end(text);
  });
  const buf = fs.readFileSync(raw);
  fs.rmSync(raw, { force: true });
  const i16 = new Int16Array(buf.buffer, buf.byteOffset, buf.length >> 1);
  const pcm = new Float32Array(i16.length);
  for (let i = 0; i < i16.length; i++) pcm[i] = i16[i] / 32768;
  let sampleRate = 22050;
  const events: { ms: number; ph: string }[] = [];
  const words: number[] = [];
  for (const line of out.split('\n')) {
    if (line.startsWith('rate ')) { sampleRate = Number(line.slice(5)); continue; }
    const tab = line.indexOf('\t');
    if (tab < 0) continue;
    const ms = Number(line.slice(0, tab));
    const ph = line.slice(tab + 1);
    if (ph === '#word') { words.push(ms); continue; }
    events.push({ ms, ph });
  }
  const durMs = (pcm.length / sampleRate) * 1000;
  const phones: TimedPhone[] = [];
  for (let i = 0; i < events.length; i++) {
    const s = events[i].ms, e = i + 1 < events.length ? events[i + 1].ms : durMs;
    if (e > s) phones.push({ ph: events[i].ph, startMs: s, endMs: Math.min(e, durMs) });
  }
  if (phones.length && phones[0].startMs > 0) phones.unshift({ ph: '', startMs: 0, endMs: phones[0].startMs });
  return { pcm, sampleRate, phones: attachClosures(phones, pcm, sampleRate), words };
}

const STOPS = new Set(['p', 'b', 't', 'd', 'k', 'ɡ', 'g', 'tʃ', 'dʒ', 'ʔ']);

/** Moves the (near-)silent closure that precedes a stop's release into the stop's interval. */
export function attachClosures(phones: TimedPhone[], pcm: Float32Array, sr: number): TimedPhone[] {
  const step = Math.round(sr * 0.0025);
  const quiet = (ms: number) => {
    const i0 = Math.floor((ms / 1000) * sr);
    let e = 0;
    for (let i = i0; i < Math.min(pcm.length, i0 + step); i++) e += pcm[i] * pcm[i];
    return e / step < 1e-6; // −60 dBFS
  };
  for (let i = 1; i < phones.length; i++) {
    const p = phones[i], prev = phones[i - 1];
    if (!STOPS.has(p.ph.replace(/[ˈˌː]/g, ''))) continue;
    let t = p.startMs - 2.5;
    const limit = Math.max(prev.startMs + 10, p.startMs - 150);
    while (t > limit && quiet(t)) t -= 2.5;
    t += 2.5;
    if (t < p.startMs - 5) {
      prev.endMs = t;
      p.startMs = t;
    }
  }
  return phones.filter((p) => p.endMs > p.startMs);
}

/** Voices: espeak-ng English accents × variants (no MBROLA). */
export const ACCENTS = ['en-us', 'en', 'en-gb-scotland', 'en-gb-x-rp', 'en-gb-x-gbclan', 'en-gb-x-gbcwmd', 'en-029', 'en-us-nyc'];
export function listVariants(): string[] {
  const dirs = ['/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v', '/usr/lib/aarch64-linux-gnu/espeak-ng-data/voices/!v', '/usr/share/espeak-ng-data/voices/!v'];
  for (const d of dirs) {
    if (fs.existsSync(d)) return fs.readdirSync(d).filter((f) => /^[A-Za-z0-9_-]+$/.test(f)).sort();
  }
  return ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'f1', 'f2', 'f3', 'f4', 'f5', 'klatt', 'klatt2', 'klatt3', 'croak', 'whisper'];
}
