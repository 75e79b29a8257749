/**
 * The worker's assets over the wire: the server's worker asset API (real IdentityStore, real express
 * router, real HTTP) with its token check, and the worker's content-addressed cache (bound, hash
 * verification, corrupted entries fetched again).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import express from 'express';
import { IdentityStore } from '../../server/src/avatar/identity/IdentityStore.ts';
import { createWorkerAssetRouter } from '../../server/src/http/workerAssets.ts';
import { AssetCache, sha256Hex } from '../../worker/src/assets/AssetCache.ts';
import { AssetClient, AssetFetchError } from '../../worker/src/assets/AssetClient.ts';
import { FACE_TRIANGLES } from '../../models/face/topology.ts';
import type { EnrolledIdentity } from '../../models/face/enrolledIdentity.ts';

const TOKEN = 'worker-token-for-tests-0123456789';
const tmpDirs: string[] = [];
function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}
after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A small synthetic enrolled identity (no face detection needed to store and ship one). */
function syntheticIdentity(size = 32): EnrolledIdentity {
  const texture = new Uint8ClampedArray(size * size * 4).map((_, i) => (i * 7) & 255);
  const landmarks = new Float32Array(478 * 3).map((_, i) => (i % 97) * 0.5);
  return {
    size, texture, background: texture, landmarks, humanLandmarks: landmarks.slice(),
    mesh: { triangles: FACE_TRIANGLES, vertexCount: 468 },
    faceCount: 1, crop: { x: 0, y: 0, size }, sourceWidth: size, sourceHeight: size, angles: { yaw: 0.1, pitch: 0, roll: 0 },
  };
}

const bytes = (n: number, seed: number): Uint8Array => new Uint8Array(n).map((_, i) => (i * 31 + seed) & 255);

