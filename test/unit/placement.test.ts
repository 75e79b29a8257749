/**
 * Placement: identity → the assets it has → the generators that render them → a worker that
 * registered one of them. The pure decision (placement.ts) and AvatarService using it with a real
 * IdentityStore (assets on disk) and fake worker sockets.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import type { Socket } from 'socket.io';
import { loadConfig } from '../../server/src/config.ts';
import { AvatarService } from '../../server/src/avatar/service/AvatarService.ts';
import { AvatarMetrics } from '../../server/src/avatar/service/AvatarMetrics.ts';
import { generatorsFor, offerFromName, placeSession, type PlacementWorker } from '../../server/src/avatar/service/placement.ts';
import { IdentityStore } from '../../server/src/avatar/identity/IdentityStore.ts';
import { FACE_TRIANGLES } from '../../models/face/topology.ts';
import type { GeneratorOffer } from '../../protocol/src/generators.ts';
import type { WorkerAssign } from '../../protocol/src/signaling.ts';
import type { Room } from '../../server/src/rooms/Room.ts';
import type { Peer } from '../../server/src/rooms/Peer.ts';
import { fakePeer, fakeRoom } from '../helpers/fakeRoom.ts';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-placement-'));
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const offer = (kind: string, extra: Partial<GeneratorOffer> = {}): GeneratorOffer => ({ ...offerFromName(kind, 4), ...extra });
const pw = (id: string, offers: GeneratorOffer[], sessionKinds: string[] = [], capacity = 4): PlacementWorker => ({ id, capacity, offers: new Map(offers.map((o) => [o.kind, o])), sessionKinds });

test('generators for an identity follow its assets, the preferred generator first', () => {
  assert.deepEqual(generatorsFor(['enrolled-photo'], 'mesh'), ['mesh']);
  assert.deepEqual(generatorsFor(['enrolled-photo'], 'gaussian'), ['mesh']);
  assert.deepEqual(generatorsFor(['enrolled-photo', 'gaussian-head'], 'gaussian'), ['gaussian', 'mesh']);
  assert.deepEqual(generatorsFor(['enrolled-photo', 'gaussian-head'], 'mesh'), ['mesh', 'gaussian']);
  assert.deepEqual(generatorsFor(['gaussian-head'], 'mesh'), ['gaussian']);
  assert.deepEqual(generatorsFor([], 'mesh'), []);
});

test('a session is placed only on a worker that registered a generator its identity has an asset for, within that generator\'s session limit', () => {
  const meshOnly = pw('mesh-only', [offer('mesh')]);
  const gaussOnly = pw('gauss-only', [offer('gaussian', { sessions: 1 })]);
  // photo only: never the Gaussian worker, even though it is idle and the mesh worker is busier
  const busyMesh = pw('mesh-only', [offer('mesh')], ['mesh', 'mesh']);
  assert.deepEqual(placeSession({ assets: ['enrolled-photo'], preferred: 'gaussian', size: 256 }, [gaussOnly, busyMesh]), { workerId: 'mesh-only', generator: 'mesh' });
  assert.equal(placeSession({ assets: ['enrolled-photo'], preferred: 'mesh', size: 256 }, [gaussOnly]), undefined);
  // a Gaussian head only: only the Gaussian worker
  assert.deepEqual(placeSession({ assets: ['gaussian-head'], preferred: 'mesh', size: 256 }, [meshOnly, gaussOnly]), { workerId: 'gauss-only', generator: 'gaussian' });
  // both assets: the preferred generator's worker, and the other one when that worker is full
  assert.deepEqual(placeSession({ assets: ['enrolled-photo', 'gaussian-head'], preferred: 'gaussian', size: 256 }, [meshOnly, gaussOnly]), { workerId: 'gauss-only', generator: 'gaussian' });
  const fullGauss = pw('gauss-only', [offer('gaussian', { sessions: 1 })], ['gaussian']);
  assert.deepEqual(placeSession({ assets: ['enrolled-photo', 'gaussian-head'], preferred: 'gaussian', size: 256 }, [meshOnly, fullGauss]), { workerId: 'mesh-only', generator: 'mesh' });
  // the worker's total capacity bounds all kinds together
  const both = pw('both', [offer('mesh'), offer('gaussian')], ['mesh', 'mesh'], 2);
  assert.equal(placeSession({ assets: ['enrolled-photo', 'gaussian-head'], preferred: 'gaussian', size: 256 }, [both]), undefined);
});

test('among workers with room: the one to avoid last, then the least loaded, then one listing the size, then the cheapest frame', () => {
  const req = { assets: ['enrolled-photo'] as const, preferred: 'mesh' as const, size: 256 };
  const a = pw('a', [offer('mesh', { frameCostMs: 9 })]);
  const b = pw('b', [offer('mesh', { frameCostMs: 3 })]);
  assert.equal(placeSession(req, [a, b])?.workerId, 'b', 'cheaper frame');
  assert.equal(placeSession({ ...req, avoid: 'b' }, [a, b])?.workerId, 'a', 'avoided worker last');
  const sized = pw('c', [offer('mesh', { frameCostMs: 9, sizes: [256] })]);
  assert.equal(placeSession(req, [b, sized])?.workerId, 'c', 'lists the size');
  assert.equal(placeSession(req, [pw('busy', [offer('mesh')], ['mesh']), a])?.workerId, 'a', 'least loaded');
});

// ---- AvatarService with a real identity store --------------------------------------------------

class FakeWorkerSocket {
  readonly handlers = new Map<string, (payload: unknown, ack?: (r: unknown) => void) => void>();
  readonly assigned: WorkerAssign[] = [];
  on(event: string, fn: (payload: unknown, ack?: (r: unknown) => void) => void): this {
    this.handlers.set(event, fn);
    return this;
  }
  emit(): boolean {
    return true;
  }
  timeout(): { emit: (event: string, payload: unknown, cb: (err: Error | null, res: unknown) => void) => void } {
    return { emit: (event, payload, cb) => (event === 'worker:assign' && this.assigned.push(payload as WorkerAssign), cb(null, { ok: true })) };
  }
  disconnect(): void {}
  fire(event: string, payload: unknown): unknown {
    let answer: unknown;
    this.handlers.get(event)!(payload, (r) => (answer = r));
    return answer;
  }
}


async function saveIdentity(store: IdentityStore): Promise<string> {
  const size = 16;
  const texture = new Uint8ClampedArray(size * size * 4).fill(100);
  const landmarks = new Float32Array(478 * 3);
  const meta = await store.save({
    identity: { size, texture, background: texture, landmarks, humanLandmarks: landmarks, mesh: { triangles: FACE_TRIANGLES, vertexCount: 468 }, faceCount: 1, crop: { x: 0, y: 0, size }, sourceWidth: size, sourceHeight: size, angles: { yaw: 0, pitch: 0, roll: 0 } },
    source: new Uint8Array([1]), sourceType: 'image/png', cropPng: new Uint8Array([1]), enrollMs: 1,
  });
  return meta.identityId;
}

test('AvatarService places a session whose identity has a Gaussian head only on a worker that registered "gaussian", a photo-only identity only on a "mesh" worker, and clamps free view to each generator\'s limits', async () => {
  const store = await IdentityStore.create({ dataDir });
  const service = new AvatarService(loadConfig({ AVATAR_GENERATOR: 'gaussian' }), pino({ level: 'silent' }), new AvatarMetrics(new Registry()), (id) => store.assetKinds(id));
  const meshWorker = new FakeWorkerSocket();
  const gaussWorker = new FakeWorkerSocket();
  service.attachWorker(meshWorker as unknown as Socket);
  service.attachWorker(gaussWorker as unknown as Socket);
  assert.deepEqual(meshWorker.fire('worker:register', { workerId: 'm', capacity: 4, generators: ['mesh'] }), { ok: true, data: {} });
  assert.deepEqual(gaussWorker.fire('worker:register', { workerId: 'g', capacity: 4, generators: [offer('gaussian', { sessions: 2, frameCostMs: 25, maxViewDeg: { yaw: 45, pitch: 20, roll: 20 } })] }), { ok: true, data: {} });

  const photoOnly = await saveIdentity(store);
  const withHead = await saveIdentity(store);
  await store.putAsset(withHead, 'gaussian-head', new Uint8Array(64).fill(7));

  const ownerA = fakePeer('a');
  const a = service.startSession(fakeRoom('ra', [ownerA]), ownerA, withHead);
  const ownerB = fakePeer('b');
  const b = service.startSession(fakeRoom('rb', [ownerB]), ownerB, photoOnly);
  await new Promise((r) => setTimeout(r, 100)); // the asset lookups are asynchronous
  assert.equal(a.workerId, 'g');
  assert.equal(a.generator, 'gaussian');
  assert.deepEqual(gaussWorker.assigned.map((x) => [x.sessionId, x.generator]), [[a.id, 'gaussian']]);
  assert.equal(b.workerId, 'm');
  assert.deepEqual(meshWorker.assigned.map((x) => [x.sessionId, x.generator]), [[b.id, 'mesh']]);

  // free view is clamped to the limits the session's generator registered
  assert.deepEqual(service.setView(ownerA, ownerA, 'default', { yaw: 40, pitch: 30, roll: 0 }).view, { yaw: 40, pitch: 20, roll: 0 });
  assert.deepEqual(service.setView(ownerB, ownerB, 'default', { yaw: 40, pitch: 30, roll: 0 }).view, { yaw: 30, pitch: 20, roll: 0 });
  service.close();
  store.close();
});
