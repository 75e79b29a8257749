/**
 * Avatar session recovery inside AvatarService (fake worker sockets, fake room/peers): a runner that
 * dies while its worker stays connected is released and assigned again with a new token, and fails
 * for good after AVATAR_MAX_RUNNER_RESTARTS; a worker whose control socket drops keeps its sessions
 * for WORKER_RECONNECT_GRACE_MS and reconciles them when it re-registers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import type { Socket } from 'socket.io';
import { loadConfig } from '../../server/src/config.ts';
import { AvatarService, type AvatarSession } from '../../server/src/avatar/service/AvatarService.ts';
import { AvatarMetrics } from '../../server/src/avatar/service/AvatarMetrics.ts';
import type { WorkerAssign } from '../../protocol/src/signaling.ts';
import { fakePeer, fakeRoom } from '../helpers/fakeRoom.ts';
import { FakeWorkerSocket } from '../helpers/fakeWorkerSocket.ts';

function setup(env: Record<string, string> = {}): AvatarService {
  return new AvatarService(loadConfig({ AVATAR_START_TIMEOUT_MS: '60000', ...env }), pino({ level: 'silent' }), new AvatarMetrics(new Registry()));
}

function worker(service: AvatarService, workerId: string, sessions?: string[]): FakeWorkerSocket {
  const socket = new FakeWorkerSocket();
  service.attachWorker(socket as unknown as Socket);
  assert.deepEqual(socket.fire('worker:register', { workerId, capacity: 4, generators: ['mesh'], ...(sessions ? { sessions } : {}) }), { ok: true, data: {} });
  return socket;
}

function sent(socket: FakeWorkerSocket, event: string): unknown[] {
  return socket.sent.filter((m) => m.event === event).map((m) => m.payload);
}

/** An avatar peer stand-in that can be closed (closing emits 'close' once, like a Peer). */
function avatarPeer(name: string): ReturnType<typeof fakePeer> {
  const peer = fakePeer(name) as unknown as { closed: boolean; emit: (e: string) => boolean; close: () => void };
  peer.close = () => {
    if (peer.closed) return;
    peer.closed = true;
    peer.emit('close');
  };
  return peer as unknown as ReturnType<typeof fakePeer>;
}

/** The worker's runner joins as the avatar peer and publishes: the session goes live. */
function runnerJoins(service: AvatarService, session: AvatarSession, name: string): ReturnType<typeof fakePeer> {
  const peer = avatarPeer(name);
  service.bindAvatarPeer(session, peer);
  service.markLive(peer);
  return peer;
}

function start(service: AvatarService): AvatarSession {
  const owner = fakePeer('owner');
  return service.startSession(fakeRoom('r', [owner]), owner, 'a'.repeat(32));
}

test("a session whose runner dies while its worker stays connected is released there and assigned again with a new token, instead of staying 'recovering'", () => {
  const service = setup();
  const w = worker(service, 'w1');
  const session = start(service);
  assert.equal(sent(w, 'worker:assign').length, 1);
  const firstToken = session.token;
  assert.equal(service.sessionForToken(firstToken, 'r'), session);
  const peer = runnerJoins(service, session, 'avatar-1');
  assert.equal(session.state, 'live');
  peer.close();
  assert.equal(session.state, 'recovering');
  assert.deepEqual(sent(w, 'worker:release'), [{ sessionId: session.id }], 'the worker is told to release the dead runner');
  const assigns = sent(w, 'worker:assign') as WorkerAssign[];
  assert.equal(assigns.length, 2, 'assigned again (the only worker takes it back)');
  assert.equal(session.workerId, 'w1');
  assert.notEqual(assigns[1]!.token, firstToken, 'with a new session token');
  assert.equal(assigns[1]!.token, session.token);
  assert.throws(() => service.sessionForToken(firstToken, 'r'), /unknown or expired/, 'the old token no longer joins');
  assert.equal(service.sessionForToken(session.token, 'r'), session);
  runnerJoins(service, session, 'avatar-2');
  assert.equal(session.state, 'live');
  service.close();
});

test('a dead runner is reassigned to another worker when there is one', () => {
  const service = setup();
  const w1 = worker(service, 'w1');
  const session = start(service);
  const w2 = worker(service, 'w2');
  assert.equal(session.workerId, 'w1');
  runnerJoins(service, session, 'avatar-1').close();
  assert.equal(session.workerId, 'w2');
  assert.equal(sent(w1, 'worker:release').length, 1);
  assert.equal((sent(w2, 'worker:assign') as WorkerAssign[])[0]!.token, session.token);
  service.close();
});

