/**
 * The avatar worker as its own deployable: the server runs in one process (`server/src/main.ts`,
 * no local workers), the worker in another, started from its own entry point (`worker/src/main.ts`)
 * with only the server's URL and token, as on another host. It fetches the identity over the
 * authenticated HTTP API into its own cache directory (no disk shared with the server), renders and
 * publishes; a worker with a wrong token is refused with a clear error and stops.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServerProcess, stopChild, type ServerProcess } from '../../bench/serverProcess.ts';
import { waitFor, sleep } from '../helpers/wait.ts';
import { MotionOwner, uploadPhotoFile, VideoProbe, WrtcPeerConnection } from '../helpers/avatarPeers.ts';
import { CallClient } from '../../call/src/CallClient.ts';

const WORKER_MAIN = fileURLToPath(new URL('../../worker/src/main.ts', import.meta.url));
const PHOTO = fileURLToPath(new URL('../fixtures/astronaut.png', import.meta.url));
const TOKEN = `test-worker-token-${process.pid}-0123456789`;
const ROOM = 'remote worker';

function startWorker(env: Record<string, string>): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  let stderr = '';
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER_MAIN], {
    // a clean environment: nothing of the server's settings (no AVATAR_DATA_DIR), as on another host
    env: { PATH: process.env['PATH'] ?? '', HOME: os.tmpdir(), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, stderr: () => stderr, exited };
}

describe('the avatar worker package against a server in another process', () => {
  let server: ServerProcess;
  let cacheDir: string;
  let identityId: string;
  const children: ChildProcess[] = [];
  const clients: { leave(): Promise<void> }[] = [];

  before(async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-data-'));
    server = await startServerProcess({ AVATAR_WORKERS: '0', AVATAR_WORKER_TOKEN: TOKEN, AVATAR_MAX_PERSONAL_VIEWS: '1' }, dataDir, () => undefined);
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-worker-cache-'));
    identityId = await uploadPhotoFile(server.url, PHOTO);
  });

  after(async () => {
    for (const c of clients) await c.leave().catch(() => undefined);
    for (const c of children) await stopChild(c);
    await sleep(300);
    await server?.stop();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  });

  test('the asset API refuses a missing token with 401 and a wrong one with 403, each with a clear message', async () => {
    const url = `${server.url}/api/worker/identities/${identityId}/assets`;
    const missing = await fetch(url);
    assert.equal(missing.status, 401);
    assert.match(((await missing.json()) as { error: { message: string } }).error.message, /Authorization: Bearer <AVATAR_WORKER_TOKEN>/);
    const wrong = await fetch(url, { headers: { Authorization: 'Bearer not-the-token' } });
    assert.equal(wrong.status, 403);
    assert.match(((await wrong.json()) as { error: { message: string } }).error.message, /wrong worker token/);
    const right = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(right.status, 200);
  });

  test('a worker started without a token, or with a wrong one, says so and exits', async () => {
    const none = startWorker({ AVATAR_WORKER_SERVER_URL: server.url, AVATAR_WORKER_CACHE_DIR: cacheDir });
    children.push(none.child);
    assert.equal(await none.exited, 2);
    assert.match(none.stderr(), /AVATAR_WORKER_TOKEN is required/);

    const w = startWorker({ AVATAR_WORKER_SERVER_URL: server.url, AVATAR_WORKER_TOKEN: 'not-the-token', AVATAR_WORKER_CACHE_DIR: cacheDir });
    children.push(w.child);
    const code = await Promise.race([w.exited, sleep(60_000).then(() => 'timeout' as const)]);
    assert.equal(code, 3, `exit code ${String(code)}; stderr: ${w.stderr().slice(-800)}`);
    assert.match(w.stderr(), /the server refused this worker's token: 403 FORBIDDEN/);
  });

  test('a worker started from worker/src/main.ts fetches the identity over HTTP into its own cache, renders and publishes the avatar', async () => {
    const w = startWorker({ AVATAR_WORKER_SERVER_URL: server.url, AVATAR_WORKER_TOKEN: TOKEN, AVATAR_WORKER_ID: 'remote-1', AVATAR_WORKER_CACHE_DIR: cacheDir });
    children.push(w.child);
    const owner = new MotionOwner(server.url);
    clients.push(owner);
    const ownerId = await owner.join(ROOM, identityId);
    const viewer = new CallClient({ serverUrl: server.url, RTCPeerConnection: WrtcPeerConnection });
    clients.push(viewer);
    const probe = new VideoProbe(viewer, () => ownerId);
    const peers = await viewer.join({ roomId: ROOM, displayName: 'viewer', stream: null });
    assert.ok(peers.some((p) => p.peerId === ownerId));
    await waitFor(() => probe.frames > 10, { timeoutMs: 60_000, what: `avatar frames from the remote worker (worker stderr: ${w.stderr().slice(-400)})` });
    const live = await waitFor(async () => {
      const room = (await (await fetch(`${server.url}/api/rooms/${encodeURIComponent(ROOM)}`)).json()) as { peers: { peerId: string; avatar?: { state: string } }[] };
      return room.peers.find((p) => p.peerId === ownerId)?.avatar?.state === 'live' || undefined;
    }, { what: 'avatar state live' });
    assert.equal(live, true);

    // the worker's copy is the server's identity.bin, stored under its SHA-256 in the worker's directory
    const list = (await (await fetch(`${server.url}/api/worker/identities/${identityId}/assets`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()) as { assets: { kind: string; sha256: string }[] };
    const photo = list.assets.find((a) => a.kind === 'enrolled-photo')!;
    const cached = path.join(cacheDir, photo.sha256);
    assert.ok(fs.existsSync(cached), `cache holds ${photo.sha256} (has: ${fs.readdirSync(cacheDir).join(', ')})`);
    assert.equal(createHash('sha256').update(fs.readFileSync(cached)).digest('hex'), photo.sha256);
    assert.ok(!fs.readdirSync(cacheDir).some((f) => f.startsWith('.tmp-')), 'no partial writes left');
  });
});
