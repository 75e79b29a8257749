/** FrameScheduler: an avatar session's regular frames and early frames on sudden motion (mocked timers). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameScheduler } from '../../worker/src/FrameScheduler.ts';

/** A scheduler on a manual clock; `advance(ms)` moves the clock and the mocked timers 1 ms at a time. */
function setup(t: import('node:test').TestContext, fps = 25): { s: FrameScheduler; frames: number[]; advance(ms: number): void; clock(): number } {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let clock = 1000;
  const frames: number[] = [];
  const s = new FrameScheduler({
    fps,
    now: () => clock,
    render: () => void frames.push(clock),
  });
  t.after(() => s.stop());
  return {
    s,
    frames,
    clock: () => clock,
    advance(ms: number) {
      for (let i = 0; i < ms; i++) {
        clock++;
        t.mock.timers.tick(1);
      }
    },
  };
}

test('frames come at the frame rate without drifting', (t) => {
  const { s, frames, advance } = setup(t, 25);
  s.start();
  advance(1000);
  assert.equal(frames.length, 26, 'a frame at start, then one every 40 ms');
  assert.deepEqual(frames.slice(1, 4).map((f, i) => f - frames[i]!), [40, 40, 40]);
});

test('a nudge renders at once when the last frame is at least half an interval old, and the cadence restarts from it', (t) => {
  const { s, frames, advance, clock } = setup(t);
  s.start();
  advance(10);
  assert.equal(s.nudge(), false, '10 ms after a frame: too soon');
  advance(15);
  assert.equal(s.nudge(), true, '25 ms after a frame: early frame');
  assert.equal(frames.at(-1), clock());
  assert.equal(s.earlyFrames, 1);
  const early = clock();
  advance(45);
  assert.deepEqual(frames.slice(-2), [early, early + 40], 'next regular frame one interval after the early one');
  assert.equal(frames.length, 3);
});

test('no frames after stop(); stop() is idempotent; nudge() on a stopped scheduler does nothing', (t) => {
  const { s, frames, advance } = setup(t);
  s.start();
  advance(100);
  const n = frames.length;
  s.stop();
  s.stop();
  advance(200);
  assert.equal(s.nudge(), false);
  assert.equal(frames.length, n);
});

test('a frame rate outside (0, 120] or a minimum interval longer than the interval is refused with a TypeError', () => {
  for (const fps of [0, -1, 121, Number.NaN]) assert.throws(() => new FrameScheduler({ fps, render: () => undefined }), TypeError);
  assert.throws(() => new FrameScheduler({ fps: 25, minIntervalMs: 50, render: () => undefined }), TypeError);
});