test('after AVATAR_MAX_RUNNER_RESTARTS runner deaths in a row the session fails and its owner is told why', () => {
  const service = setup({ AVATAR_MAX_RUNNER_RESTARTS: '2' });
  const w = worker(service, 'w1');
  const session = start(service);
  runnerJoins(service, session, 'avatar-0');
  for (let i = 1; i <= 3; i++) {
    const peer = avatarPeer(`avatar-${i}`);
    service.bindAvatarPeer(session, peer); // joins but dies before its first frame
    peer.close();
  }
  assert.equal(sent(w, 'worker:assign').length, 3, 'the first assignment and two restarts');
  assert.equal(session.state, 'failed');
  assert.equal(session.gaveUp, true);
  assert.match(session.reason ?? '', /stopped 3 times/);
  assert.match(JSON.stringify(session.owner.attributes), /"state":"failed"/, "the owner's tile shows it");
  assert.equal(session.workerId, undefined);
  service.close();
});

test("an avatar peer of a previous assignment closing does not count as the new runner's death", () => {
  const service = setup();
  const w1 = worker(service, 'w1');
  const session = start(service);
  const old = runnerJoins(service, session, 'avatar-1');
  const w2 = worker(service, 'w2');
  w1.fire('worker:session-state', { sessionId: session.id, state: 'failed', message: 'boom' });
  assert.equal(session.workerId, 'w2');
  old.close();
  assert.equal(session.workerId, 'w2', 'still with its new worker');
  assert.equal(sent(w2, 'worker:assign').length, 1, 'not assigned again');
  assert.equal(sent(w2, 'worker:release').length, 0, 'its new runner is not released');
  assert.equal(session.runnerDeaths, 0);
  service.close();
});

test('a worker whose control socket drops and re-registers within WORKER_RECONNECT_GRACE_MS keeps the sessions it still runs; the ones it lost are reassigned', async () => {
  const service = setup({ WORKER_RECONNECT_GRACE_MS: '60000' });
  const w = worker(service, 'w1');
  const kept = start(service);
  const owner2 = fakePeer('owner2');
  const lost = service.startSession(fakeRoom('r2', [owner2]), owner2, 'b'.repeat(32));
  runnerJoins(service, kept, 'avatar-k');
  runnerJoins(service, lost, 'avatar-l');
  const keptToken = kept.token;
  const lostToken = lost.token;
  w.fire('disconnect', 'transport close');
  assert.equal(kept.workerId, 'w1', 'not moved during the grace');
  assert.equal(kept.state, 'live');
  const other = worker(service, 'w2');
  assert.equal(sent(other, 'worker:assign').length, 0, 'nothing moved to another worker during the grace');
  const back = worker(service, 'w1', [kept.id, 'stale0000000000']);
  assert.equal(kept.workerId, 'w1');
  assert.equal(kept.token, keptToken, 'a kept session keeps its token');
  assert.equal(service.sessionForToken(keptToken, 'r'), kept);
  assert.notEqual(lost.workerId, undefined, 'the lost one is assigned again');
  assert.notEqual(lost.token, lostToken, 'with a new token');
  assert.equal(lost.state, 'recovering');
  assert.deepEqual(sent(back, 'worker:release'), [{ sessionId: 'stale0000000000' }], 'a session it runs that is not its own is released');
  service.close();
});

test('a worker that does not come back within WORKER_RECONNECT_GRACE_MS has its sessions moved when the grace expires', async () => {
  const service = setup({ WORKER_RECONNECT_GRACE_MS: '150' });
  const w = worker(service, 'w1');
  const session = start(service);
  runnerJoins(service, session, 'avatar-1');
  w.fire('disconnect', 'transport close');
  const other = worker(service, 'w2');
  assert.equal(session.workerId, 'w1');
  const deadline = Date.now() + 10_000;
  while ((session.workerId as string | undefined) !== 'w2' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  assert.equal(session.workerId, 'w2', 'moved after the grace');
  assert.equal(sent(other, 'worker:assign').length, 1);
  assert.equal(session.state, 'recovering');
  service.close();
});

test('with WORKER_RECONNECT_GRACE_MS=0 a dropped worker\'s sessions move at once', () => {
  const service = setup({ WORKER_RECONNECT_GRACE_MS: '0' });
  const w = worker(service, 'w1');
  const session = start(service);
  const other = worker(service, 'w2');
  w.fire('disconnect', 'transport close');
  assert.equal(session.workerId, 'w2');
  assert.equal(sent(other, 'worker:assign').length, 1);
  service.close();
});
