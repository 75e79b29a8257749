/**
 * audio2motion training (Node only): tfjs on the wasm backend (XNNPACK SIMD, single thread: the
 * fastest trainer on a CPU-only machine here, ~5× plain-JS loops), Adam with a cosine schedule,
 * fixed seeds (weights initialised from our own seeded PRNG, batches drawn from a seeded shuffle).
 * Loss: weighted MSE on the mouth targets (jawOpen ×3, mouthWide ×1, smile ×0.5) + 0.15 × viseme
 * cross-entropy + 0.2 × speech/non-speech cross-entropy.
 */
import path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { FEATURE_DIM } from './features.ts';
import { windowFrames, weightShapes, type ArchConfig, type Weights } from './onnx-export.ts';
import { NUM_VISEMES } from './visemes.ts';
import { rng } from './data/corpus.ts';
import type { Packed } from './data/dataset.ts';

export interface TrainConfig {
  arch: ArchConfig;
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  /** log every n steps */
  logEvery: number;
}

export const FULL_ARCH: ArchConfig = { past: 24, future: 4, h1: 24, h2: 128, h3: 64 };
export const TINY_ARCH: ArchConfig = { past: 6, future: 2, h1: 4, h2: 8, h3: 8 };

let backendReady: Promise<void> | null = null;
export function initBackend(): Promise<void> {
  if (!backendReady) {
    backendReady = (async () => {
      const require = createRequire(import.meta.url);
      const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
      setWasmPaths(`${path.join(dir, 'dist')}/`);
      await tf.setBackend('wasm');
      await tf.ready();
    })();
  }
  return backendReady;
}

