import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { principalImages, projectionPsnr, truthInsidePsnr } from '../../bench/gaussian-references.ts';
import { symmetricEigen } from '../../models/linalg/symmetricEigen.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

describe('gaussian bench references', () => {
  test('symmetricEigen returns the eigenpairs of a symmetric matrix, largest first (A·v = λ·v)', () => {
    const m = 7, r = rng(3);
    const B = Array.from({ length: m * m }, () => r() - 0.5);
    const A = new Float64Array(m * m);
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) for (let k = 0; k < m; k++) A[i * m + j] += B[i * m + k]! * B[j * m + k]!;
    const { values, vectors } = symmetricEigen(A, m);
    for (let r0 = 0; r0 < m; r0++) {
      if (r0 > 0) assert.ok(values[r0]! <= values[r0 - 1]! + 1e-12, 'sorted descending');
      for (let i = 0; i < m; i++) {
        let av = 0;
        for (let k = 0; k < m; k++) av += A[i * m + k]! * vectors[r0 * m + k]!;
        assert.ok(Math.abs(av - values[r0]! * vectors[r0 * m + i]!) < 1e-9, `eigenpair ${r0}, row ${i}`);
      }
    }
    assert.throws(() => symmetricEigen(new Float64Array(5), 2), TypeError);
  });

  test('a frame in the span of the training frames projects back almost exactly; an unseen pattern does not', () => {
    const pixels = 16 * 16, r = rng(7);
    const base = Array.from({ length: 3 }, () => Uint8Array.from({ length: pixels * 4 }, (_, i) => (i % 4 === 3 ? 255 : Math.round(r() * 200))));
    // training frames: blends of three images; held-out: another blend of them, and noise
    const blend = (w: number[]): Uint8Array => Uint8Array.from({ length: pixels * 4 }, (_, i) => (i % 4 === 3 ? 255 : Math.round(w.reduce((s, wk, k) => s + wk * base[k]![i]!, 0))));
    const frames = Array.from({ length: 10 }, () => { const a = r(), b = r() * (1 - a); return blend([a, b, 1 - a - b]); });
    const basis = principalImages(frames, pixels, 24);
    assert.ok(basis.components.length >= 2 && basis.components.length <= 9, `${basis.components.length} components`);
    const inSpan = blend([0.2, 0.5, 0.3]);
    assert.ok(projectionPsnr(inSpan, basis, basis.components.length, pixels) > 45, 'a blend of the training images is reproduced');
    const unseen = Uint8Array.from({ length: pixels * 4 }, (_, i) => (i % 4 === 3 ? 255 : Math.round(r() * 255)));
    assert.ok(projectionPsnr(unseen, basis, basis.components.length, pixels) < 15, 'noise is not');
    assert.ok(projectionPsnr(inSpan, basis, 0, pixels) < projectionPsnr(inSpan, basis, basis.components.length, pixels), 'the mean alone is worse');
  });

  test('truthInsidePsnr scores a render with the truth pasted inside the mask', () => {
    const pixels = 4;
    const truth = Uint8Array.from([10, 10, 10, 255, 20, 20, 20, 255, 30, 30, 30, 255, 40, 40, 40, 255]);
    const render = Uint8Array.from(truth.map((v, i) => (i % 4 === 3 ? 255 : v + 10)));
    assert.equal(truthInsidePsnr(render, truth, Uint8Array.from([1, 1, 1, 1]), pixels), 100, "identical images score the metric's cap");
    const half = truthInsidePsnr(render, truth, Uint8Array.from([1, 1, 0, 0]), pixels);
    const none = truthInsidePsnr(render, truth, Uint8Array.from([0, 0, 0, 0]), pixels);
    assert.ok(Math.abs(half - none - 10 * Math.log10(2)) < 1e-9, `half the error: +3 dB (${half} vs ${none})`);
  });
});
