/**
 * Worker trust (issue 12): a worker's own credential (derived from AVATAR_WORKER_TOKEN) lets it
 * register only as its id, and read the worker asset API; a session's token is bound to the
 * assignment, so when the session moves to another worker the old runner's join is refused.
 * Real server and signaling; the workers are socket.io clients that speak the worker protocol.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { startTestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';
import type { AvatarServer } from '../../server/src/server.ts';
import type { EnrolledIdentity } from '../../models/face/enrolledIdentity.ts';
import { FACE_TRIANGLES } from '../../models/face/topology.ts';
import { mintWorkerCredential, verifyWorkerCredential } from '../../server/src/auth/workerCredentials.ts';
import { SIGNALING_PROTOCOL_VERSION, type Ack, type WorkerAssign } from '../../protocol/src/signaling.ts';

const MASTER = 'worker-trust-master-token-0123456789abcdef';

function syntheticIdentity(size = 32): EnrolledIdentity {
  const texture = new Uint8ClampedArray(size * size * 4).map((_, i) => (i * 7) & 255);
  const landmarks = new Float32Array(478 * 3).map((_, i) => (i % 97) * 0.5);
  return {
    size, texture, background: texture, landmarks, humanLandmarks: landmarks.slice(),
    mesh: { triangles: FACE_TRIANGLES, vertexCount: 468 },
    faceCount: 1, crop: { x: 0, y: 0, size }, sourceWidth: size, sourceHeight: size, angles: { yaw: 0.1, pitch: 0, roll: 0 },
  };
}

function connect(url: string, auth?: Record<string, unknown>): Promise<ClientSocket> {
  const socket = ioClient(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000, ...(auth ? { auth } : {}) });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

/** A worker that registers and accepts every assignment, recording them. */
async function fakeWorker(url: string, workerId: string, credential: string): Promise<{ socket: ClientSocket; assigns: WorkerAssign[]; register: Ack<unknown> }> {
  const socket = await connect(url, { workerToken: credential });
  const assigns: WorkerAssign[] = [];
  socket.on('worker:assign', (a: WorkerAssign, ack?: (r: unknown) => void) => {
    assigns.push(a);
    ack?.({ ok: true });
  });
  const register = (await socket.timeout(5000).emitWithAck('worker:register', { workerId, capacity: 1, generators: ['mesh'] })) as Ack<unknown>;
  return { socket, assigns, register };
}

