import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lossBetween, qualityOf, QUALITY_THRESHOLDS } from '../../client/src/ui/ConnectionQuality.ts';

test('a clean connection (no loss, short RTT, low jitter, full frame rate) is good', () => {
  assert.equal(qualityOf({ loss: 0, rttMs: 20, jitterMs: 5, fps: 30 }), 'good');
});

test('each metric alone past its fair threshold makes the connection fair', () => {
  assert.equal(qualityOf({ loss: 0.03, rttMs: 20, jitterMs: 5, fps: 30 }), 'fair');
  assert.equal(qualityOf({ loss: 0, rttMs: 250, jitterMs: 5, fps: 30 }), 'fair');
  assert.equal(qualityOf({ loss: 0, rttMs: 20, jitterMs: 50, fps: 30 }), 'fair');
  assert.equal(qualityOf({ loss: 0, rttMs: 20, jitterMs: 5, fps: 15 }), 'fair');
});

test('each metric alone past its poor threshold makes the connection poor, whatever the others', () => {
  assert.equal(qualityOf({ loss: 0.1, rttMs: 20, jitterMs: 5, fps: 30 }), 'poor');
  assert.equal(qualityOf({ loss: 0, rttMs: 500, jitterMs: 5, fps: 30 }), 'poor');
  assert.equal(qualityOf({ loss: 0, rttMs: 20, jitterMs: 150, fps: 30 }), 'poor');
  assert.equal(qualityOf({ loss: 0, rttMs: 20, jitterMs: 5, fps: 5 }), 'poor');
  assert.equal(qualityOf({ loss: 0.03, rttMs: 500, jitterMs: 5, fps: 30 }), 'poor', 'the worst metric wins');
});

test('thresholds are inclusive on the worse side', () => {
  assert.equal(qualityOf({ loss: QUALITY_THRESHOLDS.loss.fair }), 'fair');
  assert.equal(qualityOf({ rttMs: QUALITY_THRESHOLDS.rttMs.poor }), 'poor');
  assert.equal(qualityOf({ fps: QUALITY_THRESHOLDS.fps.fair }), 'good');
  assert.equal(qualityOf({ fps: QUALITY_THRESHOLDS.fps.poor }), 'fair');
});

test('unknown metrics (audio only, no RTT yet, NaN) do not count', () => {
  assert.equal(qualityOf({}), 'good');
  assert.equal(qualityOf({ loss: 0, fps: undefined, rttMs: Number.NaN }), 'good');
  assert.equal(qualityOf({ fps: undefined, loss: 0.09 }), 'poor');
});

test('loss is measured over the interval between two readings, not since the start', () => {
  assert.equal(lossBetween(undefined, { packetsReceived: 100, packetsLost: 50 }), undefined);
  assert.equal(lossBetween({ packetsReceived: 100, packetsLost: 50 }, { packetsReceived: 190, packetsLost: 60 }), 0.1);
  assert.equal(lossBetween({ packetsReceived: 100, packetsLost: 5 }, { packetsReceived: 100, packetsLost: 5 }), undefined, 'no traffic: unknown');
  assert.equal(lossBetween({ packetsReceived: 100, packetsLost: 5 }, { packetsReceived: 200, packetsLost: 3 }), 0, 'a lost count going down (late packets) is no loss');
});