describe('worker asset API and client', () => {
  let store: IdentityStore;
  let server: http.Server;
  let url: string;
  let identityId: string;

  before(async () => {
    store = await IdentityStore.create({ dataDir: tmpDir('avatar-assets-') });
    const meta = await store.save({ identity: syntheticIdentity(), source: new Uint8Array([1, 2, 3]), sourceType: 'image/png', cropPng: new Uint8Array([4]), enrollMs: 1 });
    identityId = meta.identityId;
    const app = express();
    app.use('/api/worker', createWorkerAssetRouter({ store, token: TOKEN }));
    server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    store.close();
  });

  test('without a bearer token the API answers 401 with WWW-Authenticate; with a wrong one 403; both say what to send', async () => {
    const missing = await fetch(`${url}/api/worker/identities/${identityId}/assets`);
    assert.equal(missing.status, 401);
    assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer/);
    const m = (await missing.json()) as { error: { code: string; message: string } };
    assert.equal(m.error.code, 'UNAUTHORIZED');
    assert.match(m.error.message, /Authorization: Bearer/);
    const wrong = await fetch(`${url}/api/worker/identities/${identityId}/assets/enrolled-photo`, { headers: { Authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 403);
    const w = (await wrong.json()) as { error: { code: string; message: string } };
    assert.equal(w.error.code, 'FORBIDDEN');
    assert.match(w.error.message, /wrong worker token/);

    const client = new AssetClient({ serverUrl: url, token: 'nope', cache: await AssetCache.create({ dir: tmpDir('avatar-cache-'), maxBytes: 1 << 20 }) });
    await assert.rejects(client.list(identityId), (err: unknown) => err instanceof AssetFetchError && err.credentialRefused && err.status === 403 && /refused this worker's token/.test(err.message));
    await assert.rejects(client.checkCredential(), (err: unknown) => err instanceof AssetFetchError && err.credentialRefused);
  });

  test('an identity lists its assets with their SHA-256, and a stored Gaussian head appears as a second asset', async () => {
    const client = new AssetClient({ serverUrl: url, token: TOKEN, cache: await AssetCache.create({ dir: tmpDir('avatar-cache-'), maxBytes: 1 << 20 }) });
    await client.checkCredential();
    const listed = await client.list(identityId);
    assert.deepEqual(listed.map((a) => a.kind), ['enrolled-photo']);
    const photo = fs.readFileSync(store.assetPath(identityId, 'enrolled-photo'));
    assert.equal(listed[0]!.sha256, createHash('sha256').update(photo).digest('hex'));
    assert.equal(listed[0]!.bytes, photo.length);

    const head = bytes(5000, 3);
    await store.putAsset(identityId, 'gaussian-head', head);
    const both = await client.list(identityId);
    assert.deepEqual(both.map((a) => a.kind), ['enrolled-photo', 'gaussian-head']);
    assert.deepEqual(await store.assetKinds(identityId), ['enrolled-photo', 'gaussian-head']);
    const source = await client.loadSource(identityId, 'gaussian');
    assert.ok('bytes' in source && Buffer.from(source.bytes).equals(Buffer.from(head)));
    await assert.rejects(client.list('f'.repeat(32)), (err: unknown) => err instanceof AssetFetchError && err.status === 404);
  });

  test('the mesh generator\'s source is the enrolled identity decoded from the fetched identity.bin', async () => {
    const client = new AssetClient({ serverUrl: url, token: TOKEN, cache: await AssetCache.create({ dir: tmpDir('avatar-cache-'), maxBytes: 1 << 20 }) });
    const source = (await client.loadSource(identityId, 'mesh')) as EnrolledIdentity;
    const original = syntheticIdentity();
    assert.equal(source.size, original.size);
    assert.deepEqual([...source.texture.slice(0, 64)], [...original.texture.slice(0, 64)]);
    assert.deepEqual([...source.landmarks.slice(0, 30)], [...original.landmarks.slice(0, 30)]);
  });

  test('a fetched asset is cached by its hash; a corrupted cache entry is detected, deleted and fetched again', async () => {
    const dir = tmpDir('avatar-cache-');
    const cache = await AssetCache.create({ dir, maxBytes: 1 << 20 });
    const client = new AssetClient({ serverUrl: url, token: TOKEN, cache });
    const [asset] = await client.list(identityId);
    const first = await client.bytes(identityId, asset!);
    assert.equal(cache.stats.misses, 1);
    assert.ok(fs.existsSync(path.join(dir, asset!.sha256)), 'stored under its hash');
    assert.ok(Buffer.from(await client.bytes(identityId, asset!)).equals(Buffer.from(first)));
    assert.equal(cache.stats.hits, 1);

    // flip one byte of the cached file: the next read notices, and the client fetches it again
    const file = path.join(dir, asset!.sha256);
    const damaged = fs.readFileSync(file);
    damaged[damaged.length >> 1] ^= 0xff;
    fs.writeFileSync(file, damaged);
    const again = await client.bytes(identityId, asset!);
    assert.equal(cache.stats.corrupted, 1);
    assert.ok(Buffer.from(again).equals(Buffer.from(first)), 'the refetched bytes are the right ones');
    assert.equal(sha256Hex(fs.readFileSync(file)), asset!.sha256, 'the cache holds the good copy again');
  });
});

describe('AssetCache', () => {
  test('stays within its byte bound by evicting the least recently used entries, also across a restart', async () => {
    const dir = tmpDir('avatar-cache-');
    const cache = await AssetCache.create({ dir, maxBytes: 10_000 });
    const a = bytes(4000, 1), b = bytes(4000, 2), c = bytes(4000, 3);
    const [ha, hb, hc] = [a, b, c].map(sha256Hex) as [string, string, string];
    await cache.put(ha, a);
    await cache.put(hb, b);
    assert.ok(await cache.get(ha), 'a is used again: b is now the least recent');
    await cache.put(hc, c);
    assert.ok(cache.bytes <= 10_000, `${cache.bytes} bytes kept`);
    assert.equal(cache.stats.evictions, 1);
    assert.ok(cache.has(ha) && cache.has(hc) && !cache.has(hb));
    assert.ok(!fs.existsSync(path.join(dir, hb)), 'the evicted file is gone');
    assert.equal(await cache.get(hb), undefined);

    const reopened = await AssetCache.create({ dir, maxBytes: 5000 });
    assert.ok(reopened.bytes <= 5000 && reopened.size === 1, 'a smaller bound on restart evicts down to it');
  });

  test('refuses bytes that do not match their hash and malformed hashes, and does not keep an asset larger than the bound', async () => {
    const dir = tmpDir('avatar-cache-');
    const cache = await AssetCache.create({ dir, maxBytes: 1000 });
    const a = bytes(100, 1);
    await assert.rejects(cache.put(sha256Hex(bytes(100, 2)), a), TypeError);
    await assert.rejects(cache.put('../etc/passwd', a), TypeError);
    await assert.rejects(cache.get('ABC'), TypeError);
    const big = randomBytes(2000);
    await cache.put(sha256Hex(big), big);
    assert.equal(cache.size, 0);
    assert.deepEqual(fs.readdirSync(dir), [], 'no temporary files left behind');
    await assert.rejects(AssetCache.create({ dir, maxBytes: 0 }), TypeError);
  });
});
