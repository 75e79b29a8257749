/**
 * Analytic gradients of the Gaussian-head pipeline against central finite differences (float64
 * losses over float32 buffers): rasterizer (2D mean, W, opacity, colour, background), the
 * deformation (offset, log-scale, quaternion, opacity logit, colour, expression deltas) and the
 * photometric loss (L1 + D-SSIM).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RasterState, SplatGrads, backwardBand, projectBackward, renderSplats, type SplatInput } from '../../models/gaussian/rasterize.ts';
import { DeformScratch, PARAM_NAMES, TriangleFrames, allocParams, allocSplats, deform, deformBackward, E, type ParamName } from '../../models/gaussian/gaussians.ts';
import { LossState } from '../../models/gaussian/loss.ts';
import { mulberry32 } from '../../models/random.ts';

const SIZE = 32;

function randomSplats(n: number, rnd: () => number): SplatInput {
  const g: SplatInput = { count: n, mean: new Float32Array(n * 3), w: new Float32Array(n * 6), opacity: new Float32Array(n), color: new Float32Array(n * 3) };
  for (let i = 0; i < n; i++) {
    g.mean[i * 3] = 6 + rnd() * 20; g.mean[i * 3 + 1] = 6 + rnd() * 20; g.mean[i * 3 + 2] = rnd() * 10;
    for (let j = 0; j < 6; j++) g.w[i * 6 + j] = (rnd() - 0.5) * 5 + (j === 0 || j === 4 ? 2.5 : 0);
    g.opacity[i] = 0.25 + rnd() * 0.5;
    for (let c = 0; c < 3; c++) g.color[i * 3 + c] = rnd();
  }
  return g;
}

/** loss = Σ weight·image (so dL/dimage = weight) */
function lossOf(g: SplatInput, bg: Float32Array, weight: Float32Array, st: RasterState): number {
  const img = renderSplats(g, st, bg);
  let s = 0;
  for (let i = 0; i < img.length; i++) s += weight[i]! * img[i]!;
  return s;
}

function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(1e-3, Math.abs(a) + Math.abs(b));
}

test('the rasterizer backward pass matches finite differences for mean, covariance factor, opacity, colour and background', () => {
  const rnd = mulberry32(7);
  const g = randomSplats(10, rnd);
  const st = new RasterState(SIZE, g.count);
  st.alphaMin = 1e-7; // no cut-off discontinuity in the finite differences
  const bg = new Float32Array(SIZE * SIZE * 3).map(() => rnd());
  const weight = new Float32Array(SIZE * SIZE * 3).map(() => rnd() - 0.3);
  lossOf(g, bg, weight, st);
  const gr = new SplatGrads();
  gr.ensure(g.count);
  gr.zero(g.count);
  const gBg = new Float32Array(bg.length);
  for (let b = 0; b < st.bands; b++) backwardBand(g, st, bg, weight, gr, gBg, b);
  const dMean = new Float32Array(g.count * 3), dW = new Float32Array(g.count * 6);
  projectBackward(g, st, gr, dMean, dW);

  const check = (name: string, arr: Float32Array, idx: number, analytic: number, eps: number): [number, number] => {
    const v = arr[idx]!;
    arr[idx] = v + eps;
    const lp = lossOf(g, bg, weight, st);
    arr[idx] = v - eps;
    const lm = lossOf(g, bg, weight, st);
    arr[idx] = v;
    const num = (lp - lm) / (2 * eps);
    return [num, analytic];
  };
  let worst = 0, checked = 0;
  const record = (name: string, [num, ana]: [number, number]): void => {
    if (Math.abs(num) + Math.abs(ana) < 1e-2) return;
    const e = relErr(num, ana);
    checked++;
    if (e > worst) worst = e;
    assert.ok(e < 0.03, `${name}: numeric ${num.toFixed(5)} vs analytic ${ana.toFixed(5)} (rel ${e.toFixed(4)})`);
  };
  for (let i = 0; i < g.count; i++) {
    record(`mean.x[${i}]`, check('mx', g.mean, i * 3, dMean[i * 3]!, 1e-2));
    record(`mean.y[${i}]`, check('my', g.mean, i * 3 + 1, dMean[i * 3 + 1]!, 1e-2));
    for (let j = 0; j < 6; j++) record(`w[${i}][${j}]`, check('w', g.w, i * 6 + j, dW[i * 6 + j]!, 1e-2));
    record(`opacity[${i}]`, check('o', g.opacity, i, gr.opacity[i]!, 1e-3));
    for (let c = 0; c < 3; c++) record(`color[${i}][${c}]`, check('c', g.color, i * 3 + c, gr.color[i * 3 + c]!, 1e-3));
  }
  for (let k = 0; k < 40; k++) {
    const idx = Math.floor(rnd() * bg.length);
    record(`bg[${idx}]`, check('bg', bg, idx, gBg[idx]!, 1e-3));
  }
  assert.ok(checked > 80, `only ${checked} gradient entries were large enough to check`);
});

