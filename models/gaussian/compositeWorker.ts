/**
 * Compositing thread of the trainer: forward and backward passes of its share of the bands
 * (band b belongs to thread b mod threads, a fixed split so results do not depend on timing).
 * All state lives in SharedArrayBuffers set up once; per iteration the main thread bumps a
 * sequence number in `ctrl` (Atomics) and waits for this thread to post it back.
 *   ctrl[0] = sequence, ctrl[1] = phase (1 forward, 2 backward, 0 quit), ctrl[2 + t] = done seq
 */
import { workerData } from 'node:worker_threads';
import { backwardBand, compositeBand, type RasterViews } from './rasterize.ts';

export interface CompositeWorkerData {
  entry: string;
  thread: number;
  threads: number;
  bands: number;
  ctrl: Int32Array;
  views: RasterViews;
  opacity: Float32Array;
  color: Float32Array;
  background: Float32Array;
  dImage: Float32Array;
  gradBackground: Float32Array;
  grads: { mean2: Float32Array; conic: Float32Array; opacity: Float32Array; color: Float32Array };
  /** ctrl index holding the current Gaussian count */
  countSlot: number;
}

const d = workerData as CompositeWorkerData;
const g = { opacity: d.opacity, color: d.color };
let seq = 0;
for (;;) {
  Atomics.wait(d.ctrl, 0, seq);
  seq = Atomics.load(d.ctrl, 0);
  const phase = Atomics.load(d.ctrl, 1);
  if (phase === 0) break;
  if (phase === 1) {
    for (let b = d.thread; b < d.bands; b += d.threads) compositeBand(g, d.views, d.background, b);
  } else if (phase === 2) {
    const n = Atomics.load(d.ctrl, d.countSlot);
    d.grads.mean2.fill(0, 0, n * 2);
    d.grads.conic.fill(0, 0, n * 3);
    d.grads.opacity.fill(0, 0, n);
    d.grads.color.fill(0, 0, n * 3);
    for (let b = d.thread; b < d.bands; b += d.threads) backwardBand(g, d.views, d.background, d.dImage, d.grads, d.gradBackground, b);
  }
  Atomics.store(d.ctrl, 2 + d.thread, seq);
  Atomics.notify(d.ctrl, 2 + d.thread);
}
