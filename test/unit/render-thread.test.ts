/**
 * RenderThread: a session's generator in a worker thread. Real threads, the real mesh generator on
 * an enrolled photo, and the 200 ms-per-frame test double for back-pressure.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { enrollIdentityFromPhoto } from '../../server/src/avatar/identity/enroll.ts';
import { RenderBusyError, RenderThread } from '../../worker/src/render/RenderThread.ts';
import { generatorModule } from '../../worker/src/generator/registry.ts';
import { MeshAvatarGenerator } from '../../worker/src/generator/mesh-generator.ts';
import { InvalidStateError } from '../../worker/src/errors.ts';
import { SLOW_FRAME_MS, SLOW_GENERATOR_MODULE } from '../helpers/slowGenerator.ts';
import type { AvatarMotion, EnrolledIdentity } from '../../worker/src/generator/generator.ts';

const PHOTO = new URL('../fixtures/astronaut.png', import.meta.url);
const MOTION: AvatarMotion = { pose: { yaw: 0.1, pitch: 0, roll: 0, tx: 0, ty: 0, scale: 1 }, expression: new Float32Array(12).fill(0.2) };
const VIEWS = [{ yaw: 0, pitch: 0, roll: 0 }, { yaw: 0.3, pitch: 0, roll: 0 }, { yaw: -0.3, pitch: 0.1, roll: 0 }];
let identity: EnrolledIdentity;
const threads: RenderThread[] = [];

before(async () => {
  identity = await enrollIdentityFromPhoto(fs.readFileSync(PHOTO));
});
after(() => {
  for (const t of threads) t.close();
});

test('several views of one motion render in one batch in the thread, the same pixels as the generator on this thread, and buffers handed back are reused', async () => {
  const thread = await RenderThread.create({ generator: generatorModule('mesh'), source: identity });
  threads.push(thread);
  assert.equal(thread.capabilities.kind, 'mesh');
  const frames = await thread.render(MOTION, VIEWS, { size: 128, format: 'i420' });
  assert.equal(frames.length, VIEWS.length);
  const local = new MeshAvatarGenerator();
  await local.initialize(identity);
  for (let i = 0; i < VIEWS.length; i++) {
    const expected = local.render(MOTION, VIEWS[i], { size: 128, format: 'i420' });
    assert.equal(frames[i]!.width, 128);
    assert.ok(Buffer.from(frames[i]!.i420!).equals(Buffer.from(expected.i420!)), `view ${i} renders as on the main thread`);
  }
  const [a] = frames;
  const first = Buffer.from(a!.i420!);
  const again = await thread.render(MOTION, VIEWS.slice(0, 1), { size: 128, format: 'i420', reuse: [a] });
  assert.equal(a!.i420!.byteLength, 0, 'the handed-back buffer went to the thread');
  assert.ok(Buffer.from(again[0]!.i420!).equals(first), 'rendered into it, same picture');
  local.close();
});

test('while a batch renders the next one is refused with RenderBusyError (dropped, not queued), and the event loop stays free', async () => {
  const thread = await RenderThread.create({ generator: SLOW_GENERATOR_MODULE, source: identity });
  threads.push(thread);
  const t0 = performance.now();
  const first = thread.render(MOTION, VIEWS.slice(0, 1), { size: 64, format: 'i420' });
  assert.equal(thread.busy, true);
  await assert.rejects(thread.render(MOTION, VIEWS.slice(0, 1), { size: 64, format: 'i420' }), RenderBusyError);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  await first;
  clearInterval(timer);
  const ms = performance.now() - t0;
  assert.ok(ms >= SLOW_FRAME_MS - 5, `the frame took ${ms.toFixed(0)} ms`);
  assert.ok(ticks >= (SLOW_FRAME_MS / 10) * 0.5, `a 10 ms timer ran ${ticks} times during a ${SLOW_FRAME_MS} ms frame`);
  assert.equal(thread.busy, false);
});

test('a source the generator cannot use fails create() with its error; a closed thread refuses renders; close() is idempotent', async () => {
  await assert.rejects(RenderThread.create({ generator: generatorModule('gaussian'), source: identity }), /gaussian-head asset/);
  await assert.rejects(RenderThread.create({ generator: { module: SLOW_GENERATOR_MODULE.module, exportName: 'Nope', needsGpu: false }, source: identity }), /no generator export "Nope"/);
  const thread = await RenderThread.create({ generator: generatorModule('mesh'), source: identity });
  const pending = thread.render(MOTION, VIEWS, { size: 64, format: 'i420' });
  thread.close();
  thread.close();
  await assert.rejects(pending, InvalidStateError);
  await assert.rejects(thread.render(MOTION, VIEWS, { size: 64, format: 'i420' }), InvalidStateError);
});
