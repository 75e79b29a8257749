/**
 * Turns the owner's motion data channel into "the latest valid motion". Frames are validated
 * (decodeMotionFrame), late or duplicate frames (by sequence number) are dropped, all drops are
 * counted by reason; nothing here throws on bad input. Without fresh motion the avatar falls back to
 * a calm idle: neutral expression with natural blinks, the last head pose easing back to rest.
 */
import { decodeMotionFrame, seqDelta, MOTION_MAX_BYTES, type DecodedMotionFrame } from '../../protocol/src/motion.ts';
import { EXPRESSION_SIZE, EXPR } from '../../models/face/expression-code.ts';
import type { AvatarMotion } from './generator/generator.ts';

export type MotionDropReason = 'invalid' | 'oversized' | 'late' | 'flood';

/** Motion older than this is stale: switch to idle. */
const STALE_MS = 500;
const MAX_FRAMES_PER_SECOND = 120;

export class MotionReceiver {
  #latest: DecodedMotionFrame | undefined;
  #latestAt = 0;
  #windowStart = 0;
  #windowCount = 0;
  readonly dropped: Record<MotionDropReason, number> = { invalid: 0, oversized: 0, late: 0, flood: 0 };
  accepted = 0;
  readonly #idle: AvatarMotion = { pose: { yaw: 0, pitch: 0, roll: 0, tx: 0, ty: 0, scale: 1 }, expression: new Float32Array(EXPRESSION_SIZE) };

  constructor(private readonly onDrop?: (reason: MotionDropReason) => void) {}

  /** Feed one data channel message. Returns the decoded frame when accepted. */
  push(message: ArrayBuffer | ArrayBufferView | string, now = performance.now()): DecodedMotionFrame | undefined {
    if (typeof message === 'string') return this.#drop('invalid');
    const bytes = message instanceof ArrayBuffer ? new Uint8Array(message) : new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
    if (bytes.byteLength > MOTION_MAX_BYTES) return this.#drop('oversized');
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    if (++this.#windowCount > MAX_FRAMES_PER_SECOND) return this.#drop('flood');
    let frame: DecodedMotionFrame;
    try {
      frame = decodeMotionFrame(bytes);
    } catch {
      return this.#drop('invalid');
    }
    if (this.#latest && seqDelta(this.#latest.seq, frame.seq) <= 0) return this.#drop('late');
    this.#latest = frame;
    this.#latestAt = now;
    this.accepted++;
    return frame;
  }

  #drop(reason: MotionDropReason): undefined {
    this.dropped[reason]++;
    this.onDrop?.(reason);
    return undefined;
  }

  /** The latest capture timestamp (ms since epoch) if motion is fresh. */
  get latestCaptureMs(): number | undefined {
    return this.#latest && performance.now() - this.#latestAt < STALE_MS ? this.#latest.captureMs : undefined;
  }

  /** Motion to render now. */
  current(now = performance.now()): AvatarMotion {
    if (this.#latest && now - this.#latestAt < STALE_MS) return { pose: this.#latest.pose, expression: this.#latest.expression, ...(this.#latest.detail ? { detail: this.#latest.detail } : {}) };
    return this.#idleMotion(now);
  }

  #idleMotion(now: number): AvatarMotion {
    const m = this.#idle;
    const last = this.#latest?.pose;
    const k = last ? Math.exp(-(now - this.#latestAt - STALE_MS) / 600) : 0; // ease back to rest
    const t = now / 1000;
    m.pose.yaw = (last?.yaw ?? 0) * k + 0.03 * Math.sin(t * 0.7);
    m.pose.pitch = (last?.pitch ?? 0) * k + 0.02 * Math.sin(t * 0.5 + 1);
    m.pose.roll = (last?.roll ?? 0) * k;
    m.pose.tx = (last?.tx ?? 0) * k;
    m.pose.ty = (last?.ty ?? 0) * k;
    m.pose.scale = 1 + ((last?.scale ?? 1) - 1) * k;
    const expression = m.expression as Float32Array;
    expression.fill(0);
    // A blink every ~4 s lasting ~150 ms.
    const phase = (t % 4) / 4;
    const blink = phase > 0.96 ? Math.sin(((phase - 0.96) / 0.04) * Math.PI) : 0;
    expression[EXPR.blinkL] = blink;
    expression[EXPR.blinkR] = blink;
    return m;
  }
}
