/**
 * Held-out scores for audio2motion (Node only), computed with onnxruntime-node on the exported ONNX
 * file (so the export itself is what gets measured).
 *
 *   mouth_corr     Pearson correlation of predicted vs. phoneme-derived jawOpen over all frames
 *   jaw_mae        mean absolute jawOpen error (expression-code units)
 *   wide_corr      Pearson correlation of mouthWide (rounding vs. spreading)
 *   viseme_acc     frame accuracy of the 15-way viseme output (silence included)
 *   viseme_acc_speech  the same over speech frames only
 *   viseme_group_acc   accuracy over 5 groups: silence, lips closed (p b m), open vowels (aa E oh),
 *                  rounded (ou RR CH), other consonants / close vowels
 *   voiced_acc     speech / non-speech frame accuracy at 0.5
 *   energy_corr    baseline: correlation of the frame RMS amplitude with jawOpen (what an
 *                  "open the mouth when it is loud" avatar would score)
 */
import { FEATURE_DIM, N_MELS } from './features.ts';
import { windowFrames, type ArchConfig } from './onnx-export.ts';
import { ort, SyncSession } from './ort-sync.ts';
import { NUM_VISEMES, VISEME_INDEX } from './visemes.ts';
import type { MotionOutput } from './Audio2Motion.ts';
import type { Packed, Utterance } from './data/dataset.ts';

export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let sa = 0, sb = 0;
  for (let i = 0; i < n; i++) { sa += a[i]; sb += b[i]; }
  const ma = sa / n, mb = sb / n;
  let c = 0, va = 0, vb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] - ma, y = b[i] - mb;
    c += x * y; va += x * x; vb += y * y;
  }
  return va > 0 && vb > 0 ? c / Math.sqrt(va * vb) : 0;
}

const GROUP: number[] = (() => {
  const g = new Array<number>(NUM_VISEMES).fill(4);
  g[VISEME_INDEX.sil] = 0;
  g[VISEME_INDEX.PP] = 1;
  for (const v of ['aa', 'E', 'oh'] as const) g[VISEME_INDEX[v]] = 2;
  for (const v of ['ou', 'RR', 'CH'] as const) g[VISEME_INDEX[v]] = 3;
  return g;
})();

export interface Predictions {
  mouth: Float32Array;
  viseme: Uint8Array;
  voiced: Float32Array;
}

/** Runs the ONNX model on every target frame of `p` (batches of 512). */
export function predictPacked(session: SyncSession, p: Packed, arch: ArchConfig): Predictions {
  const W = windowFrames(arch), F = FEATURE_DIM;
  const n = p.index.length;
  const mouth = new Float32Array(n * 3), viseme = new Uint8Array(n), voiced = new Float32Array(n);
  const B = 512;
  const buf = new Float32Array(B * W * F);
  for (let s = 0; s < n; s += B) {
    const m = Math.min(B, n - s);
    for (let j = 0; j < m; j++) {
      const f = p.index[s + j];
      buf.set(p.feats.subarray((f - arch.past) * F, (f + arch.future + 1) * F), j * W * F);
    }
    const out = session.run({ features: new ort.Tensor('float32', buf.subarray(0, m * W * F), [m, W, F]) });
    const mo = out['mouth'].data as Float32Array, vi = out['viseme'].data as Float32Array, vo = out['voiced'].data as Float32Array;
    mouth.set(mo.subarray(0, m * 3), s * 3);
    voiced.set(vo.subarray(0, m), s);
    for (let j = 0; j < m; j++) {
      let best = 0;
      for (let k = 1; k < NUM_VISEMES; k++) if (vi[j * NUM_VISEMES + k] > vi[j * NUM_VISEMES + best]) best = k;
      viseme[s + j] = best;
    }
  }
  return { mouth, viseme, voiced };
}

export interface Scores {
  frames: number;
  mouth_corr: number;
  jaw_mae: number;
  wide_corr: number;
  viseme_acc: number;
  viseme_acc_speech: number;
  viseme_group_acc: number;
  voiced_acc: number;
  energy_corr: number;
}

export function score(p: Packed, pred: Predictions): Scores {
  const n = p.index.length;
  const jawT = new Float32Array(n), jawP = new Float32Array(n), wideT = new Float32Array(n), wideP = new Float32Array(n), rms = new Float32Array(n);
  let mae = 0, acc = 0, accS = 0, nS = 0, gAcc = 0, vAcc = 0;
  for (let i = 0; i < n; i++) {
    const f = p.index[i];
    jawT[i] = p.mouth[f * 3];
    jawP[i] = pred.mouth[i * 3];
    wideT[i] = p.mouth[f * 3 + 1];
    wideP[i] = pred.mouth[i * 3 + 1];
    rms[i] = Math.exp(0.5 * p.feats[f * FEATURE_DIM + N_MELS]);
    mae += Math.abs(jawT[i] - jawP[i]);
    const tv = p.viseme[f], pv = pred.viseme[i];
    if (tv === pv) acc++;
    if (GROUP[tv] === GROUP[pv]) gAcc++;
    if (p.speech[f]) { nS++; if (tv === pv) accS++; }
    if ((pred.voiced[i] > 0.5 ? 1 : 0) === p.speech[f]) vAcc++;
  }
  return {
    frames: n,
    mouth_corr: pearson(jawP, jawT),
    jaw_mae: mae / Math.max(1, n),
    wide_corr: pearson(wideP, wideT),
    viseme_acc: acc / Math.max(1, n),
    viseme_acc_speech: accS / Math.max(1, nS),
    viseme_group_acc: gAcc / Math.max(1, n),
    voiced_acc: vAcc / Math.max(1, n),
    energy_corr: pearson(rms, jawT),
  };
}

/**
 * Scores of the full streaming API output (gating, post-processing) against the utterances' targets,
 * pooled over all frames of all utterances. "Silence" frames are ≥ 100 ms away from any speech frame.
 */
export function scoreStream(items: Array<{ u: Utterance; frames: MotionOutput[] }>): { frames: number; mouth_corr: number; jaw_mae: number; viseme_acc: number; mean_jaw_in_silence: number; max_jaw_in_silence: number } {
  const jp: number[] = [], jt: number[] = [];
  let mae = 0, acc = 0, silSum = 0, silN = 0, silMax = 0;
  for (const { u, frames } of items) {
    const n = Math.min(u.viseme.length, frames.length);
    for (let i = 0; i < n; i++) {
      const p = frames[i].expression[0], t = u.mouth[i * 3];
      jp.push(p);
      jt.push(t);
      mae += Math.abs(p - t);
      if (frames[i].viseme === u.viseme[i]) acc++;
      if (u.speech[i] === 0) {
        let near = false;
        for (let k = Math.max(0, i - 10); k <= Math.min(n - 1, i + 10); k++) if (u.speech[k]) { near = true; break; }
        if (!near) { silSum += p; silN++; silMax = Math.max(silMax, p); }
      }
    }
  }
  const n = jp.length;
  return { frames: n, mouth_corr: pearson(jp, jt), jaw_mae: mae / Math.max(1, n), viseme_acc: acc / Math.max(1, n), mean_jaw_in_silence: silN ? silSum / silN : 0, max_jaw_in_silence: silMax };
}
