/**
 * Real speech with phone-level alignments (Node only): Debian `pocketsphinx-testdata` clips
 * (LibriVox "Sense and Sensibility" excerpts — public-domain recordings — plus CMU's short command
 * clips), their transcripts, and phone forced alignment with `pocketsphinx_continuous`:
 * a dictionary in which every phone is a word and a JSGF grammar of the expected phone sequence
 * (CMUdict pronunciations, alternatives allowed), so the recogniser can only place those phones;
 * `-time yes` prints each one's start/end (10 ms resolution) and any silence it inserted.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { arpabetToIpa, type TimedPhone } from '../visemes.ts';
import { MissingToolError } from './espeak.ts';

export const TESTDATA = '/usr/share/pocketsphinx/test/data';
export const CMUDICT = '/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict';
export const HMM = '/usr/share/pocketsphinx/model/en-us/en-us';

export interface RealClip {
  id: string;
  /** path of a 16 kHz mono WAV or headerless 16-bit PCM file */
  file: string;
  text: string;
  /** held out: never used for training, only for the reported scores */
  heldOut: boolean;
}

/**
 * The real clips. Transcripts: the package's own `librivox/transcription` and `cards.transcription`;
 * goforward / something / numbers / dhd.2934z are pocketsphinx's own recognition of them (not
 * verified by ear; they are training data only).
 * Held out: two LibriVox clips (9.3 s) never seen in training; the other three LibriVox clips (same
 * reader) and the command clips (other speakers) are training data.
 */
export function realClips(): RealClip[] {
  const lv = (n: string, text: string, heldOut: boolean): RealClip => ({ id: `librivox-${n}`, file: `${TESTDATA}/librivox/sense_and_sensibility_01_austen_64kb-${n}.wav`, text, heldOut });
  return [
    lv('0870', 'and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them', false),
    lv('0880', 'he was not an ill disposed young man', false),
    lv('0890', 'unless to be rather cold hearted and rather selfish is to be ill disposed', false),
    lv('0920', 'had he married a more a amiable woman he might have been made still more respectable than he was', true),
    lv('0930', 'he might even have been made amiable himself', true),
    { id: 'cards-001', file: `${TESTDATA}/cards/001.wav`, text: 'ten of clubs', heldOut: false },
    { id: 'cards-002', file: `${TESTDATA}/cards/002.wav`, text: 'four queen of clubs', heldOut: false },
    { id: 'cards-003', file: `${TESTDATA}/cards/003.wav`, text: 'seven of clubs', heldOut: false },
    { id: 'cards-004', file: `${TESTDATA}/cards/004.wav`, text: 'five five', heldOut: false },
    { id: 'cards-005', file: `${TESTDATA}/cards/005.wav`, text: 'eight of spades four of clubs seven of hearts', heldOut: false },
    { id: 'goforward', file: `${TESTDATA}/goforward.raw`, text: 'go forward ten meters', heldOut: false },
    { id: 'something', file: `${TESTDATA}/something.raw`, text: 'go somewhere and do something', heldOut: false },
    { id: 'numbers', file: `${TESTDATA}/numbers.raw`, text: 'thirty three four or six ninety two', heldOut: false },
    { id: 'dhd-2934z', file: `${TESTDATA}/tidigits/dhd.2934z.raw`, text: 'two nine three four zero', heldOut: false },
  ];
}

export function haveSphinx(): boolean {
  return fs.existsSync(`${TESTDATA}/librivox/fileids`) && fs.existsSync(CMUDICT) && fs.existsSync(`${HMM}/mdef`) && fs.existsSync('/usr/bin/pocketsphinx_continuous');
}

/** Reads a 16-bit PCM WAV (any rate/channels; channels averaged) or a headerless 16 kHz 16-bit file. */
export function readPcm16(file: string): { pcm: Float32Array; sampleRate: number } {
  const b = fs.readFileSync(file);
  if (b.length >= 44 && b.toString('ascii', 0, 4) === 'RIFF' && b.toString('ascii', 8, 12) === 'WAVE') {
    let off = 12, sampleRate = 16000, channels = 1, bits = 16;
    while (off + 8 <= b.length) {
      const id = b.toString('ascii', off, off + 4), size = b.readUInt32LE(off + 4);
      if (id === 'fmt ') {
        channels = b.readUInt16LE(off + 10);
        sampleRate = b.readUInt32LE(off + 12);
        bits = b.readUInt16LE(off + 22);
      } else if (id === 'data') {
        if (bits !== 16) throw new Error(`${file}: only 16-bit PCM WAV is supported`);
        const n = Math.floor(Math.min(size, b.length - off - 8) / 2 / channels);
        const pcm = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          let s = 0;
          for (let c = 0; c < channels; c++) s += b.readInt16LE(off + 8 + (i * channels + c) * 2);
          pcm[i] = s / channels / 32768;
        }
        return { pcm, sampleRate };
      }
      off += 8 + size + (size & 1);
    }
    throw new Error(`${file}: no data chunk`);
  }
  const n = b.length >> 1;
  const pcm = new Float32Array(n);
  for (let i = 0; i < n; i++) pcm[i] = b.readInt16LE(i * 2) / 32768;
  return { pcm, sampleRate: 16000 };
}

