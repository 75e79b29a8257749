/**
 * The training-job REST API on a real server: an identity's owner key (given once at enrollment)
 * starts a job from a clip upload (202), follows it over server-sent events and polling, sees its
 * preview, and ends with a Gaussian-head asset on the identity that workers can fetch; without the
 * key, or with another identity's, nothing of it can be read, cancelled or started; deleting the
 * identity deletes its jobs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer } from '../helpers/server.ts';
import { makeClipUpload } from '../helpers/clipUpload.ts';
import type { AvatarServer } from '../../server/src/server.ts';
import { CLIP_UPLOAD_LIMITS } from '../../protocol/src/clipUpload.ts';
import { trainingJobSchema, type TrainingJobInfo } from '../../protocol/src/trainingJobs.ts';

const PHOTO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/astronaut.png');
let server: AvatarServer;
let upload: Uint8Array;
const owners: { id: string; key: string }[] = [];

async function enroll(): Promise<{ id: string; key: string }> {
  const res = await fetch(`${server.httpUrl}/api/identities`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: fs.readFileSync(PHOTO) });
  const body = (await res.json()) as { identityId: string; ownerKey: string };
  assert.equal(res.status, 201);
  assert.match(body.ownerKey, /^[A-Za-z0-9_-]{32}$/, 'the owner key comes with the enrollment');
  return { id: body.identityId, key: body.ownerKey };
}
const auth = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });
const submit = (id: string, key: string | null, body: Uint8Array = upload): Promise<Response> =>
  fetch(`${server.httpUrl}/api/identities/${id}/training-jobs`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...(key ? auth(key) : {}) }, body: Buffer.from(body) });

/** the job's server-sent events until it ends */
async function events(jobId: string, key: string): Promise<TrainingJobInfo[]> {
  const res = await fetch(`${server.httpUrl}/api/training-jobs/${jobId}/events`, { headers: auth(key) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = await res.text();
  return text.split('\n\n').filter((b) => b.startsWith('event: update')).map((b) => trainingJobSchema.parse(JSON.parse(b.slice(b.indexOf('data: ') + 6))));
}

before(async () => {
  ({ bytes: upload } = await makeClipUpload({ frames: 60, size: 128 }));
  server = await startTestServer({}, { AVATAR_TRAINING_ITERATIONS: '30', AVATAR_TRAINING_GAUSSIANS: '2000', AVATAR_TRAINING_SIZE: '128', AVATAR_TRAINING_THREADS: '1' });
  owners.push(await enroll(), await enroll());
});
after(async () => {
  await server?.close();
});

test('the owner starts a training job (202), follows it to done over server-sent events, and the identity gets a Gaussian head that workers can fetch', async () => {
  const [a] = owners;
  const res = await submit(a!.id, a!.key);
  assert.equal(res.status, 202);
  const job = trainingJobSchema.parse(await res.json());
  assert.equal(res.headers.get('location'), `/api/training-jobs/${job.id}`);
  const seen = await events(job.id, a!.key);
  const last = seen.at(-1)!;
  assert.equal(last.state, 'done', JSON.stringify(last.error));
  assert.ok(seen.length >= 3, `${seen.length} updates`);
  assert.ok(seen.some((u) => u.state === 'training' && u.progress > 0 && u.progress < 1), 'progress on the way');
  const polled = trainingJobSchema.parse(await (await fetch(`${server.httpUrl}/api/training-jobs/${job.id}`, { headers: auth(a!.key) })).json());
  assert.equal(polled.state, 'done');
  assert.ok(polled.asset && polled.asset.bytes > 1000);
  const preview = await fetch(`${server.httpUrl}/api/training-jobs/${job.id}/preview`, { headers: auth(a!.key) });
  assert.equal(preview.status, 200);
  assert.equal(preview.headers.get('content-type'), 'image/jpeg');
  const list = (await (await fetch(`${server.httpUrl}/api/identities/${a!.id}/training-jobs`, { headers: auth(a!.key) })).json()) as { jobs: TrainingJobInfo[] };
  assert.deepEqual(list.jobs.map((j) => j.id), [job.id]);
  // the worker asset API now lists the head, with the hash the job reported
  const assets = (await (await fetch(`${server.httpUrl}/api/worker/identities/${a!.id}/assets`, { headers: auth(server.config.workers.token) })).json()) as { assets: { kind: string; sha256: string }[] };
  const head = assets.assets.find((x) => x.kind === 'gaussian-head');
  assert.ok(head, 'the identity has a gaussian-head asset');
  assert.equal(head.sha256, polled.asset!.sha256);
});

test('without the owner key nothing is started or read; another identity\'s key neither starts, reads nor cancels a job', async () => {
  const [a, b] = owners;
  const none = await submit(a!.id, null);
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /Bearer/);
  const wrong = await submit(a!.id, b!.key);
  assert.equal(wrong.status, 403);
  const job = (await fetch(`${server.httpUrl}/api/identities/${a!.id}/training-jobs`, { headers: auth(a!.key) }).then((r) => r.json())) as { jobs: TrainingJobInfo[] };
  const jobId = job.jobs[0]!.id;
  for (const [method, url] of [['GET', `/api/training-jobs/${jobId}`], ['GET', `/api/training-jobs/${jobId}/events`], ['GET', `/api/training-jobs/${jobId}/preview`], ['DELETE', `/api/training-jobs/${jobId}`]] as const) {
    const r = await fetch(`${server.httpUrl}${url}`, { method, headers: auth(b!.key) });
    assert.equal(r.status, 404, `${method} ${url} with another owner's key`);
    const r2 = await fetch(`${server.httpUrl}${url}`, { method });
    assert.equal(r2.status, 401, `${method} ${url} without a key`);
  }
  const list = await fetch(`${server.httpUrl}/api/identities/${a!.id}/training-jobs`, { headers: auth(b!.key) });
  assert.equal(list.status, 403);
});

test('garbage and oversized uploads are refused with a clear error, and deleting the identity deletes its jobs', async () => {
  const [, b] = owners;
  const garbage = await submit(b!.id, b!.key, new Uint8Array(1000).fill(7));
  assert.equal(garbage.status, 400);
  assert.match(((await garbage.json()) as { error: { message: string } }).error.message, /clip upload: not a clip upload/);
  const huge = await submit(b!.id, b!.key, new Uint8Array(CLIP_UPLOAD_LIMITS.maxBytes + 1));
  assert.equal(huge.status, 413);
  const wrongType = await fetch(`${server.httpUrl}/api/identities/${b!.id}/training-jobs`, { method: 'POST', headers: { 'content-type': 'video/mp4', ...auth(b!.key) }, body: Buffer.from(upload) });
  assert.equal(wrongType.status, 415);
  const started = await submit(b!.id, b!.key);
  assert.equal(started.status, 202);
  const { id: jobId } = (await started.json()) as TrainingJobInfo;
  assert.equal((await fetch(`${server.httpUrl}/api/identities/${b!.id}`, { method: 'DELETE', headers: auth(b!.key) })).status, 204);
  assert.equal(server.training.get(jobId), undefined, 'the job is gone with its identity');
  assert.ok(!fs.existsSync(path.join(server.config.avatar.dataDir, 'training-jobs', jobId)));
});
