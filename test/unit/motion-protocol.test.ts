import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pack } from 'msgpackr';
import {
  encodeMotionFrame, decodeMotionFrame, quantizeMotion, seqDelta, wrapDeltaMs,
  MOTION_ERROR_BOUND, MOTION_LIMITS, MOTION_MAX_BYTES, MOTION_EXPRESSION_SIZE, MOTION_PAYLOAD_BYTES, MotionFrameError,
  type MotionFrame,
} from '../../protocol/src/motion.ts';
import { EXPRESSION_SIZE, rotationFromEuler, eulerFromRotation } from '../../models/face/expression-code.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomFrame(r: () => number): MotionFrame {
  const u = (a: number, b: number) => a + (b - a) * r();
  const expression = new Float32Array(MOTION_EXPRESSION_SIZE);
  for (let i = 0; i < expression.length; i++) expression[i] = u(-1, 1);
  return {
    seq: Math.floor(u(0, 2 ** 32)),
    captureMs: Math.floor(u(0, 2 ** 32)),
    pose: { yaw: u(-1.5, 1.5), pitch: u(-1, 1), roll: u(-1, 1), tx: u(-2, 2), ty: u(-2, 2), scale: u(0.5, 2) },
    expression,
  };
}

test('the wire expression size matches the expression code', () => {
  assert.equal(MOTION_EXPRESSION_SIZE, EXPRESSION_SIZE);
});

test('a frame survives encode and decode with errors within the documented bounds', () => {
  const r = rng(1);
  for (let n = 0; n < 2000; n++) {
    const f = randomFrame(r);
    const d = decodeMotionFrame(encodeMotionFrame(f));
    assert.equal(d.version, 1);
    assert.equal(d.seq, f.seq);
    assert.equal(d.captureMs, f.captureMs);
    for (const k of ['yaw', 'pitch', 'roll'] as const) assert.ok(Math.abs(d.pose[k] - f.pose[k]) <= MOTION_ERROR_BOUND.angle + 1e-12, k);
    for (const k of ['tx', 'ty'] as const) assert.ok(Math.abs(d.pose[k] - f.pose[k]) <= MOTION_ERROR_BOUND.translation + 1e-12, k);
    assert.ok(Math.abs(d.pose.scale / f.pose.scale - 1) <= MOTION_ERROR_BOUND.scaleRelative + 1e-12, 'scale');
    for (let i = 0; i < MOTION_EXPRESSION_SIZE; i++) {
      assert.ok(Math.abs(d.expression[i] - f.expression[i]) <= MOTION_ERROR_BOUND.expression + 1e-7, `expression[${i}]`);
    }
  }
});

test('every frame fits in 38 bytes, under 10 kbit/s at 30 fps', () => {
  const r = rng(2);
  let max = 0;
  for (let n = 0; n < 500; n++) max = Math.max(max, encodeMotionFrame(randomFrame(r)).length);
  const worst = encodeMotionFrame({ ...randomFrame(r), seq: 0xffffffff, captureMs: 0xffffffff });
  max = Math.max(max, worst.length);
  assert.ok(max <= MOTION_MAX_BYTES, `max ${max}`);
  assert.ok(max * 8 * 30 <= 10_000, `${max * 8 * 30} bit/s`);
});

test('encoding refuses NaN, infinities, out-of-range values and bad counters', () => {
  const base = randomFrame(rng(3));
  const bad: MotionFrame[] = [
    { ...base, pose: { ...base.pose, yaw: NaN } },
    { ...base, pose: { ...base.pose, tx: Infinity } },
    { ...base, pose: { ...base.pose, pitch: 4 } },
    { ...base, pose: { ...base.pose, scale: 0 } },
    { ...base, expression: Float32Array.from({ length: MOTION_EXPRESSION_SIZE }, (_, i) => (i === 3 ? 1.5 : 0)) },
    { ...base, expression: new Float32Array(MOTION_EXPRESSION_SIZE - 1) },
    { ...base, seq: -1 },
    { ...base, seq: 2 ** 32 },
    { ...base, captureMs: 1.5 },
  ];
  for (const f of bad) assert.throws(() => encodeMotionFrame(f), MotionFrameError);
});