/** Writes 16-bit mono PCM WAV. */
export function writeWav(file: string, pcm: Float32Array, sampleRate: number): void {
  const b = Buffer.alloc(44 + pcm.length * 2);
  b.write('RIFF', 0, 'ascii');
  b.writeUInt32LE(36 + pcm.length * 2, 4);
  b.write('WAVEfmt ', 8, 'ascii');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(sampleRate, 24);
  b.writeUInt32LE(sampleRate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36, 'ascii');
  b.writeUInt32LE(pcm.length * 2, 40);
  for (let i = 0; i < pcm.length; i++) b.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(pcm[i] * 32767))), 44 + i * 2);
  fs.writeFileSync(file, b);
}

let dict: Map<string, string[][]> | null = null;
function cmudict(): Map<string, string[][]> {
  if (dict) return dict;
  dict = new Map();
  for (const line of fs.readFileSync(CMUDICT, 'utf8').split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 2) continue;
    const w = parts[0].replace(/\(\d+\)$/, '').toLowerCase();
    const pr = parts.slice(1).map((p) => p.replace(/[0-9]/g, ''));
    const l = dict.get(w);
    if (l) l.push(pr);
    else dict.set(w, [pr]);
  }
  return dict;
}

const PHONES = ['AA', 'AE', 'AH', 'AO', 'AW', 'AY', 'B', 'CH', 'D', 'DH', 'EH', 'ER', 'EY', 'F', 'G', 'HH', 'IH', 'IY', 'JH', 'K', 'L', 'M', 'N', 'NG', 'OW', 'OY', 'P', 'R', 'S', 'SH', 'T', 'TH', 'UH', 'UW', 'V', 'W', 'Y', 'Z', 'ZH'];

/** Phone forced alignment of `clip` with pocketsphinx. Returns IPA phones; silence as ''. */
export function alignClip(clip: RealClip, workDir: string): TimedPhone[] {
  if (!haveSphinx()) throw new MissingToolError('pocketsphinx, pocketsphinx-en-us and pocketsphinx-testdata are needed (apt-get install pocketsphinx pocketsphinx-en-us pocketsphinx-testdata)');
  fs.mkdirSync(workDir, { recursive: true });
  const d = cmudict();
  const words = clip.text.toLowerCase().split(/\s+/).filter(Boolean);
  const rule = words.map((w) => {
    const prons = d.get(w);
    if (!prons) throw new Error(`"${w}" is not in CMUdict`);
    const alts = [...new Set(prons.map((p) => p.join(' ')))];
    return alts.length === 1 ? alts[0] : `( ${alts.join(' | ')} )`;
  }).join(' ');
  const dictFile = path.join(workDir, 'phones.dict');
  fs.writeFileSync(dictFile, PHONES.map((p) => `${p} ${p}`).join('\n') + '\n');
  const gram = path.join(workDir, `${clip.id}.gram`);
  fs.writeFileSync(gram, `#JSGF V1.0;\ngrammar align;\npublic <s> = ${rule};\n`);
  const out = execFileSync('pocketsphinx_continuous', ['-infile', clip.file, '-hmm', HMM, '-jsgf', gram, '-dict', dictFile, '-time', 'yes', '-logfn', '/dev/null'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const phones: TimedPhone[] = [];
  for (const line of out.split('\n')) {
    const m = /^(\S+) (\d+\.\d+) (\d+\.\d+) /.exec(line.trim() + ' ');
    if (!m) continue;
    const name = m[1];
    const s = Math.round(Number(m[2]) * 1000), e = Math.round(Number(m[3]) * 1000) + 10; // end frame inclusive
    const ipa = PHONES.includes(name) ? arpabetToIpa(name) : '';
    if (name !== '<s>' && name !== '</s>' && !PHONES.includes(name) && !name.startsWith('<') && !name.startsWith('[') && !name.startsWith('+')) continue;
    phones.push({ ph: ipa, startMs: s, endMs: e });
  }
  if (phones.filter((p) => p.ph !== '').length === 0) throw new Error(`alignment of ${clip.id} failed`);
  return phones;
}
