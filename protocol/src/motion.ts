/**
 * Motion frame wire format (browser tracker → server, keypoint avatar).
 *
 * One frame = msgpack array of 4 items:
 *   [ version: uint (1 or 2), seq: uint32, captureMs: uint32, payload: bin ]
 * payload (little endian, 12 + MOTION_EXPRESSION_SIZE bytes, + k detail bytes in version 2):
 *   int16 yaw, pitch, roll   radians × 10000          (range ±3.2767 rad)
 *   int16 tx, ty             neutral IODs × 4096       (range ±8)
 *   int16 logScale           ln(scale) × 4096          (scale e^±8)
 *   int8 × 12 expression     coefficient × 127         (range [−1, 1]; −128 is invalid)
 *   int8 × k detail          (version 2 only, 1 ≤ k ≤ 16) coefficient × 127: a personal avatar's
 *                            clip-specific detail code (models/gaussian/detail.ts), meaningful only
 *                            to the avatar whose basis produced it; renderers without one ignore it
 * Coefficient order: models/face/expression-code.ts EXPRESSION_NAMES. Senders without a detail
 * code send version 1 (byte-identical to before); receivers accept both.
 *
 * seq wraps at 2^32 (compare with `seqDelta`). captureMs is the sender's capture time in
 * milliseconds modulo 2^32 (e.g. `Math.round(performance.timeOrigin + performance.now()) >>> 0`);
 * only differences are meaningful (`wrapDeltaMs`).
 *
 * Size: 1 (array) + 1 (version) + ≤5 (seq) + ≤5 (captureMs) + 2 (bin header) + 24 = ≤ 38 bytes,
 * i.e. ≤ 9.1 kbit/s at 30 fps before transport overhead (version 2: ≤ 54 bytes).
 *
 * Pure TypeScript (msgpackr runs in browsers and Node).
 */
import { Packr, Unpackr } from 'msgpackr';
import type { HeadPose } from '../../models/face/expression-code.ts';

export const MOTION_VERSION = 1;
/** frames that carry a detail code */
export const MOTION_VERSION_DETAIL = 2;
export const MOTION_EXPRESSION_SIZE = 12;
export const MOTION_DETAIL_MAX = 16;
export const MOTION_POSE_BYTES = 12;
export const MOTION_PAYLOAD_BYTES = MOTION_POSE_BYTES + MOTION_EXPRESSION_SIZE;
/** Largest valid encoded frame; anything longer is rejected before parsing. */
export const MOTION_MAX_BYTES = 38 + MOTION_DETAIL_MAX;

export const ANGLE_SCALE = 10000;
export const TRANSLATION_SCALE = 4096;
export const LOG_SCALE_SCALE = 4096;
export const EXPRESSION_QUANT = 127;

/** Maximum absolute round-trip error (half a quantisation step) for in-range values. */
export const MOTION_ERROR_BOUND = {
  /** radians */
  angle: 0.5 / ANGLE_SCALE,
  /** neutral IODs */
  translation: 0.5 / TRANSLATION_SCALE,
  /** relative error of scale: |decoded/original − 1| ≤ exp(0.5/4096) − 1 */
  scaleRelative: Math.expm1(0.5 / LOG_SCALE_SCALE),
  /** expression coefficient units */
  expression: 0.5 / EXPRESSION_QUANT,
} as const;

export const MOTION_LIMITS = {
  angle: 32767 / ANGLE_SCALE,
  translation: 32767 / TRANSLATION_SCALE,
  logScale: 32767 / LOG_SCALE_SCALE,
  expression: 1,
} as const;

/** Head pose on the wire: the face model's pose (radians, face units, scale ratio). */
export type MotionPose = HeadPose;

export interface MotionFrame {
  seq: number;
  captureMs: number;
  pose: MotionPose;
  expression: Float32Array;
  /** optional detail code (1..16 values in [−1, 1]) → version 2 */
  detail?: Float32Array;
}

export interface DecodedMotionFrame extends MotionFrame {
  version: number;
}

export class MotionFrameError extends Error {
  readonly code = 'BAD_MOTION_FRAME';
  constructor(message: string) {
    super(`motion frame: ${message}`);
    this.name = 'MotionFrameError';
  }
}

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: 'number' });

