/**
 * Trainer of the per-identity Gaussian head: Adam over every tensor (per-tensor learning rates),
 * L1 + D-SSIM with a mouth-weighted L1 term, regularisers that keep Gaussians near their
 * triangles, not too large, and their opacities decided. Deterministic for a given seed and
 * iteration count: frames are drawn from a seeded PRNG, the band split between threads is fixed
 * and gradients are summed in a fixed order. With a time budget (`minutes`) the iteration count
 * follows the machine's speed, so only `iterations` runs are bit-identical.
 *
 * Threads: the main thread deforms, projects, sorts, bins, evaluates the loss and steps Adam; it
 * and `threads − 1` compositing workers (compositeWorker.ts) split the forward and backward
 * rasterization by bands, which is ~80 % of an iteration.
 */
import { Worker } from 'node:worker_threads';
import { LIPS_LOWER_OUTER, LIPS_UPPER_OUTER } from '../face/expression-code.ts';
import { allocParams, deform, deformBackward, DeformScratch, E, PARAM_LAYOUT, PARAM_NAMES, TriangleFrames, type ParamName } from './gaussians.ts';
import { GaussianHead, type HeadMotion } from './head.ts';
import { LossState } from './loss.ts';
import { mulberry32 } from '../random.ts';
import { detailResidual, fitDetailBasis } from './detail.ts';
import { faceMask } from './metrics.ts';
import { backwardBand, bin, compositeBand, project, projectBackward, RasterState, SHARED_ALLOC, SplatGrads, sortByDepth, type SplatInput } from './rasterize.ts';
import type { CompositeWorkerData } from './compositeWorker.ts';

export interface TrainingFrame {
  /** size² RGBA crop */
  rgba: Uint8Array;
  motion: HeadMotion;
  /** 478×3 landmarks in crop pixels (pixel-unit z); used for the mouth weight */
  landmarks: Float32Array;
  /** seconds in the clip (for logs) */
  t?: number;
}

export interface TrainOptions {
  size: number;
  frames: TrainingFrame[];
  /** frames scored during training (the curve); never trained on */
  heldOut?: TrainingFrame[];
  /** the frame whose landmarks build the scaffold (default 0) */
  sourceIndex?: number;
  /** Gaussian budget (default 12000) */
  gaussians?: number;
  /** exact iteration count (deterministic); otherwise `minutes` decides */
  iterations?: number;
  /** wall-time budget of the optimisation, default 10 */
  minutes?: number;
  seed?: number;
  /** compositing threads including the main one, default 2 */
  threads?: number;
  /** held-out evaluations over the run (default 12) */
  evaluations?: number;
  /** extra L1 weight inside the mouth box (default 4) */
  mouthWeight?: number;
  /**
   * share of squared error (instead of absolute error) in the photometric term outside the face
   * outline, 0..1 (default 1). What the motion cannot predict (body, hands, camera) is best guessed
   * by its mean (L2), not by one training frame's look (L1 picks the median). Megamind, 1 200
   * iterations, two seeds: held-out PSNR +0.5 dB (17.88 → 18.38), face +0.3 dB, SSIM −0.006.
   */
  squaredOutsideFace?: number;
  /** the same inside the face outline (default 0: L1, sharper features) */
  squaredInsideFace?: number;
  /**
   * L2 weight on the expression deltas (default 5e-6). Megamind held-out face PSNR, 1 200
   * iterations: 5e-4 18.44 dB, 5e-5 19.00, 5e-6 19.46 (seed 2: 19.44), 0 19.17.
   */
  deltaL2?: number;
  /** learn per-Gaussian colour deltas on the expression code (default true) */
  colorDeltas?: boolean;
  /** D-SSIM share λ (default 0.2) */
  ssimLambda?: number;
  /** largest detail-code size (detail.ts), default 16; 0 = the 12-coefficient code only */
  detailSize?: number;
  /**
   * share of the training frames (the last ones, in the order given) kept out of training to pick
   * the snapshot to return: the one with the best validation score (mean of whole-crop and face
   * PSNR) among the evaluations. Default 0.15 (with ≥ 20 frames); 0 = return the last state.
   */
  validationShare?: number;
  log?: (line: string) => void;
  /** called at every evaluation (progress bars, previews) */
  onEvaluation?: (e: EvaluationEvent) => void;
  signal?: AbortSignal;
}