test('decoding rejects garbage, oversized, wrong-version and malformed frames with a clear error', () => {
  const good = encodeMotionFrame(randomFrame(rng(4)));
  const payload = new Uint8Array(MOTION_PAYLOAD_BYTES);
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['oversized', new Uint8Array(MOTION_MAX_BYTES + 1)],
    ['truncated', good.subarray(0, good.length - 3)],
    ['random bytes', Uint8Array.from({ length: 30 }, (_, i) => (i * 97 + 13) & 0xff)],
    ['not an array', pack({ seq: 1 })],
    ['wrong version', pack([2, 1, 1, payload])],
    ['NaN seq', pack([1, NaN, 1, payload])],
    ['float captureMs', pack([1, 1, 0.5, payload])],
    ['negative seq', pack([1, -5, 1, payload])],
    ['short payload', pack([1, 1, 1, payload.subarray(0, 10)])],
    ['payload not binary', pack([1, 1, 1, 'x'.repeat(24)])],
    ['expression -128', pack([1, 1, 1, Uint8Array.from({ length: MOTION_PAYLOAD_BYTES }, (_, i) => (i === 15 ? 0x80 : 0))])],
    ['extra item', pack([1, 1, 1, payload, 0])],
  ];
  for (const [name, bytes] of cases) {
    assert.throws(() => decodeMotionFrame(bytes), (e: unknown) => e instanceof MotionFrameError && /^motion frame: /.test(e.message), name);
  }
  assert.throws(() => decodeMotionFrame('abc' as unknown as Uint8Array), MotionFrameError);
});

test('sequence numbers and capture times compare correctly across the uint32 wrap', () => {
  assert.equal(seqDelta(0xfffffffe, 1), 3);
  assert.equal(seqDelta(5, 3), -2);
  assert.equal(wrapDeltaMs(0xffffff00, 0x10), 0x110);
});

test('euler angles round-trip through the rotation matrix', () => {
  const r = rng(5);
  for (let n = 0; n < 200; n++) {
    const yaw = (r() - 0.5) * 2.4, pitch = (r() - 0.5) * 1.6, roll = (r() - 0.5) * 1.6;
    const e = eulerFromRotation(rotationFromEuler(yaw, pitch, roll));
    assert.ok(Math.abs(e.yaw - yaw) < 1e-9 && Math.abs(e.pitch - pitch) < 1e-9 && Math.abs(e.roll - roll) < 1e-9);
  }
});

test('quantizeMotion gives what crosses the wire: clamped, non-finite values zeroed, quantised like encode and decode', () => {
  const r = rng(11);
  for (let n = 0; n < 50; n++) {
    const f = randomFrame(r);
    const q = quantizeMotion(f, f.seq);
    const d = decodeMotionFrame(encodeMotionFrame(f));
    assert.deepEqual(q.pose, d.pose);
    assert.deepEqual(Array.from(q.expression), Array.from(d.expression));
  }
  const expression = new Float32Array(MOTION_EXPRESSION_SIZE);
  expression[0] = 3;
  expression[1] = -2;
  expression[2] = NaN;
  const q = quantizeMotion({ pose: { yaw: 9, pitch: -Infinity, roll: NaN, tx: 100, ty: -0.25, scale: 0 }, expression });
  assert.equal(q.pose.yaw, MOTION_LIMITS.angle);
  assert.equal(q.pose.pitch, 0);
  assert.equal(q.pose.roll, 0);
  assert.equal(q.pose.tx, MOTION_LIMITS.translation);
  assert.equal(q.pose.ty, -0.25);
  assert.equal(q.pose.scale, 1);
  assert.deepEqual(Array.from(q.expression.slice(0, 4)), [1, -1, 0, 0]);
  // a short expression array is padded with zeros rather than refused
  assert.equal(quantizeMotion({ pose: q.pose, expression: [0.5] }).expression.length, MOTION_EXPRESSION_SIZE);
});
