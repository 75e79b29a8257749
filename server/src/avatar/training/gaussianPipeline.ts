/**
 * `npm run train -- gaussian`: clip → prepared frames (prepareClip) → fitted Gaussian head
 * (models/gaussian/train.ts) → held-out scores → one asset file (written atomically).
 * Also used by the benchmark, which then scores the result against the mesh generator.
 */
import path from 'node:path';
import { prepareClip, type ClipFrame, type PreparedClip, type PrepareClipOptions } from './prepareClip.ts';
import { trainGaussianHead, type CurvePoint, type EvaluationEvent, type TrainingFrame, type TrainOptions } from '../../../../models/gaussian/train.ts';
import type { GaussianHead } from '../../../../models/gaussian/head.ts';
import { writeHeadAsset, HEAD_CODE_VERSION } from '../../../../models/gaussian/headAsset.ts';
import { faceMask, psnrBytes, ssimBytes } from '../../../../models/gaussian/metrics.ts';
import { LossState } from '../../../../models/gaussian/loss.ts';

export interface GaussianPipelineOptions {
  clip: string;
  train?: [number, number];
  test?: [number, number] | null;
  size?: number;
  out?: string;
  minutes?: number;
  iterations?: number;
  gaussians?: number;
  seed?: number;
  threads?: number;
  /** trainer options beyond the common ones (models/gaussian/train.ts) */
  trainer?: Partial<Pick<TrainOptions, 'squaredOutsideFace' | 'squaredInsideFace' | 'deltaL2' | 'colorDeltas' | 'ssimLambda' | 'mouthWeight' | 'detailSize' | 'validationShare' | 'evaluations'>>;
  /** at every evaluation of the trainer; `previewTruth` is the held-out frame `e.preview` renders (size² RGBA) */
  onEvaluation?: (e: EvaluationEvent & { previewTruth?: Uint8Array }) => void;
  /** held-out frames scored during training (the curve), default 8 */
  curveFrames?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** reuse an already prepared clip (the benchmark prepares once) */
  prepared?: PreparedClip;
  prepare?: Partial<PrepareClipOptions>;
}

export interface HeldOutScores {
  frames: number;
  psnr: number;
  ssim: number;
  facePsnr: number;
  /** per frame, in clip order */
  perFrame: { t: number; psnr: number; ssim: number; facePsnr: number }[];
}

export interface GaussianPipelineResult {
  clip: PreparedClip;
  head: GaussianHead;
  out: string | null;
  assetBytes: number;
  iterations: number;
  /** iteration of the returned (best-validation) snapshot, and the validation frames that chose it */
  bestIteration: number;
  validationFrames: number;
  trainSeconds: number;
  threads: number;
  msPerIteration: number;
  peakRssMb: number;
  curve: CurvePoint[];
  heldOut: HeldOutScores | null;
}

export function toTrainingFrame(f: ClipFrame): TrainingFrame {
  return { rgba: f.rgba, motion: f.motion, landmarks: f.landmarks, t: f.t };
}

/** Score a head on frames: each rendered from the motion tracked on it. */
export function scoreHead(head: GaussianHead, frames: readonly ClipFrame[], size: number): HeldOutScores {
  const n = size * size;
  const ls = new LossState(size);
  const mask = new Uint8Array(n);
  const out = new Uint8ClampedArray(n * 4);
  const perFrame: HeldOutScores['perFrame'] = [];
  for (const f of frames) {
    // the detail code is what a tracker measures on the frame itself (like the 12 coefficients)
    const motion = { ...f.motion, detail: head.detailCode(f.landmarks, f.motion.expression) };
    // what the worker renders (GaussianAvatarGenerator's path)
    const img = head.renderRgba(motion, undefined, size, 1, out);
    faceMask(f.landmarks, size, mask);
    perFrame.push({ t: f.t, psnr: psnrBytes(img, f.rgba, n), ssim: ssimBytes(img, f.rgba, size, ls), facePsnr: psnrBytes(img, f.rgba, n, mask) });
  }
  const mean = (k: 'psnr' | 'ssim' | 'facePsnr'): number => perFrame.reduce((s, p) => s + p[k], 0) / Math.max(1, perFrame.length);
  return { frames: perFrame.length, psnr: mean('psnr'), ssim: mean('ssim'), facePsnr: mean('facePsnr'), perFrame };
}

export async function runGaussianPipeline(opts: GaussianPipelineOptions): Promise<GaussianPipelineResult> {
  const log = opts.log ?? (() => undefined);
  const size = opts.size ?? 256;
  const clip = opts.prepared ?? (await prepareClip({ ...opts.prepare, file: opts.clip, train: opts.train, test: opts.test, size, log, signal: opts.signal }));
  log(`clip ${path.basename(clip.file)}: ${clip.train.length} training frames [${clip.trainRange.map((v) => v.toFixed(2)).join(', ')}) s, ${clip.test.length} held-out frames${clip.testRange ? ` [${clip.testRange.map((v) => v.toFixed(2)).join(', ')}) s` : ''}, cuts at ${clip.cuts.map((c) => c.toFixed(2)).join(', ') || 'none'}`);
  const k = opts.curveFrames ?? 8;
  const curveFrames = clip.test.length <= k ? clip.test : Array.from({ length: k }, (_, i) => clip.test[Math.floor(((i + 0.5) * clip.test.length) / k)]!);
  const res = await trainGaussianHead({
    ...opts.trainer,
    ...(opts.onEvaluation ? { onEvaluation: (e: EvaluationEvent) => opts.onEvaluation!({ ...e, ...(e.preview && curveFrames[0] ? { previewTruth: curveFrames[0].rgba } : {}) }) } : {}),
    size,
    frames: clip.train.map(toTrainingFrame),
    heldOut: curveFrames.map(toTrainingFrame),
    gaussians: opts.gaussians,
    iterations: opts.iterations,
    minutes: opts.minutes,
    seed: opts.seed,
    threads: opts.threads,
    log,
    signal: opts.signal,
  });
  const heldOut = clip.test.length ? scoreHead(res.head, clip.test, size) : null;
  if (heldOut) log(`held-out (${heldOut.frames} frames): PSNR ${heldOut.psnr.toFixed(2)} dB, SSIM ${heldOut.ssim.toFixed(3)}, face PSNR ${heldOut.facePsnr.toFixed(2)} dB`);
  let assetBytes = 0;
  const out = opts.out ?? null;
  if (out) {
    assetBytes = await writeHeadAsset(out, res.head, {
      clipSha256: clip.sha256,
      clipName: path.basename(clip.file),
      trainRange: clip.trainRange,
      testRange: clip.testRange,
      trainFrames: clip.train.length,
      heldOutFrames: clip.test.length,
      iterations: res.iterations,
      bestIteration: res.bestIteration,
      trainSeconds: Math.round(res.seconds * 10) / 10,
      threads: res.threads,
      seed: opts.seed ?? 1,
      heldOut: heldOut ? { psnr: heldOut.psnr, ssim: heldOut.ssim, facePsnr: heldOut.facePsnr } : undefined,
      createdAt: new Date().toISOString(),
    });
    log(`wrote ${out} (${(assetBytes / 1024).toFixed(0)} KiB, ${res.head.count} Gaussians, ${HEAD_CODE_VERSION})`);
  }
  return { clip, head: res.head, out, assetBytes, iterations: res.iterations, bestIteration: res.bestIteration, validationFrames: res.validationFrames, trainSeconds: res.seconds, threads: res.threads, msPerIteration: res.msPerIteration, peakRssMb: res.peakRssMb, curve: res.curve, heldOut };
}