export interface EvaluationEvent {
  point: CurvePoint;
  /** share of the run done, 0..1 */
  progress: number;
  /** seconds left (NaN before the first iteration) */
  etaSeconds: number;
  /**
   * the model's render (RGB floats, size² × 3) of the first held-out frame, valid only during the
   * call; absent without held-out frames
   */
  preview?: Float32Array;
}

export interface CurvePoint {
  seconds: number;
  iteration: number;
  /** validation frames (part of the training range, never trained on): whole crop and face */
  validationPsnr: number;
  validationFacePsnr: number;
  psnr: number;
  /** PSNR inside the face outline */
  facePsnr: number;
  loss: number;
}

export interface TrainResult {
  head: GaussianHead;
  iterations: number;
  seconds: number;
  threads: number;
  curve: CurvePoint[];
  msPerIteration: number;
  peakRssMb: number;
  /** iteration of the returned snapshot (= iterations without validation) */
  bestIteration: number;
  validationFrames: number;
}

const LR: Record<ParamName, number> = { offset: 4e-3, logScale: 6e-3, quat: 2e-3, opacity: 3e-2, color: 8e-3, dPos: 2e-3, dColor: 4e-3 };
const LR_BACKGROUND = 1e-2;
const B1 = 0.9, B2 = 0.999, EPS = 1e-8;

class Adam {
  readonly m: Float32Array;
  readonly v: Float32Array;
  constructor(readonly data: Float32Array, readonly grad: Float32Array) {
    this.m = new Float32Array(data.length);
    this.v = new Float32Array(data.length);
  }
  step(t: number, lr: number): void {
    const { data, grad, m, v } = this;
    const c1 = 1 / (1 - B1 ** t), c2 = 1 / (1 - B2 ** t);
    for (let i = 0; i < data.length; i++) {
      const g = grad[i]!;
      if (g === 0 && m[i] === 0) continue;
      const mi = (m[i] = B1 * m[i]! + (1 - B1) * g);
      const vi = (v[i] = B2 * v[i]! + (1 - B2) * g * g);
      data[i] -= (lr * mi * c1) / (Math.sqrt(vi * c2) + EPS);
    }
  }
}

export class TrainingAborted extends Error {
  override name = 'TrainingAborted';
}