function quant(name: string, v: number, scale: number, limit: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new MotionFrameError(`${name} is not a finite number`);
  if (Math.abs(v) > limit) throw new MotionFrameError(`${name} = ${v} out of range ±${limit}`);
  return Math.round(v * scale);
}

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

export function encodeMotionFrame(frame: MotionFrame): Uint8Array {
  if (!frame || typeof frame !== 'object') throw new MotionFrameError('frame must be an object');
  if (!isUint32(frame.seq)) throw new MotionFrameError(`seq must be a uint32, got ${frame.seq}`);
  if (!isUint32(frame.captureMs)) throw new MotionFrameError(`captureMs must be a uint32 (ms modulo 2^32), got ${frame.captureMs}`);
  const p = frame.pose;
  if (!p || typeof p !== 'object') throw new MotionFrameError('pose missing');
  const e = frame.expression;
  if (!e || e.length !== MOTION_EXPRESSION_SIZE) throw new MotionFrameError(`expression must have ${MOTION_EXPRESSION_SIZE} values`);
  const d = frame.detail;
  const k = d ? d.length : 0;
  if (d && (k < 1 || k > MOTION_DETAIL_MAX)) throw new MotionFrameError(`detail must have 1..${MOTION_DETAIL_MAX} values, got ${k}`);
  const payload = new Uint8Array(MOTION_PAYLOAD_BYTES + k);
  const dv = new DataView(payload.buffer);
  for (let i = 0; i < k; i++) dv.setInt8(MOTION_PAYLOAD_BYTES + i, quant(`detail[${i}]`, d![i]!, EXPRESSION_QUANT, MOTION_LIMITS.expression));
  dv.setInt16(0, quant('yaw', p.yaw, ANGLE_SCALE, MOTION_LIMITS.angle), true);
  dv.setInt16(2, quant('pitch', p.pitch, ANGLE_SCALE, MOTION_LIMITS.angle), true);
  dv.setInt16(4, quant('roll', p.roll, ANGLE_SCALE, MOTION_LIMITS.angle), true);
  dv.setInt16(6, quant('tx', p.tx, TRANSLATION_SCALE, MOTION_LIMITS.translation), true);
  dv.setInt16(8, quant('ty', p.ty, TRANSLATION_SCALE, MOTION_LIMITS.translation), true);
  if (typeof p.scale !== 'number' || !(p.scale > 0)) throw new MotionFrameError(`scale must be > 0, got ${p.scale}`);
  dv.setInt16(10, quant('ln(scale)', Math.log(p.scale), LOG_SCALE_SCALE, MOTION_LIMITS.logScale), true);
  for (let i = 0; i < MOTION_EXPRESSION_SIZE; i++) {
    dv.setInt8(MOTION_POSE_BYTES + i, quant(`expression[${i}]`, e[i], EXPRESSION_QUANT, MOTION_LIMITS.expression));
  }
  return packr.pack([k ? MOTION_VERSION_DETAIL : MOTION_VERSION, frame.seq, frame.captureMs, payload]);
}