describe('worker credentials and session tokens', () => {
  let server: AvatarServer;
  const sockets: ClientSocket[] = [];

  before(async () => {
    server = await startTestServer({}, { AVATAR_WORKERS: '0', AVATAR_WORKER_TOKEN: MASTER, WORKER_RECONNECT_GRACE_MS: '0' });
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    await server?.close();
  });

  test('a credential verifies as its worker id only; the master token as any; a forged one not at all', () => {
    const cred = mintWorkerCredential(MASTER, 'wa');
    assert.deepEqual(verifyWorkerCredential(cred, MASTER), { workerId: 'wa' });
    assert.deepEqual(verifyWorkerCredential(MASTER, MASTER), { workerId: undefined });
    assert.equal(verifyWorkerCredential(cred.replace('.wa.', '.wb.'), MASTER), undefined);
    assert.equal(verifyWorkerCredential(mintWorkerCredential('another-master', 'wa'), MASTER), undefined);
    assert.throws(() => mintWorkerCredential(MASTER, 'bad.id'), TypeError);
  });

  test('a worker started with another worker\'s id is refused (FORBIDDEN, disconnected, never registered); with its own id it registers', async () => {
    const thief = await fakeWorker(server.httpUrl, 'wb', mintWorkerCredential(MASTER, 'wa'));
    sockets.push(thief.socket);
    assert.equal(thief.register.ok, false);
    if (!thief.register.ok) assert.deepEqual([thief.register.error.code, thief.register.error.status], ['FORBIDDEN', 403]);
    await waitFor(() => thief.socket.disconnected, { timeoutMs: 5000, what: 'the refused worker disconnected' });
    assert.equal(server.avatars.workerCount, 0);
    const forged = await connect(server.httpUrl, { workerToken: `wk1.wb.${'A'.repeat(43)}` });
    sockets.push(forged);
    await waitFor(() => forged.disconnected, { timeoutMs: 5000, what: 'a forged credential disconnected' });
    const honest = await fakeWorker(server.httpUrl, 'wa', mintWorkerCredential(MASTER, 'wa'));
    sockets.push(honest.socket);
    assert.ok(honest.register.ok, JSON.stringify(honest.register));
    assert.equal(server.avatars.workerCount, 1);
    honest.socket.disconnect();
    await waitFor(() => server.avatars.workerCount === 0, { timeoutMs: 5000, what: 'the worker gone' });
  });

  test('the worker asset API takes a worker\'s own credential and refuses a forged one', async () => {
    const m = await server.identities.save({ identity: syntheticIdentity(), source: new Uint8Array([1]), sourceType: 'image/png', cropPng: new Uint8Array([2]), enrollMs: 1 });
    const get = (key: string): Promise<Response> => fetch(`${server.httpUrl}/api/worker/identities/${m.identityId}/assets`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal((await get(mintWorkerCredential(MASTER, 'wa'))).status, 200);
    assert.equal((await get(MASTER)).status, 200);
    assert.equal((await get(`wk1.wa.${'A'.repeat(43)}`)).status, 403);
  });

  test('when a session moves to another worker it gets a new token, and the old runner joining with the old one is refused', async () => {
    const m = await server.identities.save({ identity: syntheticIdentity(), source: new Uint8Array([1]), sourceType: 'image/png', cropPng: new Uint8Array([2]), enrollMs: 1 });
    const wa = await fakeWorker(server.httpUrl, 'wa', mintWorkerCredential(MASTER, 'wa'));
    const wb = await fakeWorker(server.httpUrl, 'wb', mintWorkerCredential(MASTER, 'wb'));
    sockets.push(wa.socket, wb.socket);
    const owner = await connect(server.httpUrl);
    sockets.push(owner);
    const room = 'moving session';
    const joined = (await owner.timeout(5000).emitWithAck('join', { protocolVersion: SIGNALING_PROTOCOL_VERSION, roomId: room, displayName: 'owner', avatar: { identityId: m.identityId, ownerKey: m.ownerKey, driver: 'voice' } })) as Ack<unknown>;
    assert.ok(joined.ok, JSON.stringify(joined));
    const first = await waitFor(() => [...wa.assigns, ...wb.assigns][0], { timeoutMs: 5000, what: 'the session assigned' });
    const [from, to] = wa.assigns.length > 0 ? [wa, wb] : [wb, wa];
    from.socket.disconnect(); // its control socket drops; its runner may live on
    const second = await waitFor(() => to.assigns[0], { timeoutMs: 5000, what: 'the session moved to the other worker' });
    assert.equal(second.sessionId, first.sessionId);
    assert.notEqual(second.token, first.token, 'a new token for the new assignment');
    const runnerJoin = async (token: string): Promise<Ack<unknown>> => {
      const s = await connect(server.httpUrl);
      sockets.push(s);
      return (await s.timeout(5000).emitWithAck('join', { protocolVersion: SIGNALING_PROTOCOL_VERSION, roomId: room, displayName: 'avatar', avatarSession: token })) as Ack<unknown>;
    };
    const late = await runnerJoin(first.token);
    assert.equal(late.ok, false, 'the old runner is refused');
    if (!late.ok) assert.deepEqual([late.error.code, late.error.status], ['UNAUTHORIZED', 401]);
    assert.equal(server.rooms.rooms.get(room)!.peers.size, 1, 'no avatar peer from the old runner');
    assert.ok((await runnerJoin(second.token)).ok, 'the new runner joins');
    assert.equal(server.rooms.rooms.get(room)!.peers.size, 2);
  });

  test('a session given back to the same worker (its control socket came back) keeps its token there', async () => {
    const m = await server.identities.save({ identity: syntheticIdentity(), source: new Uint8Array([1]), sourceType: 'image/png', cropPng: new Uint8Array([2]), enrollMs: 1 });
    for (const s of sockets) s.disconnect(); // the previous test's workers and owner
    await waitFor(() => server.avatars.workerCount === 0, { timeoutMs: 5000, what: 'no workers' });
    const cred = mintWorkerCredential(MASTER, 'wc');
    const before = await fakeWorker(server.httpUrl, 'wc', cred);
    sockets.push(before.socket);
    const owner = await connect(server.httpUrl);
    sockets.push(owner);
    const joined = (await owner.timeout(5000).emitWithAck('join', { protocolVersion: SIGNALING_PROTOCOL_VERSION, roomId: 'same worker', displayName: 'owner', avatar: { identityId: m.identityId, ownerKey: m.ownerKey, driver: 'voice' } })) as Ack<unknown>;
    assert.ok(joined.ok, JSON.stringify(joined));
    const first = await waitFor(() => before.assigns[0], { timeoutMs: 5000, what: 'assigned' });
    before.socket.disconnect();
    await waitFor(() => server.avatars.workerCount === 0, { timeoutMs: 5000, what: 'the worker gone' });
    const again = await fakeWorker(server.httpUrl, 'wc', cred);
    sockets.push(again.socket);
    const second = await waitFor(() => again.assigns[0], { timeoutMs: 5000, what: 'assigned again' });
    assert.equal(second.sessionId, first.sessionId);
    assert.equal(second.token, first.token);
  });
});
