/**
 * Joining with a personal avatar (join `avatar.generator`) and falling back: AvatarService with fake
 * worker sockets and fake room/peers. A session that asks for the Gaussian head renders with it when
 * it can; otherwise with the photo's mesh, and the owner's avatar state says why (a reason code).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import type { Socket } from 'socket.io';
import { loadConfig } from '../../server/src/config.ts';
import { AvatarService, type IdentityAssetLookup } from '../../server/src/avatar/service/AvatarService.ts';
import { AvatarMetrics } from '../../server/src/avatar/service/AvatarMetrics.ts';
import { parseRequest, peerInfoSchema, workerAssignSchema, type PeerInfo } from '../../protocol/src/signaling.ts';
import type { AssetKind } from '../../protocol/src/generators.ts';
import type { Peer } from '../../server/src/rooms/Peer.ts';
import { fakePeer, fakeRoom } from '../helpers/fakeRoom.ts';
import { FakeWorkerSocket } from '../helpers/fakeWorkerSocket.ts';

const ID = 'a'.repeat(32);
const HEAD: AssetKind[] = ['enrolled-photo', 'gaussian-head'];
const PHOTO: AssetKind[] = ['enrolled-photo'];

function setup(assets: AssetKind[], env: Record<string, string> = {}): AvatarService {
  const lookup: IdentityAssetLookup = async () => assets;
  return new AvatarService(loadConfig(env), pino({ level: 'silent' }), new AvatarMetrics(new Registry()), lookup);
}

function worker(service: AvatarService, workerId: string, generators: string[]): FakeWorkerSocket {
  const socket = new FakeWorkerSocket();
  service.attachWorker(socket as unknown as Socket);
  assert.deepEqual(socket.fire('worker:register', { workerId, capacity: 4, generators }), { ok: true, data: {} });
  return socket;
}

/** The assignments a worker received (validated as the worker would). */
const assigns = (w: FakeWorkerSocket): ReturnType<typeof workerAssignSchema.parse>[] =>
  w.sent.filter((m) => m.event === 'worker:assign').map((m) => workerAssignSchema.parse(m.payload));

const avatarOf = (owner: Peer): NonNullable<PeerInfo['avatar']> => {
  const info = peerInfoSchema.parse({ peerId: owner.id, displayName: owner.displayName, producers: [], ...owner.attributes });
  assert.ok(info.avatar, 'the owner shows an avatar');
  return info.avatar;
};

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a join may ask for a generator by name; an unknown generator is refused as BAD_REQUEST', () => {
  const base = { protocolVersion: 1, roomId: 'r', displayName: 'ada' };
  const ok = parseRequest('join', { ...base, avatar: { identityId: ID, generator: 'gaussian' } });
  assert.ok(ok.ok && ok.value.avatar?.generator === 'gaussian');
  const plain = parseRequest('join', { ...base, avatar: { identityId: ID } });
  assert.ok(plain.ok && plain.value.avatar?.generator === undefined, 'the generator is optional');
  const bad = parseRequest('join', { ...base, avatar: { identityId: ID, generator: 'nerf' } });
  assert.ok(!bad.ok && bad.error.code === 'BAD_REQUEST' && /avatar\.generator/.test(bad.error.message), JSON.stringify(bad));
});

test('a session that asks for the Gaussian head renders with it when the identity has one and a worker registered it, with no fallback', async () => {
  const service = setup(HEAD);
  const w = worker(service, 'w1', ['mesh', 'gaussian']);
  const owner = fakePeer('owner');
  const session = service.startSession(fakeRoom('r', [owner]), owner, ID, 'keypoint', 'gaussian');
  await settle();
  assert.equal(assigns(w).at(-1)?.generator, 'gaussian');
  assert.equal(avatarOf(owner).generator, 'gaussian');
  assert.equal(avatarOf(owner).fallback, undefined);
  assert.equal(session.fallback, undefined);
  service.close();
});

test('the voice driver asks for the Gaussian head the same way', async () => {
  const service = setup(HEAD);
  const w = worker(service, 'w1', ['mesh', 'gaussian']);
  const owner = fakePeer('owner');
  service.startSession(fakeRoom('r', [owner]), owner, ID, 'voice', 'gaussian');
  await settle();
  assert.deepEqual([assigns(w).at(-1)?.generator, assigns(w).at(-1)?.driver], ['gaussian', 'voice']);
  service.close();
});

test('without a generator in the join the server-wide preference decides, and a mesh session is no fallback even when the identity has a head', async () => {
  const service = setup(HEAD);
  const w = worker(service, 'w1', ['mesh', 'gaussian']);
  const owner = fakePeer('owner');
  service.startSession(fakeRoom('r', [owner]), owner, ID);
  await settle();
  assert.equal(assigns(w).at(-1)?.generator, 'mesh');
  assert.equal(avatarOf(owner).fallback, undefined);
  service.close();
});

test('asking for the Gaussian head of an identity that has only its photo renders the photo (mesh), with fallback ASSET_MISSING', async () => {
  const service = setup(PHOTO);
  const w = worker(service, 'w1', ['mesh', 'gaussian']);
  const owner = fakePeer('owner');
  service.startSession(fakeRoom('r', [owner]), owner, ID, 'keypoint', 'gaussian');
  await settle();
  assert.equal(assigns(w).at(-1)?.generator, 'mesh');
  const avatar = avatarOf(owner);
  assert.equal(avatar.generator, 'mesh');
  assert.equal(avatar.fallback?.code, 'ASSET_MISSING');
  assert.equal(avatar.fallback?.requested, 'gaussian');
  assert.match(avatar.fallback!.message, /no trained personal avatar/);
  service.close();
});

