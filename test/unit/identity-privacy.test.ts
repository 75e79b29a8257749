/**
 * Private face data (issue 12): an identity belongs to its owner key. Every identity route, the
 * identity's training jobs and joining as that avatar need it (without: 401, with another: 403);
 * no signaling message and no REST answer gives an identity id to another participant; uploads are
 * limited per client address.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { startTestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';
import type { AvatarServer } from '../../server/src/server.ts';
import type { EnrolledIdentity } from '../../models/face/enrolledIdentity.ts';
import { FACE_TRIANGLES } from '../../models/face/topology.ts';
import { UploadQuota, QuotaError } from '../../server/src/http/uploadQuota.ts';
import { SIGNALING_PROTOCOL_VERSION, type Ack, type ErrorBody, type JoinResponse } from '../../protocol/src/signaling.ts';

function syntheticIdentity(size = 32): EnrolledIdentity {
  const texture = new Uint8ClampedArray(size * size * 4).map((_, i) => (i * 7) & 255);
  const landmarks = new Float32Array(478 * 3).map((_, i) => (i % 97) * 0.5);
  return {
    size, texture, background: texture, landmarks, humanLandmarks: landmarks.slice(),
    mesh: { triangles: FACE_TRIANGLES, vertexCount: 468 },
    faceCount: 1, crop: { x: 0, y: 0, size }, sourceWidth: size, sourceHeight: size, angles: { yaw: 0.1, pitch: 0, roll: 0 },
  };
}

class Client {
  readonly socket: ClientSocket;
  /** every message received, as JSON text */
  readonly received: string[] = [];
  constructor(url: string) {
    this.socket = ioClient(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 });
    this.socket.onAny((event: string, ...args: unknown[]) => this.received.push(JSON.stringify({ event, args: args.filter((a) => typeof a !== 'function') })));
  }
  static async connect(url: string): Promise<Client> {
    const c = new Client(url);
    await new Promise<void>((resolve, reject) => {
      c.socket.once('connect', () => resolve());
      c.socket.once('connect_error', reject);
    });
    return c;
  }
  async join(roomId: string, displayName: string, avatar?: Record<string, unknown>): Promise<Ack<JoinResponse>> {
    const ack = (await this.socket.timeout(5000).emitWithAck('join', { protocolVersion: SIGNALING_PROTOCOL_VERSION, roomId, displayName, ...(avatar ? { avatar } : {}) })) as Ack<JoinResponse>;
    this.received.push(JSON.stringify({ ack }));
    return ack;
  }
  close(): void {
    this.socket.disconnect();
  }
}

