/**
 * Training / evaluation data for audio2motion (Node only): synthetic espeak-ng utterances with exact
 * phoneme timings, augmented; real pocketsphinx-testdata clips with forced phone alignments (train
 * clips augmented several times, held-out clips clean); noise-only clips. Everything is turned into
 * the same 16 kHz feature frames as inference (features.ts) and per-frame targets (visemes.ts).
 * Deterministic for a given seed (the only external programs, espeak-ng and pocketsphinx, are
 * deterministic).
 */
import fs from 'node:fs';
import path from 'node:path';
import { extractOffline, FEATURE_DIM, frameTimeMs, resampleOffline, SAMPLE_RATE, silenceFeature } from '../features.ts';
import { targetsFromPhones, unknownPhonemes, type TimedPhone } from '../visemes.ts';
import { augment, makeNoise, reverb } from './augment.ts';
import { pick, rng, sentence } from './corpus.ts';
import { ACCENTS, buildEspeakHelper, defaultCacheDir, listVariants, synthesize } from './espeak.ts';
import { alignClip, readPcm16, realClips, type RealClip } from './sphinx.ts';

export interface DataConfig {
  seed: number;
  /** synthetic training utterances */
  synthTrain: number;
  /** synthetic held-out utterances (held-out voice variants, clean and augmented) */
  synthHeldOut: number;
  /** noise-only clips (target: closed mouth, not speech) */
  noiseClips: number;
  /** copies of each real training clip (the first clean, the rest augmented) */
  realCopies: number;
  /** use the real clips at all (false: synthetic-only ablation) */
  realTrain: boolean;
  /** parallel espeak processes */
  concurrency: number;
  cacheDir: string;
}

export const FULL_DATA: Omit<DataConfig, 'cacheDir'> = { seed: 1234, synthTrain: 2600, synthHeldOut: 80, noiseClips: 200, realCopies: 40, realTrain: true, concurrency: 2 };
export const TINY_DATA: Omit<DataConfig, 'cacheDir'> = { seed: 1234, synthTrain: 3, synthHeldOut: 1, noiseClips: 1, realCopies: 1, realTrain: true, concurrency: 2 };

/** variants never used for synthetic training (held-out voices) */
export const HELD_OUT_VARIANTS = ['m7', 'f4', 'klatt4', 'Annie', 'Mike', 'edward'];

export type UttKind = 'synth' | 'real' | 'noise';
export interface Utterance {
  id: string;
  kind: UttKind;
  heldOut: boolean;
  /** [frames × FEATURE_DIM] */
  feats: Float32Array;
  /** [frames × 3] */
  mouth: Float32Array;
  viseme: Uint8Array;
  speech: Uint8Array;
  /** 16 kHz audio (kept for held-out utterances only, for the streaming evaluation) */
  pcm?: Float32Array;
  phones: TimedPhone[];
}

function framesFor(pcm16k: Float32Array, phones: TimedPhone[]): Pick<Utterance, 'feats' | 'mouth' | 'viseme' | 'speech'> {
  const feats = extractOffline(pcm16k);
  const n = feats.length / FEATURE_DIM;
  const times = new Float64Array(n);
  for (let t = 0; t < n; t++) times[t] = frameTimeMs(t);
  const tg = targetsFromPhones(phones, times);
  return { feats, ...tg };
}

function pausesOf(phones: TimedPhone[], n: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const p of phones) if (p.ph === '') out.push([Math.max(0, Math.round((p.startMs / 1000) * SAMPLE_RATE)), Math.min(n, Math.round((p.endMs / 1000) * SAMPLE_RATE))]);
  return out;
}