test('when no worker renders the Gaussian head the session renders the photo, with fallback GENERATOR_UNAVAILABLE, and the owner is told through avatarstate', async () => {
  const service = setup(HEAD);
  const w = worker(service, 'w1', ['mesh']);
  const owner = fakePeer('owner');
  const told: (string | undefined)[] = [];
  service.on('avatarstate', (s) => told.push(s.fallback?.code));
  service.startSession(fakeRoom('r', [owner]), owner, ID, 'keypoint', 'gaussian');
  await settle();
  assert.equal(assigns(w).at(-1)?.generator, 'mesh');
  assert.equal(avatarOf(owner).fallback?.code, 'GENERATOR_UNAVAILABLE');
  assert.ok(told.includes('GENERATOR_UNAVAILABLE'), `avatarstate events: ${JSON.stringify(told)}`);
  service.close();
});

test('when the Gaussian workers are full the session renders the photo with fallback GENERATOR_BUSY', async () => {
  const service = setup(HEAD);
  const socket = new FakeWorkerSocket();
  service.attachWorker(socket as unknown as Socket);
  const offer = (kind: string, sessions: number): unknown => ({ kind, sessions, frameCostMs: 1, gpu: false, sizes: [256], maxViewDeg: { yaw: 45, pitch: 20, roll: 20 } });
  socket.fire('worker:register', { workerId: 'w1', capacity: 4, generators: [offer('mesh', 4), offer('gaussian', 1)] });
  const room = fakeRoom('r', []);
  const first = fakePeer('first');
  const second = fakePeer('second');
  service.startSession(room, first, ID, 'keypoint', 'gaussian');
  service.startSession(room, second, 'b'.repeat(32), 'keypoint', 'gaussian');
  await settle();
  assert.equal(avatarOf(first).generator, 'gaussian');
  assert.equal(avatarOf(second).generator, 'mesh');
  assert.equal(avatarOf(second).fallback?.code, 'GENERATOR_BUSY');
  service.close();
});

test('a worker that cannot load the Gaussian asset (ASSET_INVALID) gets the session moved to the photo at once, and the fallback carries its message', async () => {
  const service = setup(HEAD);
  const w = worker(service, 'w1', ['mesh', 'gaussian']);
  const owner = fakePeer('owner');
  const session = service.startSession(fakeRoom('r', [owner]), owner, ID, 'keypoint', 'gaussian');
  await settle();
  assert.equal(assigns(w).length, 1);
  w.fire('worker:session-state', { sessionId: session.id, state: 'failed', code: 'ASSET_INVALID', message: 'AVGS: bad magic' });
  const again = assigns(w);
  assert.equal(again.length, 2, 'reassigned at once');
  assert.equal(again[1]!.generator, 'mesh');
  assert.equal(session.gaveUp, false);
  const avatar = avatarOf(owner);
  assert.equal(avatar.generator, 'mesh');
  assert.equal(avatar.fallback?.code, 'ASSET_INVALID');
  assert.match(avatar.fallback!.message, /could not be loaded \(AVGS: bad magic\)/);
  // The Gaussian head is not tried again for this session, even after its worker dies.
  service.workerExited('w1'); // its process exited (a dropped control socket alone keeps the session for the reconnection grace)
  const w2 = worker(service, 'w2', ['mesh', 'gaussian']);
  assert.equal(assigns(w2).at(-1)?.generator, 'mesh');
  assert.equal(avatarOf(owner).fallback?.code, 'ASSET_INVALID');
  service.close();
});

test('a Gaussian session that fails to start three times for another reason falls back to the photo (GENERATOR_FAILED) instead of giving up', async () => {
  const service = setup(HEAD);
  const w = worker(service, 'w1', ['mesh', 'gaussian']);
  const owner = fakePeer('owner');
  const session = service.startSession(fakeRoom('r', [owner]), owner, ID, 'keypoint', 'gaussian');
  await settle();
  for (let i = 0; i < 3; i++) w.fire('worker:session-state', { sessionId: session.id, state: 'failed', message: 'render thread exited' });
  assert.deepEqual(assigns(w).map((a) => a.generator), ['gaussian', 'gaussian', 'gaussian', 'mesh']);
  assert.equal(session.gaveUp, false);
  assert.equal(avatarOf(owner).fallback?.code, 'GENERATOR_FAILED');
  // The photo failing as often still gives up, as before.
  for (let i = 0; i < 3; i++) w.fire('worker:session-state', { sessionId: session.id, state: 'failed', message: 'no' });
  assert.equal(session.gaveUp, true);
  assert.equal(avatarOf(owner).state, 'failed');
  service.close();
});

test('a photo session whose asset fails to load (nothing to fall back to) keeps the old failure count, and a bad session-state code is ignored', async () => {
  const service = setup(PHOTO);
  const w = worker(service, 'w1', ['mesh']);
  const owner = fakePeer('owner');
  const session = service.startSession(fakeRoom('r', [owner]), owner, ID);
  await settle();
  w.fire('worker:session-state', { sessionId: session.id, state: 'failed', code: 'SOMETHING_ELSE' });
  assert.equal(assigns(w).length, 1, 'a malformed report is ignored');
  w.fire('worker:session-state', { sessionId: session.id, state: 'failed', code: 'ASSET_INVALID', message: 'bad identity file' });
  assert.equal(session.failures, 1);
  assert.equal(assigns(w).at(-1)?.generator, 'mesh');
  assert.equal(avatarOf(owner).fallback, undefined);
  service.close();
});
