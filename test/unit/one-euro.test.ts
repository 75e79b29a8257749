/** One-Euro smoothing of the face tracker (client/src/avatar/OneEuroFilter.ts, motionFilter.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OneEuroBank, OneEuroFilter, lagBound } from '../../client/src/avatar/OneEuroFilter.ts';
import { DEFAULT_MOTION_JITTER, MOTION_CHANNELS, WIRE_LIMITS, motionFilterParams, oneEuroForJitter } from '../../client/src/avatar/motionFilter.ts';
import { MOTION_LIMITS } from '../../protocol/src/motion.ts';

/** deterministic standard normal noise */
function gaussian(seed = 1): () => number {
  let s = seed;
  const u = () => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return (s + 1) / 0x80000001;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

function std(a: number[]): number {
  const m = a.reduce((x, y) => x + y, 0) / a.length;
  return Math.sqrt(a.reduce((x, y) => x + (y - m) ** 2, 0) / a.length);
}

const SIGMA = 0.01;

test('first sample passes through; a constant stays constant; non-finite input resets', () => {
  const f = new OneEuroFilter(oneEuroForJitter(SIGMA));
  assert.equal(f.filter(0.3, 0), 0.3);
  for (let i = 1; i < 30; i++) assert.ok(Math.abs(f.filter(0.3, i / 30) - 0.3) < 1e-12);
  assert.ok(Number.isNaN(f.filter(NaN, 1.1)));
  assert.equal(f.value, null);
  assert.equal(f.filter(-0.2, 1.2), -0.2, 'starts afresh after a reset');
  // a gap longer than 1 s also starts afresh
  assert.equal(f.filter(0.5, 3), 0.5);
});

test('still signal: jitter is reduced to about 0.6 σ', () => {
  for (const [fps, maxRatio] of [[30, 0.65], [20, 0.7], [12, 0.75]] as const) {
    const f = new OneEuroFilter(oneEuroForJitter(SIGMA));
    const g = gaussian(7);
    const out: number[] = [];
    for (let i = 0; i < 3000; i++) out.push(f.filter(SIGMA * g(), i / fps));
    const ratio = std(out.slice(100)) / SIGMA;
    assert.ok(ratio < maxRatio, `${fps} fps: jitter × ${ratio.toFixed(2)}`);
  }
});

test('ramps: at most one frame of lag above 10σ/s, lag error ≤ 1/(2π·beta) ≈ 0.84σ at any speed', () => {
  const p = oneEuroForJitter(SIGMA);
  const bound = lagBound(p, 30);
  assert.ok(Math.abs(bound.maxLagError / SIGMA - 0.843) < 0.01, `bound ${bound.maxLagError / SIGMA}σ`);
  assert.ok(Math.abs(bound.v1 - 20 * SIGMA) < 1e-9);
  for (const fps of [30, 20, 12]) {
    for (const vs of [2, 5, 20, 35, 70, 200, 1000]) {
      const v = vs * SIGMA;
      const f = new OneEuroFilter(p);
      let err = 0;
      for (let i = 0; i < 300; i++) err = (v * i) / fps - f.filter((v * i) / fps, i / fps);
      const lagFrames = (err / v) * fps;
      if (vs >= 10) assert.ok(lagFrames <= 1, `${fps} fps, ${vs}σ/s: lag ${lagFrames.toFixed(2)} frames`);
      assert.ok(err <= bound.maxLagError + 1e-12, `${fps} fps, ${vs}σ/s: lag error ${(err / SIGMA).toFixed(2)}σ`);
    }
  }
});

function trackSine(ampDeg: number, hz: number, seed: number): { shift: number; rmsOut: number; rmsIn: number } {
  const sigma = DEFAULT_MOTION_JITTER.yaw;
  const f = new OneEuroFilter(motionFilterParams()[MOTION_CHANNELS.indexOf('yaw')]!);
  const g = gaussian(seed);
  const clean: number[] = [], noisy: number[] = [], out: number[] = [];
  for (let i = 0; i < 1800; i++) {
    const c = (ampDeg * Math.PI / 180) * Math.sin(2 * Math.PI * hz * (i / 30));
    clean.push(c);
    noisy.push(c + sigma * g());
    out.push(f.filter(noisy[i]!, i / 30));
  }
  let best = { shift: -1, e: Infinity };
  for (let s = 0; s <= 4; s++) {
    let e = 0;
    for (let i = 30; i < 1800; i++) e += (out[i]! - clean[i - s]!) ** 2;
    if (e < best.e) best = { shift: s, e };
  }
  let e0 = 0;
  for (let i = 30; i < 1800; i++) e0 += (out[i]! - clean[i]!) ** 2;
  return { shift: best.shift, rmsOut: Math.sqrt(e0 / 1770), rmsIn: std(noisy.slice(30).map((x, i) => x - clean[i + 30]!)) };
}

test('noisy yaw at 30 fps: aligned with the clean signal; fast turns within 1.3σ, slow motion less noisy', () => {
  const fast = trackSine(20, 0.5, 3);
  assert.ok(fast.shift <= 1, `fast turn: output matches the clean signal ${fast.shift} frames late`);
  assert.ok(fast.rmsOut < 1.3 * fast.rmsIn, `fast turn: error ${fast.rmsOut.toFixed(4)} vs noise ${fast.rmsIn.toFixed(4)} rad`);
  const slow = trackSine(2, 0.25, 5);
  assert.ok(slow.shift <= 1, `slow motion: output matches the clean signal ${slow.shift} frames late`);
  assert.ok(slow.rmsOut < 0.75 * slow.rmsIn, `slow motion: error ${slow.rmsOut.toFixed(4)} vs noise ${slow.rmsIn.toFixed(4)} rad`);
});

test('motion filter parameters: one per channel, beta scales with 1/σ; the bank filters in place', () => {
  const params = motionFilterParams();
  assert.equal(params.length, MOTION_CHANNELS.length);
  assert.equal(params.length, 18);
  const i = MOTION_CHANNELS.indexOf('jawOpen');
  const j = MOTION_CHANNELS.indexOf('browFurrow');
  assert.ok(Math.abs(params[i]!.beta * DEFAULT_MOTION_JITTER.jawOpen - params[j]!.beta * DEFAULT_MOTION_JITTER.browFurrow) < 1e-9);
  const custom = motionFilterParams({ jawOpen: 0.024 });
  assert.ok(Math.abs(custom[i]!.beta - params[i]!.beta / 2) < 1e-9);
  const bank = new OneEuroBank(params);
  const v = new Float64Array(18).fill(0.5);
  assert.equal(bank.filter(v, 0), v);
  v.fill(0.6);
  bank.filter(v, 1 / 30);
  assert.ok(v.every((x) => x > 0.5 && x < 0.6));
});

test('the tracker clamps to exactly the ranges the wire format carries', () => {
  assert.deepEqual({ ...WIRE_LIMITS }, { ...MOTION_LIMITS });
});
