/**
 * AvatarService bookkeeping with fake worker sockets and fake room/peers: metrics that must follow
 * the sessions, and the error codes (each with its own HTTP status) of free-view requests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { loadConfig } from '../../server/src/config.ts';
import { AppError } from '../../server/src/errors.ts';
import { AvatarService } from '../../server/src/avatar/service/AvatarService.ts';
import { AvatarMetrics } from '../../server/src/avatar/service/AvatarMetrics.ts';
import { ERROR_STATUS, errorCodeSchema } from '../../protocol/src/signaling.ts';
import type { Room } from '../../server/src/rooms/Room.ts';
import type { Peer } from '../../server/src/rooms/Peer.ts';
import type { Socket } from 'socket.io';
import { fakePeer, fakeRoom } from '../helpers/fakeRoom.ts';
import { FakeWorkerSocket } from '../helpers/fakeWorkerSocket.ts';


function setup(env: Record<string, string> = {}): { service: AvatarService; metrics: AvatarMetrics; registry: Registry } {
  const registry = new Registry();
  const metrics = new AvatarMetrics(registry);
  const service = new AvatarService(loadConfig({ AVATAR_MAX_PERSONAL_VIEWS: '2', ...env }), pino({ level: 'silent' }), metrics);
  return { service, metrics, registry };
}

async function gauge(registry: Registry, name: string): Promise<number> {
  const m = await registry.getSingleMetric(name)!.get();
  return m.values[0]?.value ?? 0;
}

function worker(service: AvatarService, workerId: string): FakeWorkerSocket {
  const socket = new FakeWorkerSocket();
  service.attachWorker(socket as unknown as Socket);
  assert.deepEqual(socket.fire('worker:register', { workerId, capacity: 4, generators: ['mesh'] }), { ok: true, data: {} });
  return socket;
}

function stats(sessionId: string, audioDelayMs: number): unknown {
  return { sessions: [{ sessionId, frames: 1, renderMsTotal: 1, motionAccepted: 0, motionDropped: { invalid: 0, oversized: 0, late: 0, flood: 0 }, views: 1, audioDelayMs, earlyFrames: 0 }] };
}

test('the personal-views gauge returns to 0 when an avatar session that renders personal views ends', async () => {
  const { service, registry } = setup();
  const owner = fakePeer('owner');
  const viewers = [fakePeer('v1'), fakePeer('v2')];
  const session = service.startSession(fakeRoom('r', [owner, ...viewers]), owner, 'a'.repeat(32));
  service.setView(viewers[0]!, owner, 'personal', { yaw: 10, pitch: 0, roll: 0 });
  service.setView(viewers[1]!, owner, 'personal', { yaw: -10, pitch: 0, roll: 0 });
  assert.equal(await gauge(registry, 'avatar_personal_views'), 2);
  service.endSession(session.id);
  assert.equal(await gauge(registry, 'avatar_personal_views'), 0);
  service.close();
});

test("avatar_voice_audio_delay_ms is the largest delay over the sessions, not whichever worker reported last, and drops a session's delay when it ends", async () => {
  const { service, registry } = setup();
  const wa = worker(service, 'wa');
  const ownerA = fakePeer('a');
  const a = service.startSession(fakeRoom('ra', [ownerA]), ownerA, 'a'.repeat(32), 'voice');
  const wb = worker(service, 'wb');
  const ownerB = fakePeer('b');
  const b = service.startSession(fakeRoom('rb', [ownerB]), ownerB, 'b'.repeat(32), 'voice');
  assert.notEqual(a.workerId, b.workerId, 'the two sessions are on different workers');
  const [wOfA, wOfB] = a.workerId === 'wa' ? [wa, wb] : [wb, wa];
  wOfA.fire('worker:stats', stats(a.id, 80));
  wOfB.fire('worker:stats', stats(b.id, 20));
  assert.equal(await gauge(registry, 'avatar_voice_audio_delay_ms'), 80);
  service.endSession(a.id);
  assert.equal(await gauge(registry, 'avatar_voice_audio_delay_ms'), 20);
  service.close();
});

test('free-view requests fail with NOT_FOUND 404 for a non-avatar, FORBIDDEN 403 for a non-owner default view, AT_CAPACITY 503 past the personal-view cap', () => {
  const { service } = setup();
  const owner = fakePeer('owner');
  const plain = fakePeer('plain');
  const viewers = [fakePeer('v1'), fakePeer('v2'), fakePeer('v3')];
  service.startSession(fakeRoom('r', [owner, plain, ...viewers]), owner, 'a'.repeat(32));
  const fails = (fn: () => unknown, code: string, status: number): void =>
    assert.throws(fn, (e: unknown) => e instanceof AppError && e.code === code && e.status === status && e.toBody().status === status);
  fails(() => service.setView(viewers[0]!, plain, 'personal', { yaw: 5, pitch: 0, roll: 0 }), 'NOT_FOUND', 404);
  fails(() => service.setView(viewers[0]!, owner, 'default', { yaw: 5, pitch: 0, roll: 0 }), 'FORBIDDEN', 403);
  service.setView(viewers[0]!, owner, 'personal', { yaw: 5, pitch: 0, roll: 0 });
  service.setView(viewers[1]!, owner, 'personal', { yaw: 15, pitch: 0, roll: 0 });
  fails(() => service.setView(viewers[2]!, owner, 'personal', { yaw: 25, pitch: 0, roll: 0 }), 'AT_CAPACITY', 503);
  service.close();
});

test('every error code has exactly one HTTP status, and an AppError always carries its code’s status', () => {
  assert.deepEqual(Object.keys(ERROR_STATUS).sort(), [...errorCodeSchema.options].sort());
  const expected = { BAD_REQUEST: 400, UNAUTHORIZED: 401, FORBIDDEN: 403, NOT_FOUND: 404, RATE_LIMITED: 429, CLIENT_CLOSED_REQUEST: 499, AT_CAPACITY: 503 } as const;
  for (const [code, status] of Object.entries(expected)) assert.equal(ERROR_STATUS[code as keyof typeof expected], status, code);
  for (const code of errorCodeSchema.options) assert.equal(new AppError(code, 'x').toBody().status, ERROR_STATUS[code], code);
});