test('the deformation backward pass matches finite differences for every trainable tensor', () => {
  const rnd = mulberry32(11);
  // a small random triangle soup as the scaffold
  const nV = 9, nT = 4;
  const V = new Float32Array(nV * 3).map((_, i) => (i % 3 === 2 ? rnd() * 6 : 8 + rnd() * 16));
  const tris = Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 4, 7]);
  const frames = new TriangleFrames(nT);
  frames.compute(tris, V);
  const n = 8;
  const gp = allocParams(n);
  for (let i = 0; i < n; i++) {
    gp.tri[i] = i % nT;
    const u = rnd() * 0.6, v = rnd() * (1 - u);
    gp.bary.set([1 - u - v, u, v], i * 3);
  }
  for (const k of PARAM_NAMES) for (let j = 0; j < gp.p[k].length; j++) gp.p[k][j] = (rnd() - 0.5) * (k === 'dPos' || k === 'dColor' ? 0.4 : 1);
  for (let i = 0; i < n; i++) {
    gp.p.logScale.set([Math.log(0.35 + rnd() * 0.3), Math.log(0.35 + rnd() * 0.3), Math.log(0.2)], i * 3);
    gp.p.quat[i * 4] += 1.5;
    gp.p.color.set([0.2 + rnd() * 0.6, 0.2 + rnd() * 0.6, 0.2 + rnd() * 0.6], i * 3);
  }
  const expr = new Float32Array(E).map(() => rnd() - 0.5);
  const world = allocSplats(n);
  const sc = new DeformScratch();
  const st = new RasterState(SIZE, n);
  st.alphaMin = 1e-7;
  const bg = new Float32Array(SIZE * SIZE * 3).fill(0.5);
  const weight = new Float32Array(SIZE * SIZE * 3).map(() => rnd() - 0.3);
  const L = (): number => {
    deform(gp, frames, tris, V, expr, world, sc);
    return lossOf(world, bg, weight, st);
  };
  L();
  const gr = new SplatGrads();
  gr.ensure(n);
  gr.zero(n);
  for (let b = 0; b < st.bands; b++) backwardBand(world, st, bg, weight, gr, null, b);
  const dMean = new Float32Array(n * 3), dW = new Float32Array(n * 6);
  projectBackward(world, st, gr, dMean, dW);
  const grad = {} as Record<ParamName, Float32Array>;
  for (const k of PARAM_NAMES) grad[k] = new Float32Array(gp.p[k].length);
  deformBackward(gp, frames, expr, world, dMean, dW, gr.color, gr.opacity, grad, sc);

  let checked = 0;
  for (const k of PARAM_NAMES) {
    const arr = gp.p[k];
    let checkedHere = 0;
    for (let j = 0; j < arr.length; j++) {
      const v = arr[j]!, eps = 2e-3;
      arr[j] = v + eps;
      const lp = L();
      arr[j] = v - eps;
      const lm = L();
      arr[j] = v;
      const num = (lp - lm) / (2 * eps), ana = grad[k][j]!;
      if (Math.abs(num) + Math.abs(ana) < 1e-2) continue;
      checked++;
      checkedHere++;
      assert.ok(relErr(num, ana) < 0.03, `${k}[${j}]: numeric ${num.toFixed(5)} vs analytic ${ana.toFixed(5)}`);
    }
    assert.ok(checkedHere > 0, `no gradient of ${k} was large enough to check`);
  }
  assert.ok(checked > 100, `checked ${checked}`);
});

test('the L1 + D-SSIM loss gradient matches finite differences, also with a squared-error share', () => {
  const rnd = mulberry32(3);
  const S = 24;
  const ls = new LossState(S);
  const img = new Float32Array(S * S * 3).map(() => 0.2 + rnd() * 0.6);
  const tgt = new Float32Array(S * S * 3).map(() => 0.2 + rnd() * 0.6);
  const weight = new Float32Array(S * S).map(() => 1 + rnd());
  ls.evaluate(img, tgt, weight, 0.2);
  const d = ls.dImage.slice();
  for (let k = 0; k < 60; k++) {
    const q = Math.floor(rnd() * img.length);
    const v = img[q]!, eps = 1e-3;
    img[q] = v + eps;
    const lp = ls.evaluate(img, tgt, weight, 0.2).loss;
    img[q] = v - eps;
    const lm = ls.evaluate(img, tgt, weight, 0.2).loss;
    img[q] = v;
    const num = (lp - lm) / (2 * eps);
    assert.ok(Math.abs(num - d[q]!) < 2e-3 * Math.max(1, Math.abs(num)) + 2e-6, `pixel ${q}: numeric ${num} vs analytic ${d[q]}`);
  }
  // with a squared-error share per pixel (0 on some, partial or whole on others)
  const squared = new Float32Array(S * S).map(() => [0, 0.5, 1][Math.floor(rnd() * 3)]!);
  ls.evaluate(img, tgt, weight, 0.2, squared);
  const dq = ls.dImage.slice();
  let checkedSquared = 0;
  for (let k = 0; k < 60; k++) {
    const q = Math.floor(rnd() * img.length);
    if (squared[Math.floor(q / 3)]! > 0) checkedSquared++;
    const v = img[q]!, eps = 1e-3;
    img[q] = v + eps;
    const lp = ls.evaluate(img, tgt, weight, 0.2, squared).loss;
    img[q] = v - eps;
    const lm = ls.evaluate(img, tgt, weight, 0.2, squared).loss;
    img[q] = v;
    const num = (lp - lm) / (2 * eps);
    assert.ok(Math.abs(num - dq[q]!) < 2e-3 * Math.max(1, Math.abs(num)) + 2e-6, `pixel ${q} (squared share ${squared[Math.floor(q / 3)]}): numeric ${num} vs analytic ${dq[q]}`);
  }
  assert.ok(checkedSquared > 20);
  // identical images: SSIM 1, L1 0
  const same = ls.evaluate(tgt, tgt, null, 0.2);
  assert.ok(Math.abs(same.ssim - 1) < 1e-9 && same.l1 === 0);
});