describe('identities belong to their owner key', () => {
  let server: AvatarServer;
  let mine: { identityId: string; ownerKey: string };
  let theirs: { identityId: string; ownerKey: string };
  const clients: Client[] = [];
  const connect = async (): Promise<Client> => {
    const c = await Client.connect(server.httpUrl);
    clients.push(c);
    return c;
  };
  const save = async (): Promise<{ identityId: string; ownerKey: string }> => {
    const m = await server.identities.save({ identity: syntheticIdentity(), source: new Uint8Array([1, 2, 3]), sourceType: 'image/png', cropPng: new Uint8Array([0x89, 0x50, 0x4e, 0x47]), enrollMs: 1 });
    return { identityId: m.identityId, ownerKey: m.ownerKey };
  };
  const call = async (method: string, p: string, key?: string): Promise<{ status: number; code?: string }> => {
    const res = await fetch(`${server.httpUrl}${p}`, { method, headers: key ? { authorization: `Bearer ${key}` } : {} });
    const text = await res.text();
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { error?: ErrorBody }).error?.code;
    } catch {
      code = undefined;
    }
    return { status: res.status, ...(code ? { code } : {}) };
  };

  before(async () => {
    // no workers: an avatar waits (and fails fast, to send its state to everyone)
    server = await startTestServer({}, { AVATAR_WORKERS: '0', AVATAR_START_TIMEOUT_MS: '200', UPLOAD_MAX_PER_MINUTE: '3' });
    mine = await save();
    theirs = await save();
  });
  after(async () => {
    for (const c of clients) c.close();
    await server?.close();
  });

  for (const [method, suffix, okStatus] of [['GET', '', 200], ['GET', '/photo', 200], ['GET', '/training-jobs', 200]] as const) {
    test(`${method} /api/identities/:id${suffix} answers 401 without the owner key, 403 with another owner's, ${okStatus} with its own`, async () => {
      const p = `/api/identities/${mine.identityId}${suffix}`;
      assert.deepEqual(await call(method, p), { status: 401, code: 'UNAUTHORIZED' });
      assert.deepEqual(await call(method, p, theirs.ownerKey), { status: 403, code: 'FORBIDDEN' });
      assert.equal((await call(method, p, mine.ownerKey)).status, okStatus);
    });
  }

  test('DELETE /api/identities/:id answers 401 without the owner key and 403 with another owner\'s (the identity stays), 204 with its own', async () => {
    const victim = await save();
    const p = `/api/identities/${victim.identityId}`;
    assert.deepEqual(await call('DELETE', p), { status: 401, code: 'UNAUTHORIZED' });
    assert.deepEqual(await call('DELETE', p, theirs.ownerKey), { status: 403, code: 'FORBIDDEN' });
    assert.equal(await server.identities.has(victim.identityId), true, 'still there');
    assert.equal((await call('DELETE', p, victim.ownerKey)).status, 204);
    assert.equal(await server.identities.has(victim.identityId), false);
  });

  test('an owner key is no worker token: the worker asset API refuses it', async () => {
    assert.equal((await call('GET', `/api/worker/identities/${mine.identityId}/assets`, mine.ownerKey)).status, 403);
    assert.equal((await call('GET', `/api/worker/identities/${mine.identityId}/assets/enrolled-photo`, mine.ownerKey)).status, 403);
  });

  test('joining as an avatar needs its owner key: 401 without, 403 with another\'s, and nothing half-joins', async () => {
    const c = await connect();
    const without = await c.join('wear it', 'thief', { identityId: mine.identityId });
    assert.equal(without.ok, false);
    if (!without.ok) assert.deepEqual([without.error.code, without.error.status], ['UNAUTHORIZED', 401]);
    const wrong = await c.join('wear it', 'thief', { identityId: mine.identityId, ownerKey: theirs.ownerKey });
    assert.equal(wrong.ok, false);
    if (!wrong.ok) assert.deepEqual([wrong.error.code, wrong.error.status], ['FORBIDDEN', 403]);
    assert.equal(server.rooms.rooms.get('wear it'), undefined, 'no room, no peer');
    assert.equal(server.avatars.sessions.size, 0, 'no avatar session');
  });

  test('no signaling message or REST answer reveals an avatar\'s identity id to another participant', async () => {
    const room = 'private faces';
    const viewerBefore = await connect();
    assert.ok((await viewerBefore.join(room, 'early viewer')).ok);
    const owner = await connect();
    const joined = await owner.join(room, 'owner', { identityId: mine.identityId, ownerKey: mine.ownerKey, driver: 'voice' });
    assert.ok(joined.ok, JSON.stringify(joined));
    const viewerAfter = await connect();
    const late = await viewerAfter.join(room, 'late viewer');
    assert.ok(late.ok);
    assert.ok(late.data.peers.some((p) => p.peerId === joined.data.peerId && p.avatar), 'the late viewer is told the owner is an avatar');
    // the avatar's state changes reach everyone (it fails: no worker)
    await waitFor(() => viewerBefore.received.some((m) => m.includes('"avatar:state"') && m.includes('"failed"')), { timeoutMs: 5000, what: 'avatar:state failed at the early viewer' });
    await waitFor(() => viewerAfter.received.some((m) => m.includes('"avatar:state"')), { timeoutMs: 5000, what: 'avatar:state at the late viewer' });
    // the owner pauses and changes its default view: more notifications to everyone
    assert.ok(((await owner.socket.timeout(5000).emitWithAck('setAvatarPaused', { paused: true })) as Ack<unknown>).ok);
    await viewerBefore.socket.timeout(5000).emitWithAck('setAvatarView', { peerId: joined.data.peerId, scope: 'personal', view: { yaw: 10, pitch: 0, roll: 0 } });
    const rest = [
      await (await fetch(`${server.httpUrl}/api/rooms`)).text(),
      await (await fetch(`${server.httpUrl}/api/rooms/${encodeURIComponent(room)}`)).text(),
      await (await fetch(`${server.httpUrl}/metrics`)).text(),
    ];
    assert.ok(rest[1]!.includes(joined.data.peerId), 'the room lists the owner');
    for (const [who, texts] of [['early viewer', viewerBefore.received], ['late viewer', viewerAfter.received], ['REST', rest]] as const) {
      assert.ok(texts.length > 0);
      for (const t of texts) assert.ok(!t.includes(mine.identityId), `${who} saw the identity id in ${t.slice(0, 300)}`);
    }
    assert.ok(!JSON.stringify(server.rooms.rooms.get(room)!.peers.get(joined.data.peerId)!.info()).includes(mine.identityId), 'PeerInfo itself does not carry it');
  });

  test('photo uploads above UPLOAD_MAX_PER_MINUTE from one address are refused with 429 RATE_LIMITED and Retry-After', async () => {
    const post = (): Promise<Response> => fetch(`${server.httpUrl}/api/identities`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array([1, 2, 3]) });
    for (let i = 0; i < 3; i++) assert.equal((await post()).status, 400, 'garbage, but within the limit');
    const refused = await post();
    assert.equal(refused.status, 429);
    assert.equal(((await refused.json()) as { error: ErrorBody }).error.code, 'RATE_LIMITED');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  });
});

describe('UploadQuota', () => {
  test('counts uploads and bytes per key within the hour and the minute; a refusal takes nothing and other keys are not affected', () => {
    let now = 0;
    const q = new UploadQuota({ maxPerHour: 5, maxBytesPerHour: 1000, maxPerMinute: 2 }, () => now);
    q.take(['ip:a'], 100);
    q.take(['ip:a'], 100);
    assert.throws(() => q.take(['ip:a'], 100), (e: unknown) => e instanceof QuotaError && e.code === 'RATE_LIMITED' && e.status === 429 && e.retryAfterS === 60);
    q.take(['ip:b'], 100);
    now += 61_000;
    q.take(['ip:a'], 100);
    assert.throws(() => q.take(['ip:a', 'owner:x'], 800), (e: unknown) => e instanceof QuotaError && e.code === 'QUOTA_EXCEEDED', 'bytes within the hour');
    q.take(['owner:x'], 800);
    now += 61_000;
    q.take(['ip:a'], 10);
    now += 61_000;
    q.take(['ip:a'], 10);
    assert.throws(() => q.take(['ip:a'], 10), (e: unknown) => e instanceof QuotaError && e.code === 'QUOTA_EXCEEDED' && /an hour/.test(e.message), 'count within the hour');
    now += 3_600_000;
    q.take(['ip:a'], 10);
    assert.throws(() => new UploadQuota({ maxPerHour: 0, maxBytesPerHour: 1, maxPerMinute: 1 }), TypeError);
  });
});