export function decodeMotionFrame(bytes: Uint8Array): DecodedMotionFrame {
  if (!(bytes instanceof Uint8Array)) throw new MotionFrameError('expected a Uint8Array');
  if (bytes.length === 0) throw new MotionFrameError('empty');
  if (bytes.length > MOTION_MAX_BYTES) throw new MotionFrameError(`${bytes.length} bytes exceeds ${MOTION_MAX_BYTES}`);
  let v: unknown;
  try {
    v = unpackr.unpack(bytes);
  } catch (err) {
    throw new MotionFrameError(`not msgpack (${(err as Error).message})`);
  }
  if (!Array.isArray(v) || v.length !== 4) throw new MotionFrameError('expected a 4-item array');
  const [version, seq, captureMs, payload] = v as unknown[];
  if (version !== MOTION_VERSION && version !== MOTION_VERSION_DETAIL) throw new MotionFrameError(`unsupported version ${String(version)}`);
  if (!isUint32(seq)) throw new MotionFrameError('seq is not a uint32');
  if (!isUint32(captureMs)) throw new MotionFrameError('captureMs is not a uint32');
  if (!(payload instanceof Uint8Array)) throw new MotionFrameError('payload is not binary');
  const k = payload.length - MOTION_PAYLOAD_BYTES;
  if (version === MOTION_VERSION && k !== 0) throw new MotionFrameError(`payload has ${payload.length} bytes, expected ${MOTION_PAYLOAD_BYTES}`);
  if (version === MOTION_VERSION_DETAIL && (k < 1 || k > MOTION_DETAIL_MAX)) throw new MotionFrameError(`version 2 payload has ${payload.length} bytes, expected ${MOTION_PAYLOAD_BYTES + 1}..${MOTION_PAYLOAD_BYTES + MOTION_DETAIL_MAX}`);
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const pose: MotionPose = {
    yaw: dv.getInt16(0, true) / ANGLE_SCALE,
    pitch: dv.getInt16(2, true) / ANGLE_SCALE,
    roll: dv.getInt16(4, true) / ANGLE_SCALE,
    tx: dv.getInt16(6, true) / TRANSLATION_SCALE,
    ty: dv.getInt16(8, true) / TRANSLATION_SCALE,
    scale: Math.exp(dv.getInt16(10, true) / LOG_SCALE_SCALE),
  };
  const expression = new Float32Array(MOTION_EXPRESSION_SIZE);
  for (let i = 0; i < MOTION_EXPRESSION_SIZE; i++) {
    const q = dv.getInt8(MOTION_POSE_BYTES + i);
    if (q === -128) throw new MotionFrameError(`expression[${i}] out of range`);
    expression[i] = q / EXPRESSION_QUANT;
  }
  if (k === 0) return { version, seq, captureMs, pose, expression };
  const detail = new Float32Array(k);
  for (let i = 0; i < k; i++) {
    const q = dv.getInt8(MOTION_PAYLOAD_BYTES + i);
    if (q === -128) throw new MotionFrameError(`detail[${i}] out of range`);
    detail[i] = q / EXPRESSION_QUANT;
  }
  return { version, seq, captureMs, pose, expression, detail };
}

/**
 * What a receiver gets for a motion: clamped to the wire format's ranges (non-finite values → 0,
 * scale ≤ 0 → 1), then encoded and decoded, so the quantisation is exactly the wire's. Used where
 * motion from an offline tracker must look the same as motion that crossed the network (benchmarks,
 * training data), so that a model never trains on precision it will not get at run time.
 */
export function quantizeMotion(m: { pose: MotionPose; expression: ArrayLike<number> }, seq = 0): { pose: MotionPose; expression: Float32Array } {
  const c = (v: number, l: number): number => (Number.isFinite(v) ? Math.max(-l, Math.min(l, v)) : 0);
  const expression = new Float32Array(MOTION_EXPRESSION_SIZE);
  for (let i = 0; i < MOTION_EXPRESSION_SIZE; i++) expression[i] = c(m.expression[i] ?? 0, MOTION_LIMITS.expression);
  const p = m.pose;
  const d = decodeMotionFrame(
    encodeMotionFrame({
      seq,
      captureMs: 0,
      pose: {
        yaw: c(p.yaw, MOTION_LIMITS.angle),
        pitch: c(p.pitch, MOTION_LIMITS.angle),
        roll: c(p.roll, MOTION_LIMITS.angle),
        tx: c(p.tx, MOTION_LIMITS.translation),
        ty: c(p.ty, MOTION_LIMITS.translation),
        scale: Math.exp(c(Math.log(p.scale > 0 ? p.scale : 1), MOTION_LIMITS.logScale)),
      },
      expression,
    }),
  );
  return { pose: d.pose, expression: d.expression };
}

/** Signed distance b − a between uint32 sequence numbers (wrap-aware). */
export function seqDelta(a: number, b: number): number {
  return ((b - a) | 0);
}

/** Signed difference b − a in ms between uint32 capture timestamps (wrap-aware). */
export function wrapDeltaMs(a: number, b: number): number {
  return ((b - a) | 0);
}