/** Fit a Gaussian head to the frames. */
export async function trainGaussianHead(opts: TrainOptions): Promise<TrainResult> {
  const { size } = opts;
  let frames = opts.frames;
  if (!Number.isInteger(size) || size % 16 !== 0 || size < 64) throw new TypeError('size must be a multiple of 16, ≥ 64');
  if (!Array.isArray(frames) || frames.length === 0) throw new TypeError('no training frames');
  for (const f of frames) if (f.rgba.length !== size * size * 4) throw new TypeError(`training frame is not ${size}² RGBA`);
  const log = opts.log ?? (() => undefined);
  const rnd = mulberry32(opts.seed ?? 1);
  const share = opts.validationShare ?? 0.15;
  if (!(share >= 0 && share < 0.5)) throw new TypeError('validationShare must be in [0, 0.5)');
  const nVal = frames.length >= 20 ? Math.round(frames.length * share) : 0;
  let validationRaw: TrainingFrame[] = [];
  if (nVal > 0) {
    if ((opts.sourceIndex ?? 0) >= frames.length - nVal) throw new TypeError('sourceIndex must lie in the training part (before the validation frames)');
    validationRaw = frames.slice(frames.length - nVal);
    frames = frames.slice(0, frames.length - nVal);
  }
  const threads = Math.max(1, Math.min(8, opts.threads ?? 2));
  const src = frames[opts.sourceIndex ?? 0]!;
  const n = size * size;

  // background init: mean of the training crops
  const bgInit = new Float32Array(n * 3);
  for (const f of frames) for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) bgInit[p * 3 + c] += f.rgba[p * 4 + c]! / 255;
  for (let i = 0; i < bgInit.length; i++) bgInit[i] /= frames.length;
  const init = GaussianHead.initialize(size, src.landmarks, src.rgba, opts.gaussians ?? 12000, bgInit);
  const N = init.count;
  // shared copies of what the compositing threads read
  const gp = allocParams(N);
  gp.tri.set(init.params.tri);
  gp.bary.set(init.params.bary);
  for (const k of PARAM_NAMES) gp.p[k].set(init.params.p[k]);
  const background = SHARED_ALLOC.f32(n * 3);
  background.set(init.background);
  const head = new GaussianHead(size, src.landmarks, gp, background);
  const sc = head.scaffold;
  // the person's own detail beyond the rig: fitted on the training frames, measured on each frame
  const basis = fitDetailBasis(frames.map((f) => detailResidual(sc.rig, f.landmarks, f.motion.expression)), opts.detailSize ?? 16);
  head.detail = basis;
  const withDetail = (f: TrainingFrame): TrainingFrame => ({ ...f, motion: { ...f.motion, detail: head.detailCode(f.landmarks, f.motion.expression) } });
  frames = frames.map(withDetail);
  log(`detail code: ${basis.k} components`);

  const world: SplatInput = { count: N, mean: new Float32Array(N * 3), w: new Float32Array(N * 6), opacity: SHARED_ALLOC.f32(N), color: SHARED_ALLOC.f32(N * 3) };
  const st = new RasterState(size, N, SHARED_ALLOC, true);
  const V = new Float32Array(sc.vertexCount * 3);
  const tf = new TriangleFrames(sc.triangleCount);
  const scratch = new DeformScratch();
  const loss = new LossState(size);
  const dImage = SHARED_ALLOC.f32(n * 3);
  const gradBackground = SHARED_ALLOC.f32(n * 3);
  const mainGrads = new SplatGrads();
  mainGrads.ensure(N);
  const workerGrads: SplatGrads[] = [];
  const ctrl = new Int32Array(new SharedArrayBuffer(4 * 16));
  const countSlot = 12;
  ctrl[countSlot] = N;
  const workers: Worker[] = [];
  const bootstrap = new URL('../worker-bootstrap.mjs', import.meta.url);
  const entry = new URL('./compositeWorker.ts', import.meta.url).href;
  for (let t = 1; t < threads; t++) {
    const grads = new SplatGrads(SHARED_ALLOC);
    grads.ensure(N);
    workerGrads.push(grads);
    const data: CompositeWorkerData = {
      entry, thread: t, threads, bands: st.bands, ctrl, views: st.sharedViews(), opacity: world.opacity, color: world.color,
      background, dImage, gradBackground, grads: { mean2: grads.mean2, conic: grads.conic, opacity: grads.opacity, color: grads.color }, countSlot,
    };
    const w = new Worker(bootstrap, { workerData: data, name: `gaussian-composite-${t}` });
    w.on('error', (err) => log(`compositing thread ${t} failed: ${err.message}`));
    workers.push(w);
  }
  let seq = 0;
  const runPhase = (phase: number, mine: () => void): void => {
    if (workers.length === 0) { mine(); return; }
    seq++;
    Atomics.store(ctrl, 1, phase);
    Atomics.store(ctrl, 0, seq);
    Atomics.notify(ctrl, 0);
    mine();
    for (let t = 1; t < threads; t++) {
      for (;;) {
        const done = Atomics.load(ctrl, 2 + t);
        if (done === seq) break;
        if (Atomics.wait(ctrl, 2 + t, done, 30000) === 'timed-out') throw new Error(`compositing thread ${t} did not answer within 30 s`);
      }
    }
  };
  const forward = (m: HeadMotion): Float32Array => {
    sc.pose({ pose: m.pose, expression: m.expression, detail: m.detail }, size, V);
    tf.compute(sc.triangles, V);
    deform(gp, tf, sc.triangles, V, m.expression, world, scratch);
    project(world, st);
    sortByDepth(N, st);
    bin(st);
    runPhase(1, () => { for (let b = 0; b < st.bands; b += threads) compositeBand(world, st, background, b); });
    return st.image;
  };

  const shellGaussians = Int32Array.from({ length: N }, (_, i) => i).filter((i) => sc.triangleRegion[gp.tri[i]!] === 1);
  // each Gaussian's initial log-scale: the size of its grid cell on its triangle
  const lsInit = gp.p.logScale.slice();
  const grad = {} as Record<ParamName, Float32Array>;
  for (const k of PARAM_NAMES) grad[k] = new Float32Array(N * PARAM_LAYOUT[k]);
  const adams = PARAM_NAMES.map((k) => ({ k, adam: new Adam(gp.p[k], grad[k]) }));
  const adamBg = new Adam(background, gradBackground);
  const dMean = new Float32Array(N * 3), dW = new Float32Array(N * 6);
  const target = new Float32Array(n * 3);
  const weight = new Float32Array(n).fill(1);
  const mouthWeight = opts.mouthWeight ?? 4;
  const lambda = opts.ssimLambda ?? 0.2;
  const sqOutside = opts.squaredOutsideFace ?? 1;
  if (!(sqOutside >= 0 && sqOutside <= 1)) throw new TypeError('squaredOutsideFace must be in [0, 1]');
  const deltaL2 = opts.deltaL2 ?? 5e-6;
  if (!(deltaL2 >= 0 && Number.isFinite(deltaL2))) throw new TypeError('deltaL2 must be a finite number ≥ 0');
  const sqInside = opts.squaredInsideFace ?? 0;
  if (!(sqInside >= 0 && sqInside <= 1)) throw new TypeError('squaredInsideFace must be in [0, 1]');
  const squared = sqOutside > 0 || sqInside > 0 ? new Float32Array(n) : null;
  const trainMask = new Uint8Array(n);
  let wRect: [number, number, number, number] | null = null;

  const heldOut = (opts.heldOut ?? []).map(withDetail);
  const validation = validationRaw.map(withDetail);
  const curve: CurvePoint[] = [];
  const mask = new Uint8Array(n);
  // the best validation snapshot
  const snap = PARAM_NAMES.map((k) => gp.p[k].slice());
  const snapBg = background.slice();
  let bestScore = -Infinity, bestIteration = 0;
  const evaluate = (set: TrainingFrame[]): [number, number] => {
    if (set.length === 0) return [NaN, NaN];
    let sum = 0, sumFace = 0;
    for (const f of set) {
      const img = forward(f.motion);
      faceMask(f.landmarks, size, mask);
      let se = 0, seFace = 0, nFace = 0;
      for (let p = 0; p < n; p++) {
        for (let c = 0; c < 3; c++) {
          const v = Math.max(0, Math.min(255, Math.round(img[p * 3 + c]! * 255)));
          const d = v - f.rgba[p * 4 + c]!;
          se += d * d;
          if (mask[p]) seFace += d * d;
        }
        if (mask[p]) nFace += 3;
      }
      sum += 10 * Math.log10((255 * 255) / Math.max(1e-9, se / (3 * n)));
      sumFace += 10 * Math.log10((255 * 255) / Math.max(1e-9, seFace / Math.max(1, nFace)));
    }
    return [sum / set.length, sumFace / set.length];
  };

  const iterations = opts.iterations;
  const budgetMs = (opts.minutes ?? 10) * 60_000;
  const evaluations = opts.evaluations ?? 12;
  const t0 = performance.now();
  let it = 0;
  let lossEma = NaN;
  let peakRss = process.memoryUsage().rss;
  let nextEval = 0;
  let lastEvalMs = 0;
  try {
    for (;;) {
      const elapsed = performance.now() - t0;
      // with a time budget, stop one iteration and one final evaluation early rather than late
      const progress = iterations !== undefined ? it / iterations : Math.min(1, (elapsed + (it > 0 ? elapsed / it : 0) + lastEvalMs) / budgetMs);
      if (progress >= nextEval / evaluations || progress >= 1) {
        const te = performance.now();
        const [vPsnr, vFace] = evaluate(validation);
        const score = (vPsnr + vFace) / 2;
        if (validation.length > 0 && score > bestScore) {
          bestScore = score;
          bestIteration = it;
          PARAM_NAMES.forEach((k, j) => snap[j]!.set(gp.p[k]));
          snapBg.set(background);
        }
        const [psnr, facePsnr] = evaluate(heldOut);
        lastEvalMs = performance.now() - te;
        const point: CurvePoint = { seconds: (te - t0) / 1000, iteration: it, validationPsnr: vPsnr, validationFacePsnr: vFace, psnr, facePsnr, loss: lossEma };
        curve.push(point);
        const rate = it > 0 ? elapsed / it : NaN;
        const eta = iterations !== undefined ? ((iterations - it) * rate) / 1000 : (budgetMs - elapsed) / 1000;
        if (opts.onEvaluation) opts.onEvaluation({ point, progress: Math.min(1, progress), etaSeconds: Math.max(0, eta), ...(heldOut.length ? { preview: forward(heldOut[0]!.motion) } : {}) });
        log(`iteration ${it}${iterations ? `/${iterations}` : ''}  loss ${Number.isFinite(lossEma) ? lossEma.toFixed(4) : '–'}  ${validation.length ? `validation PSNR ${vPsnr.toFixed(2)} dB (face ${vFace.toFixed(2)})  ` : ''}held-out PSNR ${Number.isFinite(psnr) ? psnr.toFixed(2) : '–'} dB (face ${Number.isFinite(facePsnr) ? facePsnr.toFixed(2) : '–'})  ${Number.isFinite(rate) ? rate.toFixed(1) : '–'} ms/it  elapsed ${(elapsed / 1000).toFixed(0)} s  ETA ${Number.isFinite(eta) ? Math.max(0, eta).toFixed(0) : '–'} s`);
        nextEval++;
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
      }
      if (progress >= 1) break;
      if (opts.signal?.aborted) throw new TrainingAborted('training cancelled');
      it++;
      const f = frames[Math.floor(rnd() * frames.length)]!;
      for (let p = 0; p < n; p++) {
        target[p * 3] = f.rgba[p * 4]! / 255; target[p * 3 + 1] = f.rgba[p * 4 + 1]! / 255; target[p * 3 + 2] = f.rgba[p * 4 + 2]! / 255;
      }
      // mouth box (outer lips, dilated) gets the extra weight
      if (wRect) for (let y = wRect[1]; y < wRect[3]; y++) weight.fill(1, y * size + wRect[0], y * size + wRect[2]);
      wRect = mouthBox(f.landmarks, size);
      if (mouthWeight > 0) for (let y = wRect[1]; y < wRect[3]; y++) weight.fill(1 + mouthWeight, y * size + wRect[0], y * size + wRect[2]);

      if (squared) {
        faceMask(f.landmarks, size, trainMask);
        for (let p = 0; p < n; p++) squared[p] = trainMask[p] ? sqInside : sqOutside;
      }
      const img = forward(f.motion);
      const l = loss.evaluate(img, target, weight, lambda, squared);
      lossEma = Number.isFinite(lossEma) ? 0.98 * lossEma + 0.02 * l.loss : l.loss;
      dImage.set(loss.dImage);
      runPhase(2, () => {
        mainGrads.zero(N);
        for (let b = 0; b < st.bands; b += threads) backwardBand(world, st, background, dImage, mainGrads, gradBackground, b);
      });
      for (const wg of workerGrads) mainGrads.addFrom(wg, N);
      projectBackward(world, st, mainGrads, dMean, dW);
      for (const k of PARAM_NAMES) grad[k].fill(0);
      deformBackward(gp, tf, f.motion.expression, world, dMean, dW, mainGrads.color, mainGrads.opacity, grad, scratch);
      // the expression code describes the face: hair, neck and shoulders get no expression deltas
      // (left free they learn whatever the body did while the mouth moved in the training frames)
      for (const i of shellGaussians) {
        grad.dPos.fill(0, i * 3 * E, (i + 1) * 3 * E);
        grad.dColor.fill(0, i * 3 * E, (i + 1) * 3 * E);
      }
      if (opts.colorDeltas === false) grad.dColor.fill(0);
      regularise(gp.p, grad, N, progress, lsInit, deltaL2);
      for (const { k, adam } of adams) {
        const lr = k === 'offset' ? LR[k] * 0.1 ** progress : LR[k];
        adam.step(it, lr);
      }
      adamBg.step(it, LR_BACKGROUND);
      if (it % 200 === 0) {
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
        await new Promise((r) => setImmediate(r)); // let abort signals and logs through
      }
    }
  } finally {
    if (workers.length) {
      seq++;
      Atomics.store(ctrl, 1, 0);
      Atomics.store(ctrl, 0, seq);
      Atomics.notify(ctrl, 0);
      await Promise.all(workers.map((w) => w.terminate()));
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  if (validation.length > 0) {
    PARAM_NAMES.forEach((k, j) => gp.p[k].set(snap[j]!));
    background.set(snapBg);
    log(`returning the snapshot of iteration ${bestIteration} (best validation score ${bestScore.toFixed(2)} dB on ${validation.length} frames)`);
  } else {
    bestIteration = it;
  }
  // the result owns plain (non-shared) copies
  const out = allocParams(N);
  out.tri.set(gp.tri);
  out.bary.set(gp.bary);
  for (const k of PARAM_NAMES) out.p[k].set(gp.p[k]);
  const result = new GaussianHead(size, src.landmarks, out, Float32Array.from(background));
  result.detail = basis;
  return {
    head: result,
    iterations: it,
    seconds,
    threads,
    curve,
    msPerIteration: (seconds * 1000) / Math.max(1, it),
    peakRssMb: peakRss / 2 ** 20,
    bestIteration,
    validationFrames: validation.length,
  };
}

/** Outer-lip bounding box dilated by 35 % (x0, y0, x1, y1), clipped to the image. */
export function mouthBox(lm: Float32Array, size: number): [number, number, number, number] {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const i of [...LIPS_UPPER_OUTER, ...LIPS_LOWER_OUTER]) {
    const x = lm[i * 3]!, y = lm[i * 3 + 1]!;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  const dx = (x1 - x0) * 0.35, dy = (y1 - y0) * 0.35 + 2;
  const c = (v: number): number => Math.max(0, Math.min(size, Math.round(v)));
  return [c(x0 - dx), c(y0 - dy), c(x1 + dx), c(y1 + dy)];
}

/**
 * Regularisers, added straight to the gradients (their values are never needed):
 * - offsets beyond 1.5 triangle scales: λ·(|o| − 1.5)² (Gaussians stay near their triangle);
 * - log-scales more than ln 1.3 above the Gaussian’s initial one (its grid cell): λ·(ls − ls₀ − ln 1.3)²,
 *   so no Gaussian grows into a blob that overlaps many others (rendering cost follows covered pixels);
 * - expression deltas: small L2 (the 12-code is all we have; large bases over-fit the clip);
 * - opacity: after 30 % of the run, binary-entropy-like o·(1 − o) pushes opacities to 0 or 1.
 */
function regularise(p: Record<ParamName, Float32Array>, g: Record<ParamName, Float32Array>, N: number, progress: number, lsInit: Float32Array, kDelta: number): void {
  const kOff = 2e-4, kScale = 2e-3, kOp = progress > 0.3 ? 2e-6 : 0;
  const lnGrow = Math.log(1.3);
  for (let i = 0; i < N; i++) {
    const ox = p.offset[i * 3]!, oy = p.offset[i * 3 + 1]!, oz = p.offset[i * 3 + 2]!;
    const r = Math.hypot(ox, oy, oz);
    if (r > 1.5) {
      const k = (2 * kOff * (r - 1.5)) / r;
      g.offset[i * 3] += k * ox; g.offset[i * 3 + 1] += k * oy; g.offset[i * 3 + 2] += k * oz;
    }
    for (let c = 0; c < 3; c++) {
      const ls = p.logScale[i * 3 + c]!, lim = lsInit[i * 3 + c]! + lnGrow;
      if (ls > lim) g.logScale[i * 3 + c] += 2 * kScale * (ls - lim);
    }
    if (kOp) {
      const o = 1 / (1 + Math.exp(-p.opacity[i]!));
      g.opacity[i] += kOp * (1 - 2 * o) * o * (1 - o);
    }
  }
  for (let j = 0; j < p.dPos.length; j++) {
    g.dPos[j] += 2 * kDelta * p.dPos[j]!;
    g.dColor[j] += 2 * kDelta * p.dColor[j]!;
  }
}
