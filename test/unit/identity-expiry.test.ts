/** Unused identities expire (IdentityStore.expireUnused; the server runs it at start and every hour). */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { IdentityStore, newIdentityId } from '../../server/src/avatar/identity/IdentityStore.ts';
import { loadConfig } from '../../server/src/config.ts';
import { startTestServer } from '../helpers/server.ts';
import { CallClient } from '../../call/src/CallClient.ts';
import { WrtcPeerConnection } from '../helpers/avatarPeers.ts';

const DAY = 86_400_000;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tmpDataDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-expiry-'));
  dirs.push(d);
  return d;
}

/** The owner key of every fake identity (its SHA-256 is what the store keeps). */
const OWNER_KEY = 'expiry-test-owner-key-0123456789';

/** An identity directory as IdentityStore writes it (enough for get/has/delete and joining), enrolled `ageMs` ago. */
function fakeIdentity(dataDir: string, ageMs: number): string {
  const id = newIdentityId();
  const dir = path.join(dataDir, 'identities', id);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ identityId: id, createdAt: new Date(Date.now() - ageMs).toISOString() }));
  fs.writeFileSync(path.join(dir, 'identity.bin'), 'x');
  fs.writeFileSync(path.join(dir, 'owner-key.sha256'), createHash('sha256').update(OWNER_KEY).digest('hex') + '\n');
  return id;
}

test('AVATAR_IDENTITY_EXPIRE_DAYS defaults to 30 days, and 0 keeps identities forever', () => {
  assert.equal(loadConfig({}).avatar.identityMaxUnusedMs, 30 * DAY);
  assert.equal(loadConfig({ AVATAR_IDENTITY_EXPIRE_DAYS: '7' }).avatar.identityMaxUnusedMs, 7 * DAY);
  assert.equal(loadConfig({ AVATAR_IDENTITY_EXPIRE_DAYS: '0' }).avatar.identityMaxUnusedMs, 0);
});

test('identities unused for longer than the expiry are deleted; recently enrolled, recently used and in-use ones are kept', async () => {
  const dataDir = tmpDataDir();
  fs.mkdirSync(path.join(dataDir, 'identities'), { recursive: true });
  const old = fakeIdentity(dataDir, 40 * DAY);
  const oldButUsed = fakeIdentity(dataDir, 40 * DAY);
  const recent = fakeIdentity(dataDir, 1 * DAY);
  const oldInUse = fakeIdentity(dataDir, 40 * DAY);
  const store = await IdentityStore.create({ dataDir });
  try {
    await store.touch(oldButUsed);
    assert.ok(Date.now() - (await store.lastUsedAt(oldButUsed))! < 60_000, 'touch() marks it as used now');
    const deleted = await store.expireUnused(30 * DAY, (id) => id === oldInUse);
    assert.deepEqual(deleted, [old]);
    assert.equal(await store.has(old), false);
    for (const id of [oldButUsed, recent, oldInUse]) assert.equal(await store.has(id), true, id);
    // 40 days later only the in-use one survives a 30-day expiry… unless it is still in use.
    assert.deepEqual(new Set(await store.expireUnused(30 * DAY, (id) => id === oldInUse, Date.now() + 40 * DAY)), new Set([oldButUsed, recent]));
    assert.equal(await store.has(oldInUse), true);
  } finally {
    store.close();
  }
});

test('the server deletes identities unused for AVATAR_IDENTITY_EXPIRE_DAYS when it starts, and joining as that avatar counts as a use', async () => {
  const dataDir = tmpDataDir();
  const stale = fakeIdentity(dataDir, 31 * DAY);
  const fresh = fakeIdentity(dataDir, 29 * DAY);
  const server = await startTestServer({}, { AVATAR_DATA_DIR: dataDir, AVATAR_IDENTITY_EXPIRE_DAYS: '30' });
  const client = new CallClient({ serverUrl: server.httpUrl, RTCPeerConnection: WrtcPeerConnection });
  try {
    assert.equal(fs.existsSync(path.join(dataDir, 'identities', stale)), false, 'the stale identity is gone after the start');
    assert.equal(await server.identities.has(fresh), true);
    const before = (await server.identities.lastUsedAt(fresh))!;
    assert.ok(Date.now() - before > 28 * DAY);
    await client.join({ roomId: 'expiry', displayName: 'owner', stream: null, avatar: { identityId: fresh, ownerKey: OWNER_KEY } });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && Date.now() - (await server.identities.lastUsedAt(fresh))! > 60_000) await new Promise((r) => setTimeout(r, 50));
    assert.ok(Date.now() - (await server.identities.lastUsedAt(fresh))! < 60_000, 'joining as the avatar marks the identity as used');
  } finally {
    await client.leave().catch(() => undefined);
    await server.close();
  }
});

test('an identity that expires takes its training-job records with it', async () => {
  const dataDir = tmpDataDir();
  const stale = fakeIdentity(dataDir, 31 * DAY);
  const jobId = '2f0c7c7e-9a43-4d0b-8f3e-1c2d3e4f5a6b';
  const jobDir = path.join(dataDir, 'training-jobs', jobId);
  fs.mkdirSync(jobDir, { recursive: true });
  const old = new Date(Date.now() - 31 * DAY).toISOString();
  fs.writeFileSync(path.join(jobDir, 'job.json'), JSON.stringify({ id: jobId, identityId: stale, state: 'done', createdAt: old, endedAt: old, progress: 1, previewVersion: 1 }));
  fs.writeFileSync(path.join(jobDir, 'preview.jpg'), 'jpeg');
  const server = await startTestServer({}, { AVATAR_DATA_DIR: dataDir, AVATAR_IDENTITY_EXPIRE_DAYS: '30' });
  try {
    assert.equal(fs.existsSync(path.join(dataDir, 'identities', stale)), false, 'the stale identity is gone after the start');
    assert.equal(server.training.get(jobId), undefined, 'its job record is gone');
    assert.equal(fs.existsSync(jobDir), false, 'and so is its preview (a picture of the user)');
  } finally {
    await server.close();
  }
});
