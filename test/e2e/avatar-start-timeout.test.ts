/**
 * An avatar session that cannot get a worker fails within AVATAR_START_TIMEOUT_MS, and its owner and
 * the other participants are told why (instead of "starting…" forever).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import { startTestServer } from '../helpers/server.ts';
import { waitFor, sleep } from '../helpers/wait.ts';
import { CallClient } from '../../call/src/CallClient.ts';
import { ownerKeyOf, uploadPhotoFile, WrtcPeerConnection } from '../helpers/avatarPeers.ts';
import type { AvatarServer } from '../../server/src/server.ts';
import type { NotificationOf } from '../../protocol/src/signaling.ts';

const PHOTO = fileURLToPath(new URL('../fixtures/astronaut.png', import.meta.url));
const TIMEOUT_MS = 1500;

const WORKER_MAIN = fileURLToPath(new URL('../../worker/src/main.ts', import.meta.url));
let server: AvatarServer;
const clients: CallClient[] = [];
let worker: ChildProcess | undefined;

before(async () => {
  // No local workers and none remote: nobody will ever render this avatar.
  server = await startTestServer({}, { AVATAR_WORKERS: '0', AVATAR_START_TIMEOUT_MS: String(TIMEOUT_MS) });
});

after(async () => {
  worker?.kill('SIGTERM');
  for (const c of clients) await c.leave().catch(() => undefined);
  await sleep(300);
  await server?.close();
});

test('an avatar session that no worker takes fails within AVATAR_START_TIMEOUT_MS, and owner and viewers are told why', async () => {
  const identityId = await uploadPhotoFile(server.httpUrl, PHOTO);
  const owner = new CallClient({ serverUrl: server.httpUrl, RTCPeerConnection: WrtcPeerConnection });
  clients.push(owner);
  const states: (NotificationOf<'avatar:state'> & { at: number })[] = [];
  owner.on('avatarstate', (s) => states.push({ ...s, at: performance.now() }));
  const t0 = performance.now();
  await owner.join({ roomId: 'no workers', displayName: 'owner', stream: null, avatar: { identityId, ownerKey: ownerKeyOf(identityId) } });
  const room = server.rooms.rooms.get('no workers')!;
  assert.equal([...room.participants][0]!.info().avatar?.state, 'starting');
  const failed = await waitFor(() => states.find((s) => s.avatar.state === 'failed'), { timeoutMs: TIMEOUT_MS + 3000, what: 'avatar state "failed" at the owner' });
  const elapsed = failed.at - t0;
  assert.ok(elapsed >= TIMEOUT_MS - 200 && elapsed <= TIMEOUT_MS + 2000, `failed after ${elapsed.toFixed(0)} ms (timeout ${TIMEOUT_MS} ms)`);
  assert.equal(failed.peerId, owner.peerId);
  assert.match(failed.avatar.reason ?? '', /no avatar worker is available/);

  // A participant who joins later sees the failed state and its reason in the owner's peer info.
  const viewer = new CallClient({ serverUrl: server.httpUrl, RTCPeerConnection: WrtcPeerConnection });
  clients.push(viewer);
  const peers = await viewer.join({ roomId: 'no workers', displayName: 'viewer', stream: null });
  const seen = peers.find((p) => p.peerId === owner.peerId)?.avatar;
  assert.equal(seen?.state, 'failed');
  assert.match(seen?.reason ?? '', /no avatar worker is available/);
});

test('a timed-out avatar is not given up: a worker that registers later brings it live and clears the reason', async () => {
  const owner = clients[0]!;
  const states: NotificationOf<'avatar:state'>[] = [];
  owner.on('avatarstate', (s) => states.push(s));
  worker = spawn(process.execPath, ['--import', 'tsx', WORKER_MAIN], {
    env: { ...process.env, AVATAR_WORKER_SERVER_URL: server.httpUrl, AVATAR_WORKER_TOKEN: server.config.workers.token, AVATAR_WORKER_ID: 'late', AVATAR_DATA_DIR: server.config.avatar.dataDir, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const live = await waitFor(() => states.find((s) => s.avatar.state === 'live'), { timeoutMs: 30_000, what: 'avatar live once a worker registered' });
  assert.equal(live.avatar.reason, undefined);
});