/** Pads with silence before/after (phones shifted, silence phones added). */
function pad(pcm: Float32Array, phones: TimedPhone[], leadMs: number, trailMs: number): { pcm: Float32Array; phones: TimedPhone[] } {
  const lead = Math.round((leadMs / 1000) * SAMPLE_RATE), trail = Math.round((trailMs / 1000) * SAMPLE_RATE);
  const out = new Float32Array(lead + pcm.length + trail);
  out.set(pcm, lead);
  const total = (out.length / SAMPLE_RATE) * 1000;
  const ph = phones.map((p) => ({ ph: p.ph, startMs: p.startMs + leadMs, endMs: p.endMs + leadMs }));
  const first = ph.length ? ph[0].startMs : total;
  const last = ph.length ? ph[ph.length - 1].endMs : 0;
  return { pcm: out, phones: [{ ph: '', startMs: 0, endMs: first }, ...ph, { ph: '', startMs: last, endMs: total }].filter((p) => p.endMs > p.startMs) };
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.max(1, limit) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

export interface GeneratedData {
  utterances: Utterance[];
  realAlignments: Record<string, TimedPhone[]>;
  stats: { synthSeconds: number; realSeconds: number; noiseSeconds: number; heldOutRealSeconds: number; unknownPhonemes: string[]; seconds: number };
}

export async function generateData(cfg: DataConfig, log: (s: string) => void = () => {}): Promise<GeneratedData> {
  const t0 = performance.now();
  const bin = buildEspeakHelper(cfg.cacheDir);
  const tmp = path.join(cfg.cacheDir, 'tmp');
  fs.mkdirSync(tmp, { recursive: true });
  const variants = listVariants();
  const trainVariants = variants.filter((v) => !HELD_OUT_VARIANTS.includes(v));
  const heldVariants = HELD_OUT_VARIANTS.filter((v) => variants.includes(v));
  const stats = { synthSeconds: 0, realSeconds: 0, noiseSeconds: 0, heldOutRealSeconds: 0, unknownPhonemes: [] as string[], seconds: 0 };
  const utterances: Utterance[] = [];

  // ---- synthetic speech
  interface Job { i: number; heldOut: boolean; seed: number }
  const jobs: Job[] = [];
  for (let i = 0; i < cfg.synthTrain; i++) jobs.push({ i, heldOut: false, seed: cfg.seed * 1000003 + i });
  for (let i = 0; i < cfg.synthHeldOut; i++) jobs.push({ i, heldOut: true, seed: cfg.seed * 1000003 + 500000 + i });
  const synth = await mapLimit(jobs, cfg.concurrency, async (job) => {
    const r = rng(job.seed);
    const variant = pick(r, job.heldOut && heldVariants.length ? heldVariants : trainVariants);
    const accent = pick(r, ACCENTS);
    const voice = r() < 0.12 ? accent : `${accent}+${variant}`;
    const rate = 115 * Math.exp(r() * Math.log(270 / 115));
    const text = sentence(r);
    const s = await synthesize(bin, text, { voice, rate, pitch: 15 + 75 * r(), range: 10 + 90 * r() }, tmp);
    const pcm16 = resampleOffline(s.pcm, s.sampleRate);
    const padded = pad(pcm16, s.phones, 50 + 900 * r() ** 2, 100 + 700 * r());
    const clean = job.heldOut && job.i % 2 === 0;
    const audio = clean ? padded.pcm : augment(r, padded.pcm, pausesOf(padded.phones, padded.pcm.length));
    const u: Utterance = { id: `synth-${job.heldOut ? 'heldout-' : ''}${job.i}-${voice}`, kind: 'synth', heldOut: job.heldOut, ...framesFor(audio, padded.phones), phones: padded.phones };
    if (job.heldOut) u.pcm = audio;
    return { u, seconds: audio.length / SAMPLE_RATE };
  });
  for (const s of synth) {
    utterances.push(s.u);
    stats.synthSeconds += s.seconds;
  }
  log(`synthetic: ${synth.length} utterances, ${(stats.synthSeconds / 60).toFixed(1)} min (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  // ---- real speech
  const realAlignments: Record<string, TimedPhone[]> = {};
  const clips: RealClip[] = realClips();
  for (const clip of clips) {
    if (!cfg.realTrain && !clip.heldOut) continue;
    const phones = alignClip(clip, path.join(cfg.cacheDir, 'align'));
    realAlignments[clip.id] = phones;
    const { pcm, sampleRate } = readPcm16(clip.file);
    const pcm16 = sampleRate === SAMPLE_RATE ? pcm : resampleOffline(pcm, sampleRate);
    if (clip.heldOut) {
      utterances.push({ id: `real-${clip.id}`, kind: 'real', heldOut: true, ...framesFor(pcm16, phones), pcm: pcm16, phones });
      stats.heldOutRealSeconds += pcm16.length / SAMPLE_RATE;
      continue;
    }
    const r = rng(cfg.seed * 7919 + clip.id.length * 131 + clips.indexOf(clip));
    for (let c = 0; c < cfg.realCopies; c++) {
      const audio = c === 0 ? pcm16 : augment(r, pcm16, pausesOf(phones, pcm16.length));
      utterances.push({ id: `real-${clip.id}-${c}`, kind: 'real', heldOut: false, ...framesFor(audio, phones), phones });
      stats.realSeconds += audio.length / SAMPLE_RATE;
    }
  }
  log(`real: ${Object.keys(realAlignments).length} clips aligned, ${stats.realSeconds.toFixed(1)} s training audio (with copies), ${stats.heldOutRealSeconds.toFixed(1)} s held out`);

  // ---- noise only
  const rn = rng(cfg.seed * 31 + 7);
  for (let i = 0; i < cfg.noiseClips; i++) {
    const n = Math.round(SAMPLE_RATE * (1 + 3 * rn()));
    let x = makeNoise(rn, n);
    if (rn() < 0.3) x = reverb(rn, x).slice();
    const level = 10 ** (-(10 + 55 * rn()) / 20);
    for (let k = 0; k < n; k++) x[k] = Math.max(-1, Math.min(1, x[k] * level));
    if (rn() < 0.15) x.fill(0, 0, Math.floor(n * rn()));
    const phones: TimedPhone[] = [{ ph: '', startMs: 0, endMs: (n / SAMPLE_RATE) * 1000 }];
    utterances.push({ id: `noise-${i}`, kind: 'noise', heldOut: i % 10 === 9, ...framesFor(x, phones), phones, pcm: i % 10 === 9 ? x : undefined });
    stats.noiseSeconds += n / SAMPLE_RATE;
  }
  stats.unknownPhonemes = unknownPhonemes();
  stats.seconds = (performance.now() - t0) / 1000;
  if (stats.unknownPhonemes.length) log(`unmapped phoneme names (mapped to a neutral vowel): ${stats.unknownPhonemes.join(' ')}`);
  return { utterances, realAlignments, stats };
}

/**
 * Training arrays: utterances laid end to end, each preceded by `past` and followed by `future`
 * frames of digital-silence features (what the streaming model sees at stream start), so every
 * window [t − past, t + future] stays inside one utterance. `index` lists the frames with targets.
 */
export interface Packed {
  feats: Float32Array;
  mouth: Float32Array;
  viseme: Uint8Array;
  speech: Uint8Array;
  index: Int32Array;
  /** per utterance: [first target frame, frame count] */
  spans: Array<[number, number]>;
}

export function pack(utts: Utterance[], past: number, future: number): Packed {
  let total = 0, targets = 0;
  for (const u of utts) {
    const n = u.feats.length / FEATURE_DIM;
    total += past + n + future;
    targets += n;
  }
  const feats = new Float32Array(total * FEATURE_DIM);
  const mouth = new Float32Array(total * 3);
  const viseme = new Uint8Array(total);
  const speech = new Uint8Array(total);
  const index = new Int32Array(targets);
  const spans: Array<[number, number]> = [];
  const sil = silenceFeature();
  let f = 0, k = 0;
  for (const u of utts) {
    const n = u.feats.length / FEATURE_DIM;
    for (let i = 0; i < past; i++) feats.set(sil, (f + i) * FEATURE_DIM);
    f += past;
    feats.set(u.feats, f * FEATURE_DIM);
    mouth.set(u.mouth, f * 3);
    viseme.set(u.viseme, f);
    speech.set(u.speech, f);
    spans.push([f, n]);
    for (let i = 0; i < n; i++) index[k++] = f + i;
    f += n;
    for (let i = 0; i < future; i++) feats.set(sil, (f + i) * FEATURE_DIM);
    f += future;
  }
  return { feats, mouth, viseme, speech, index, spans };
}

export { defaultCacheDir };
