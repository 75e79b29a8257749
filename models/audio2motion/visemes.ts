/**
 * Phoneme → viseme → expression-code targets, with coarticulation (pure TypeScript).
 *
 * Phonemes arrive as IPA (espeak-ng phoneme events with espeakINITIALIZE_PHONEME_IPA) or ARPAbet
 * (pocketsphinx / CMUdict, converted by `arpabetToIpa`). Each phoneme maps to one of 15 visemes
 * (the Oculus/MPEG-4-style set below) and each viseme to a mouth pose in the expression code of
 * models/face/expression-code.ts: jawOpen (1 = 0.45 IOD inner-lip gap), mouthWide (+ stretch,
 * − pucker/rounding, 1 = 0.15 IOD corner distance change), smile (corner lift, 1 = 0.08 IOD).
 * Diphthongs are split into two targets (60 % / 40 % of their duration).
 *
 * Coarticulation (`targetsFromPhones`): a dominance blend in the spirit of Cohen & Massaro (1993):
 *   pose(t) = Σ_p D_p(t)·T_p / Σ_p D_p(t),  D_p(t) = α_p · exp(−d_p(t) / τ_p)
 * where d_p(t) is the distance (ms) from t to phoneme p's interval (0 inside it). Bilabials p/b/m
 * have a high dominance (α = 6, τ = 18 ms) so the lips really close even in fast speech; labiodentals
 * α = 3; vowels α = 1, τ = 45 ms (the jaw anticipates and carries over); other consonants α = 0.5,
 * τ = 30 ms (the jaw passes through them, their lip shape borrows from the vowels around them);
 * silence α = 1.5, τ = 60 ms (mouth closes during pauses). Then a 3-tap [¼ ½ ¼] smoothing at 10 ms.
 */

export const VISEMES = ['sil', 'PP', 'FF', 'TH', 'DD', 'kk', 'CH', 'SS', 'nn', 'RR', 'aa', 'E', 'ih', 'oh', 'ou'] as const;
export type Viseme = (typeof VISEMES)[number];
export const NUM_VISEMES = VISEMES.length;
export const VISEME_INDEX: { readonly [K in Viseme]: number } = Object.fromEntries(VISEMES.map((v, i) => [v, i])) as { [K in Viseme]: number };

/** mouth targets per viseme: [jawOpen, mouthWide, smile] */
export const VISEME_POSE: { readonly [K in Viseme]: readonly [number, number, number] } = {
  sil: [0, 0, 0], //          closed, relaxed
  PP: [-0.08, -0.05, 0], //   p b m: lips pressed together
  FF: [0.05, 0, 0], //        f v: lower lip under the upper teeth
  TH: [0.12, 0.05, 0], //     θ ð: tongue between the teeth
  DD: [0.15, 0.1, 0], //      t d: small opening
  kk: [0.2, 0.05, 0], //      k g ŋ h: back closure, jaw slightly open
  CH: [0.14, -0.45, 0], //    ʃ ʒ tʃ dʒ: lips protruded
  SS: [0.07, 0.25, 0], //     s z: teeth nearly together, slightly spread
  nn: [0.13, 0.1, 0], //      n l: small opening
  RR: [0.18, -0.35, 0], //    ɹ: slight rounding
  aa: [0.6, 0.15, 0], //      ɑ a æ ʌ: open jaw
  E: [0.38, 0.35, 0.1], //    ɛ e ɜ: mid-open, spread
  ih: [0.22, 0.45, 0.15], //  ɪ i j: close, spread
  oh: [0.45, -0.45, 0], //    ɔ o ɒ: open, rounded
  ou: [0.2, -0.8, 0], //      u ʊ w: close, strongly rounded
};

export const MOUTH_OUTPUTS = ['jawOpen', 'mouthWide', 'smile'] as const;

interface PhonemeSpec {
  /** one or two (diphthong) visemes */
  v: Viseme[];
  /** jawOpen scale (reduced vowels are smaller) */
  jaw?: number;
}

