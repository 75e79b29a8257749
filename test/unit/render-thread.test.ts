/**
 * RenderThread: a session's generator in a worker thread. Real threads, the real mesh generator on
 * an enrolled photo, and the 200 ms-per-frame test double for back-pressure.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { enrollIdentityFromPhoto } from '../../server/src/avatar/identity/enroll.ts';
import { bootRenderWorker, RenderBusyError, RenderThread } from '../../worker/src/render/RenderThread.ts';
import { RenderThreadPool } from '../../worker/src/render/RenderThreadPool.ts';
import type { Worker } from 'node:worker_threads';
import type { GeneratorModule } from '../../worker/src/generator/registry.ts';
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

/** A pool whose boots are recorded (so a test can kill a spare or see that close() ended it). */
function recordingPool(): { pool: RenderThreadPool; booted: Worker[]; exited: Set<Worker> } {
  const booted: Worker[] = [];
  const exited = new Set<Worker>();
  const pool = new RenderThreadPool({
    boot: async (g: GeneratorModule) => {
      const w = await bootRenderWorker(g);
      booted.push(w);
      w.once('exit', () => exited.add(w));
      return w;
    },
  });
  return { pool, booted, exited };
}

test('a session takes the pool\'s booted spare thread, which renders the same pixels as a freshly started one, and taking it boots the next spare', async () => {
  const { pool, booted } = recordingPool();
  try {
    pool.prepare(generatorModule('mesh'));
    assert.equal(pool.spareCount, 1);
    await waitForCount(booted, 1);
    const pooled = await RenderThread.create({ generator: generatorModule('mesh'), source: identity, pool });
    threads.push(pooled);
    assert.equal(booted.length >= 1, true);
    assert.equal(pool.spareCount, 1, 'the next spare is booting');
    await waitForCount(booted, 2);
    const fresh = await RenderThread.create({ generator: generatorModule('mesh'), source: identity });
    threads.push(fresh);
    const [a] = await pooled.render(MOTION, VIEWS.slice(1, 2), { size: 96, format: 'i420' });
    const [b] = await fresh.render(MOTION, VIEWS.slice(1, 2), { size: 96, format: 'i420' });
    assert.ok(Buffer.from(a!.i420!).equals(Buffer.from(b!.i420!)), 'same frame');
    assert.equal(booted.length, 2, 'the fresh thread did not come from the pool');
  } finally {
    pool.close();
  }
});

test('a spare that died while it waited is replaced: the next session still gets a working thread; close() ends the spares', async () => {
  const { pool, booted, exited } = recordingPool();
  pool.prepare(generatorModule('mesh'));
  await waitForCount(booted, 1);
  await booted[0]!.terminate();
  const thread = await RenderThread.create({ generator: generatorModule('mesh'), source: identity, pool });
  threads.push(thread);
  const [f] = await thread.render(MOTION, VIEWS.slice(0, 1), { size: 64, format: 'i420' });
  assert.equal(f!.width, 64);
  assert.ok(booted.length >= 2, 'a new thread was booted for the session');
  await waitForCount(booted, 3);
  pool.close();
  pool.close();
  // three threads: the dead spare, the session's, and the new spare (in boot-completion order, so
  // which is which among the last two is not known): all but the session's end
  const t0 = Date.now();
  while (exited.size < 2 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
  assert.equal(exited.size, 2, 'close() terminated the waiting spare (and only it)');
  const [g] = await thread.render(MOTION, VIEWS.slice(0, 1), { size: 64, format: 'i420' });
  assert.equal(g!.width, 64, 'the session\'s thread still renders');
  await assert.rejects(pool.take(generatorModule('mesh')), InvalidStateError);
});

test('the source may be a promise (the asset fetch overlaps the thread start); when it rejects, create() rejects with that same error and no thread is left', async () => {
  const { pool, booted, exited } = recordingPool();
  try {
    pool.prepare(generatorModule('mesh'));
    const fetchError = new Error('asset fetch failed: 404');
    await assert.rejects(RenderThread.create({ generator: generatorModule('mesh'), source: Promise.reject(fetchError), pool }), (err) => err === fetchError);
    // the taken spare and the next one (booted by the take): exactly one of them, the taken one, ends
    await waitForCount(booted, 2);
    const t0 = Date.now();
    while (exited.size === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    assert.equal(exited.size, 1, 'the thread taken for the failed session was terminated, the new spare was not');
    const later = await RenderThread.create({ generator: generatorModule('mesh'), source: Promise.resolve(identity), pool });
    threads.push(later);
    assert.equal(later.capabilities.kind, 'mesh');
  } finally {
    pool.close();
  }
});

async function waitForCount(list: unknown[], n: number): Promise<void> {
  const t0 = Date.now();
  while (list.length < n) {
    if (Date.now() - t0 > 20_000) throw new Error(`only ${list.length} of ${n} threads booted in 20 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
