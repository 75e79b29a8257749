/**
 * Connection quality (good / fair / poor) from WebRTC stats: packet loss, round-trip time, jitter and
 * video frame rate. The worst of the four decides. Thresholds (one place, unit-tested):
 *
 * | metric            | good      | fair        | poor     |
 * |-------------------|-----------|-------------|----------|
 * | packet loss       | < 2 %     | 2 – 8 %     | ≥ 8 %    |
 * | round-trip time   | < 200 ms  | 200–400 ms  | ≥ 400 ms |
 * | jitter            | < 30 ms   | 30–100 ms   | ≥ 100 ms |
 * | video frame rate  | ≥ 20 fps  | 10–20 fps   | < 10 fps |
 *
 * (Loss above ~2 % and RTT above ~200 ms are where calls start to feel degraded; under 10 fps motion is
 * visibly choppy.) A metric that is unknown (no video, no RTT yet) does not count.
 */
export type Quality = 'good' | 'fair' | 'poor';

export interface QualitySample {
  /** Fraction of packets lost in the interval, 0…1. */
  loss?: number | undefined;
  rttMs?: number | undefined;
  jitterMs?: number | undefined;
  /** Video frames per second (decoded for a remote peer, encoded for the uplink). */
  fps?: number | undefined;
}

export const QUALITY_THRESHOLDS = {
  loss: { fair: 0.02, poor: 0.08 },
  rttMs: { fair: 200, poor: 400 },
  jitterMs: { fair: 30, poor: 100 },
  /** Frame rate: lower is worse. */
  fps: { fair: 20, poor: 10 },
} as const;

const RANK: Record<Quality, number> = { good: 0, fair: 1, poor: 2 };

export function qualityOf(s: QualitySample): Quality {
  const levels: Quality[] = ['good'];
  const higherWorse = (v: number | undefined, t: { fair: number; poor: number }): void => {
    if (v === undefined || !Number.isFinite(v)) return;
    levels.push(v >= t.poor ? 'poor' : v >= t.fair ? 'fair' : 'good');
  };
  higherWorse(s.loss, QUALITY_THRESHOLDS.loss);
  higherWorse(s.rttMs, QUALITY_THRESHOLDS.rttMs);
  higherWorse(s.jitterMs, QUALITY_THRESHOLDS.jitterMs);
  if (s.fps !== undefined && Number.isFinite(s.fps)) levels.push(s.fps < QUALITY_THRESHOLDS.fps.poor ? 'poor' : s.fps < QUALITY_THRESHOLDS.fps.fair ? 'fair' : 'good');
  return levels.reduce((a, b) => (RANK[b] > RANK[a] ? b : a));
}

/** Cumulative counters of one stream at one time; two of them give the interval's loss. */
export interface Counters {
  packetsReceived: number;
  packetsLost: number;
}

/** The fraction of packets lost between two readings of cumulative counters (undefined without traffic). */
export function lossBetween(before: Counters | undefined, after: Counters): number | undefined {
  if (!before) return undefined;
  const lost = Math.max(0, after.packetsLost - before.packetsLost);
  const received = Math.max(0, after.packetsReceived - before.packetsReceived);
  return lost + received > 0 ? lost / (lost + received) : undefined;
}