/** IPA (espeak-ng English output, length marks stripped) → visemes */
const IPA: Record<string, PhonemeSpec> = {};
function def(keys: string, v: Viseme | Viseme[], jaw?: number): void {
  for (const k of keys.split(' ')) IPA[k] = { v: Array.isArray(v) ? v : [v], jaw };
}
def('p b m ɱ', 'PP');
def('f v', 'FF');
def('θ ð', 'TH');
def('t d ɾ ʔ t̪ d̪', 'DD');
def('k ɡ g ŋ x h ɦ ç', 'kk');
def('ʃ ʒ tʃ dʒ ʧ ʤ', 'CH');
def('s z', 'SS');
def('n l ɫ ɬ n̩ l̩', 'nn');
def('ɹ r ɻ ʁ ɚ ɝ', 'RR');
def('ɑ a æ ʌ ɐ ä ɒ̃ ɑ̃', 'aa');
def('ə ᵻ ɵ ɘ', 'E', 0.6);
def('ɛ e ɜ œ ø ɛ̃', 'E');
def('ɪ i j ɨ y ʏ', 'ih');
def('ɔ o ɒ ɔ̃ õ', 'oh');
def('u ʊ w ʉ ɯ ʍ ɥ', 'ou');
// diphthongs and r-coloured / syllabic combinations
def('aɪ aj', ['aa', 'ih']);
def('aʊ aw æʊ ʌʊ ʌʉ', ['aa', 'ou']);
def('eɪ ej ei əɪ', ['E', 'ih']);
def('oʊ əʊ ow əu oʊ', ['oh', 'ou']);
def('ɔɪ oɪ', ['oh', 'ih']);
def('ɪə iə', ['ih', 'E']);
def('eə ɛə', ['E', 'E']);
def('oə ɔə', ['oh', 'E']);
def('ɑə', ['aa', 'E']);
def('ʲ', 'ih', 0.5);
def('ʊə uə', ['ou', 'E']);
def('aɪə aɪɚ', ['aa', 'ih']);
def('aʊə', ['aa', 'ou']);
def('əl', ['E', 'nn']);
def('ɑːɹ ɑɹ', ['aa', 'RR']);
def('ɔːɹ ɔɹ oːɹ', ['oh', 'RR']);
def('ɛɹ eɹ', ['E', 'RR']);
def('ɪɹ iɹ', ['ih', 'RR']);
def('ʊɹ uɹ ʉɹ', ['ou', 'RR']);
def('ʌɹ', ['aa', 'RR']);
def('əɹ', ['E', 'RR']);

/** ARPAbet (CMUdict, stress digits stripped) → IPA */
export const ARPABET_TO_IPA: Readonly<Record<string, string>> = {
  AA: 'ɑ', AE: 'æ', AH: 'ʌ', AO: 'ɔ', AW: 'aʊ', AY: 'aɪ', B: 'b', CH: 'tʃ', D: 'd', DH: 'ð', EH: 'ɛ',
  ER: 'ɚ', EY: 'eɪ', F: 'f', G: 'ɡ', HH: 'h', IH: 'ɪ', IY: 'i', JH: 'dʒ', K: 'k', L: 'l', M: 'm',
  N: 'n', NG: 'ŋ', OW: 'oʊ', OY: 'ɔɪ', P: 'p', R: 'ɹ', S: 's', SH: 'ʃ', T: 't', TH: 'θ', UH: 'ʊ',
  UW: 'u', V: 'v', W: 'w', Y: 'j', Z: 'z', ZH: 'ʒ',
};

export function arpabetToIpa(p: string): string {
  const k = p.replace(/[0-9]/g, '').toUpperCase();
  return ARPABET_TO_IPA[k] ?? '';
}

/** Silence / pause / noise markers from either tool. */
export function isSilence(ph: string): boolean {
  return ph === '' || ph === '_' || ph === 'SIL' || ph === 'sil' || ph === '<sil>' || ph.startsWith('+') || ph === '<s>' || ph === '</s>' || /^_+:?$/.test(ph);
}

const unknown = new Set<string>();
/** Unmapped phoneme names seen so far (for data-generation logs). */
export function unknownPhonemes(): string[] {
  return [...unknown];
}