function gaussian(r: () => number): number {
  const u = Math.max(1e-12, r()), v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** per-feature mean / inverse std over the target frames */
export function featureStats(p: Packed): { mean: Float32Array; invStd: Float32Array } {
  const s = new Float64Array(FEATURE_DIM), s2 = new Float64Array(FEATURE_DIM);
  for (const f of p.index) {
    for (let k = 0; k < FEATURE_DIM; k++) {
      const v = p.feats[f * FEATURE_DIM + k];
      s[k] += v;
      s2[k] += v * v;
    }
  }
  const n = Math.max(1, p.index.length);
  const mean = new Float32Array(FEATURE_DIM), invStd = new Float32Array(FEATURE_DIM);
  for (let k = 0; k < FEATURE_DIM; k++) {
    mean[k] = s[k] / n;
    invStd[k] = 1 / Math.sqrt(Math.max(1e-4, s2[k] / n - mean[k] * mean[k]));
  }
  return { mean, invStd };
}

export interface TrainResult {
  weights: Weights;
  seconds: number;
  finalLoss: number;
  log: string[];
}

export async function train(p: Packed, cfg: TrainConfig, onLog: (s: string) => void = () => {}): Promise<TrainResult> {
  await initBackend();
  const t0 = performance.now();
  const a = cfg.arch;
  const W = windowFrames(a);
  const F = FEATURE_DIM;
  const B = cfg.batch;
  const r = rng(cfg.seed);
  const { mean, invStd } = featureStats(p);
  // ---- parameters (He init from the seeded PRNG, zero biases)
  const vars = new Map<string, tf.Variable>();
  for (const [name, rows, cols] of weightShapes(a)) {
    const data = new Float32Array(rows * cols);
    if (rows > 1) {
      const std = Math.sqrt(2 / rows) * (name === 'wm' || name === 'wv' || name === 'ws' ? 0.5 : 1);
      for (let i = 0; i < data.length; i++) data[i] = gaussian(r) * std;
    }
    vars.set(name, tf.variable(tf.tensor(data, rows === 1 ? [cols] : [rows, cols]), true, name));
  }
  const v = (n: string) => vars.get(n)!;
  const meanT = tf.tensor1d(mean), invStdT = tf.tensor1d(invStd);
  const lossW = tf.tensor1d([3, 1, 0.5]);
  const opt = tf.train.adam(cfg.lr, 0.9, 0.999, 1e-7);

  // ---- batches
  const order = Int32Array.from(p.index);
  let cursor = order.length;
  const shuffle = () => {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      const t = order[i]; order[i] = order[j]; order[j] = t;
    }
    cursor = 0;
  };
  const xb = new Float32Array(B * W * F);
  const yb = new Float32Array(B * 3);
  const vb = new Float32Array(B * NUM_VISEMES);
  const sb = new Float32Array(B);

  const logs: string[] = [];
  let ema = NaN;
  for (let step = 0; step < cfg.steps; step++) {
    vb.fill(0);
    for (let j = 0; j < B; j++) {
      if (cursor >= order.length) shuffle();
      const f = order[cursor++];
      xb.set(p.feats.subarray((f - a.past) * F, (f + a.future + 1) * F), j * W * F);
      yb[j * 3] = p.mouth[f * 3];
      yb[j * 3 + 1] = p.mouth[f * 3 + 1];
      yb[j * 3 + 2] = p.mouth[f * 3 + 2];
      vb[j * NUM_VISEMES + p.viseme[f]] = 1;
      sb[j] = p.speech[f];
    }
    const lr = 1e-5 + 0.5 * (cfg.lr - 1e-5) * (1 + Math.cos((Math.PI * step) / cfg.steps));
    const warm = Math.min(1, (step + 1) / 200);
    (opt as unknown as { learningRate: number }).learningRate = lr * warm; // read by Adam on every step
    const x = tf.tensor3d(xb, [B, W, F]);
    const y = tf.tensor2d(yb, [B, 3]);
    const yv = tf.tensor2d(vb, [B, NUM_VISEMES]);
    const ys = tf.tensor2d(sb, [B, 1]);
    const cost = opt.minimize(() => {
      const xn = tf.mul(tf.sub(x, meanT), invStdT);
      const h1 = tf.relu(tf.add(tf.matMul(tf.reshape(xn, [B * W, F]), v('w1')), v('b1')));
      const h2 = tf.relu(tf.add(tf.matMul(tf.reshape(h1, [B, W * a.h1]), v('w2')), v('b2')));
      const h3 = tf.relu(tf.add(tf.matMul(h2, v('w3')), v('b3')));
      const mouth = tf.tanh(tf.add(tf.matMul(h3, v('wm')), v('bm')));
      const vlog = tf.add(tf.matMul(h3, v('wv')), v('bv'));
      const slog = tf.add(tf.matMul(h3, v('ws')), v('bs'));
      const lm = tf.mean(tf.mul(tf.square(tf.sub(mouth, y)), lossW));
      const lv = tf.losses.softmaxCrossEntropy(yv, vlog);
      const ls = tf.losses.sigmoidCrossEntropy(ys, slog);
      return tf.addN([lm, tf.mul(lv, 0.15), tf.mul(ls, 0.2)]) as tf.Scalar;
    }, true);
    x.dispose(); y.dispose(); yv.dispose(); ys.dispose();
    if (step % cfg.logEvery === 0 || step === cfg.steps - 1) {
      const l = cost!.dataSync()[0];
      ema = Number.isNaN(ema) ? l : 0.7 * ema + 0.3 * l;
      const line = `step ${step + 1}/${cfg.steps} loss ${l.toFixed(4)} (ema ${ema.toFixed(4)}) lr ${(lr * warm).toExponential(2)} ${((performance.now() - t0) / 1000).toFixed(0)} s`;
      logs.push(line);
      onLog(line);
    }
    cost?.dispose();
  }
  const weights: Weights = { arch: a, mean, invStd } as Weights;
  for (const [name] of weightShapes(a)) (weights as unknown as Record<string, Float32Array>)[name] = Float32Array.from(v(name).dataSync());
  for (const t of vars.values()) t.dispose();
  meanT.dispose(); invStdT.dispose(); lossW.dispose();
  opt.dispose();
  return { weights, seconds: (performance.now() - t0) / 1000, finalLoss: ema, log: logs };
}
