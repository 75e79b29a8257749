/** The keypoint bench's defaults (bench/keypoint.ts): a real driving clip, and latency targets on the browser path. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { keypointSuite, resolveDriving, REAL_DRIVING_CLIP, TARGETS } from '../../bench/keypoint.ts';

const quiet = (): void => undefined;

test('by default the keypoint bench is driven by the real Megamind.avi clip and labels it driving_kind "real"', () => {
  assert.equal(keypointSuite.parse({}).driving, undefined);
  const r = resolveDriving(undefined, quiet, () => ({ path: REAL_DRIVING_CLIP }));
  assert.deepEqual(r, { file: REAL_DRIVING_CLIP, kind: 'real', note: null });
  if (fs.existsSync(REAL_DRIVING_CLIP)) assert.deepEqual(resolveDriving(undefined, quiet), r);
});

test('--driving synthetic selects the generator-rendered clip, labelled driving_kind "synthetic", without looking for the real clip', () => {
  assert.equal(keypointSuite.parse({ driving: 'synthetic' }).driving, 'synthetic');
  const r = resolveDriving('synthetic', quiet, () => assert.fail('the real clip is not needed'));
  assert.deepEqual(r, { file: undefined, kind: 'synthetic', note: null });
});

test('without the real clip the bench falls back to the synthetic clip and says so in the JSON', () => {
  const r = resolveDriving(undefined, quiet, () => ({ path: null, reason: 'not root' }));
  assert.equal(r.kind, 'synthetic');
  assert.match(r.note ?? '', /not root.*synthetic/);
});

test('the glass-to-glass target is measured on the browser path, not on the Node owner that skips capture and tracking', () => {
  const fields = TARGETS.map(([k]) => k);
  assert.ok(fields.includes('glass_to_glass_browser_ms_p50'), fields.join(', '));
  assert.ok(!fields.some((k) => k.startsWith('glass_to_glass_ms')), fields.join(', '));
});