/** IPA phoneme → viseme spec; null for silence. Unknown names fall back to their first letter, then to 'E'. */
export function phonemeSpec(ipa: string): PhonemeSpec | null {
  if (isSilence(ipa)) return null;
  const clean = ipa.replace(/[ˈˌ'",%=.ˑ̆:]/g, '');
  if (clean === '') return null;
  const tries = [clean, clean.replace(/ː/g, ''), clean.replace(/ː/g, '').replace(/[\u0300-\u036f]/g, '')];
  for (const t of tries) if (IPA[t]) return IPA[t];
  const noLen = tries[2];
  // unknown combination: longest known prefix, then the rest as a second target (diphthong)
  for (let l = noLen.length - 1; l >= 1; l--) {
    const a = IPA[noLen.slice(0, l)];
    if (!a) continue;
    const b = IPA[noLen.slice(l)];
    const spec: PhonemeSpec = b ? { v: [a.v[0], b.v[b.v.length - 1]], jaw: a.jaw } : a;
    IPA[noLen] = spec;
    return spec;
  }
  unknown.add(ipa);
  return { v: ['E'], jaw: 0.6 };
}

export interface TimedPhone {
  /** IPA name ('' = silence) */
  ph: string;
  startMs: number;
  endMs: number;
}

interface Seg {
  start: number;
  end: number;
  viseme: number;
  pose: [number, number, number];
  alpha: number;
  tau: number;
}

function segsFromPhones(phones: TimedPhone[]): Seg[] {
  const segs: Seg[] = [];
  for (const p of phones) {
    if (!(p.endMs > p.startMs)) continue;
    const spec = phonemeSpec(p.ph);
    if (!spec) {
      segs.push({ start: p.startMs, end: p.endMs, viseme: 0, pose: [0, 0, 0], alpha: 1.5, tau: 60 });
      continue;
    }
    const parts = spec.v.length === 1 ? [[0, 1]] : [[0, 0.6], [0.6, 1]];
    spec.v.forEach((v, i) => {
      const vi = VISEME_INDEX[v];
      const base = VISEME_POSE[v];
      const pose: [number, number, number] = [base[0] * (spec.jaw ?? 1), base[1], base[2]];
      const dur = p.endMs - p.startMs;
      const isVowel = vi >= VISEME_INDEX.aa;
      const alpha = v === 'PP' ? 6 : v === 'FF' ? 3 : isVowel ? 1 : 0.5;
      const tau = v === 'PP' ? 18 : v === 'FF' ? 22 : isVowel ? 45 : 30;
      segs.push({ start: p.startMs + dur * parts[i][0], end: p.startMs + dur * parts[i][1], viseme: vi, pose, alpha, tau });
    });
  }
  return segs;
}

export interface FrameTargets {
  /** [frames × 3] jawOpen, mouthWide, smile */
  mouth: Float32Array;
  /** [frames] viseme index of the phoneme under the frame centre (0 = silence) */
  viseme: Uint8Array;
  /** [frames] 1 inside a (non-silence) phoneme, else 0 */
  speech: Uint8Array;
}

/**
 * Per-frame targets at the given frame times (ms). Frames outside every phoneme are silence.
 */
export function targetsFromPhones(phones: TimedPhone[], frameTimes: ArrayLike<number>): FrameTargets {
  const n = frameTimes.length;
  const segs = segsFromPhones(phones).sort((a, b) => a.start - b.start);
  const mouth = new Float32Array(n * 3);
  const viseme = new Uint8Array(n);
  const speech = new Uint8Array(n);
  const raw = new Float32Array(n * 3);
  let lo = 0;
  for (let f = 0; f < n; f++) {
    const t = frameTimes[f];
    while (lo < segs.length && segs[lo].end < t - 400) lo++;
    let wsum = 1e-3 * 1.5; // a faint silence prior (pose 0) outside everything
    let a0 = 0, a1 = 0, a2 = 0;
    let vis = 0;
    for (let i = lo; i < segs.length; i++) {
      const s = segs[i];
      if (s.start > t + 400) break;
      const d = t < s.start ? s.start - t : t > s.end ? t - s.end : 0;
      if (d === 0) vis = s.viseme;
      const w = s.alpha * Math.exp(-d / s.tau);
      wsum += w;
      a0 += w * s.pose[0];
      a1 += w * s.pose[1];
      a2 += w * s.pose[2];
    }
    raw[f * 3] = a0 / wsum;
    raw[f * 3 + 1] = a1 / wsum;
    raw[f * 3 + 2] = a2 / wsum;
    viseme[f] = vis;
    speech[f] = vis === 0 ? 0 : 1;
  }
  for (let f = 0; f < n; f++) {
    const a = Math.max(0, f - 1), b = Math.min(n - 1, f + 1);
    for (let c = 0; c < 3; c++) mouth[f * 3 + c] = 0.25 * raw[a * 3 + c] + 0.5 * raw[f * 3 + c] + 0.25 * raw[b * 3 + c];
  }
  return { mouth, viseme, speech };
}
