/** The gaussian-call bench's options (bench/gaussian-call.ts): defaults from the server's config, bad values refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gaussianCallSuite } from '../../bench/gaussian-call.ts';
import { MEGAMIND } from '../../bench/gaussian.ts';
import { loadConfig } from '../../server/src/config.ts';
import { UsageError } from '../../bench/suite.ts';

test('by default the gaussian-call bench trains on Megamind.avi for the server\'s default training budget, with a parallel call', () => {
  const o = gaussianCallSuite.parse({});
  assert.equal(o.clip, MEGAMIND);
  assert.equal(o.minutes, loadConfig({}).training.minutes);
  assert.equal(o.iterations, undefined);
  assert.equal(o.call, true);
  assert.equal(gaussianCallSuite.needsLoopbackNetns, true);
});

test('--minutes, --iterations and --no-call reach the run; bad values and a missing clip are usage errors', () => {
  const o = gaussianCallSuite.parse({ minutes: '2', iterations: '50', 'no-call': true });
  assert.deepEqual([o.minutes, o.iterations, o.call], [2, 50, false]);
  assert.throws(() => gaussianCallSuite.parse({ minutes: '0' }), UsageError);
  assert.throws(() => gaussianCallSuite.parse({ minutes: 'two' }), UsageError);
  assert.throws(() => gaussianCallSuite.parse({ iterations: '-1' }), UsageError);
  assert.throws(() => gaussianCallSuite.parse({ clip: '/nonexistent/clip.mp4' }), UsageError);
});
