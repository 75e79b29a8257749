/**
 * Training jobs (server/src/avatar/training/TrainingJobs.ts) with their real child process: a job
 * runs from a clip upload to a complete asset with progress and previews at low priority, and
 * every way a job can end badly (cancel, time limit, crash, server restart, full queue, garbage)
 * ends in a clear state with nothing half-written left behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import pino from 'pino';
import { makeClipUpload } from '../helpers/clipUpload.ts';
import { TrainingJobs } from '../../server/src/avatar/training/TrainingJobs.ts';
import type { TrainingJobInfo } from '../../protocol/src/trainingJobs.ts';
import type { TrainingSettings } from '../../server/src/avatar/training/trainingMessages.ts';
import { decodeHeadAsset } from '../../models/gaussian/headAsset.ts';
import { AppError } from '../../server/src/errors.ts';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/training');
const logger = pino({ level: 'silent' });
const SETTINGS: TrainingSettings = { size: 64, minutes: 5, iterations: 40, gaussians: 2000, threads: 1, seed: 1, evaluations: 4 };
let upload: Uint8Array;
let tmp: string;

before(async () => {
  ({ bytes: upload } = await makeClipUpload({ frames: 60, size: 64 }));
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'training-jobs-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function until(jobs: TrainingJobs, id: string, pred: (j: TrainingJobInfo) => boolean, ms = 120_000): Promise<TrainingJobInfo> {
  return new Promise((resolve, reject) => {
    const now = jobs.get(id);
    if (now && pred(now)) return resolve(now);
    const timer = setTimeout(() => { jobs.off('update', on); reject(new Error(`job ${id} still ${jobs.get(id)?.state} after ${ms} ms`)); }, ms);
    const on = (j: TrainingJobInfo): void => {
      if (j.id === id && pred(j)) { clearTimeout(timer); jobs.off('update', on); resolve(j); }
    };
    jobs.on('update', on);
  });
}
const ended = (j: TrainingJobInfo): boolean => ['done', 'failed', 'cancelled'].includes(j.state);

test('a job trains a clip upload into a complete asset, reporting progress and previews, at low priority', async () => {
  const dir = path.join(tmp, 'ok');
  const stored: { job: TrainingJobInfo; bytes: Buffer }[] = [];
  const registry = new Registry();
  const jobs = await TrainingJobs.create({ dir, logger, settings: SETTINGS, registry, onAssetReady: async (job, file) => { stored.push({ job, bytes: fs.readFileSync(file) }); } });
  try {
    const updates: TrainingJobInfo[] = [];
    jobs.on('update', (j) => updates.push(j));
    const job = await jobs.submit('identity-a', upload);
    assert.equal(job.state === 'queued' || job.state === 'preparing', true);
    const running = await until(jobs, job.id, (j) => j.state === 'preparing' || j.state === 'training');
    assert.ok(running.startedAt);
    const done = await until(jobs, job.id, ended);
    assert.equal(done.state, 'done', JSON.stringify(done.error));
    assert.equal(done.progress, 1);
    assert.ok(done.asset && done.asset.bytes > 1000 && /^[0-9a-f]{64}$/.test(done.asset.sha256));
    assert.ok(done.heldOutPsnr! > 10, `held-out PSNR ${done.heldOutPsnr}`);
    // progress rose monotonically through the states, with previews on the way
    const mine = updates.filter((u) => u.id === job.id);
    const progress = mine.map((u) => u.progress);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress never goes back');
    assert.ok(mine.some((u) => u.state === 'training' && u.progress > 0.05 && u.progress < 1), 'intermediate progress was reported');
    assert.ok(done.previewVersion >= 2 && fs.statSync(jobs.previewPath(job.id)!).size > 500, 'previews were written');
    // the store got a complete, loadable asset; the face data (upload) and the job's copy are gone
    assert.equal(stored.length, 1);
    const asset = decodeHeadAsset(new Uint8Array(stored[0]!.bytes));
    assert.equal(asset.head.count > 0, true);
    assert.ok(!fs.existsSync(path.join(dir, job.id, 'upload.avcu')), 'the upload is deleted when the job ends');
    assert.ok(!fs.existsSync(path.join(dir, job.id, 'asset.avgs')));
    const metrics = await registry.metrics();
    assert.match(metrics, /avatar_training_jobs\{state="done"\} 1/);
    assert.match(metrics, /avatar_training_asset_bytes_total \d{4,}/);
  } finally {
    await jobs.close();
  }
});

test('the training process runs at the configured low priority', async () => {
  const jobs = await TrainingJobs.create({ dir: path.join(tmp, 'nice'), logger, settings: SETTINGS, processEntry: path.join(fixtures, 'stall-process.ts'), nice: 15 });
  try {
    const job = await jobs.submit('identity-n', upload);
    await until(jobs, job.id, (j) => j.state === 'training');
    const pid = Number(fs.readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).at(-1));
    assert.equal(os.getPriority(pid), 15);
  } finally {
    await jobs.close();
  }
});

test('cancel, a time limit and a crash each end a job with its own clear state and no asset', async () => {
  const dir = path.join(tmp, 'bad');
  const stall = await TrainingJobs.create({ dir, logger, settings: SETTINGS, processEntry: path.join(fixtures, 'stall-process.ts'), concurrency: 2 });
  try {
    const a = await stall.submit('identity-c', upload);
    await until(stall, a.id, (j) => j.state === 'training');
    const cancelled = await stall.cancel(a.id);
    assert.equal(cancelled.state, 'cancelled');
    assert.equal((await stall.cancel(a.id)).state, 'cancelled', 'cancelling again is harmless');
    assert.ok(!fs.existsSync(path.join(dir, a.id, 'upload.avcu')));
  } finally {
    await stall.close();
  }
  const slow = await TrainingJobs.create({ dir: path.join(tmp, 'slow'), logger, settings: SETTINGS, processEntry: path.join(fixtures, 'stall-process.ts'), timeLimitMs: 1500 });
  try {
    const b = await slow.submit('identity-t', upload);
    const timedOut = await until(slow, b.id, ended, 30_000);
    assert.equal(timedOut.state, 'failed');
    assert.equal(timedOut.error?.code, 'TIMEOUT');
    assert.match(timedOut.error!.message, /longer than its limit of 2 s|limit of 1 s|limit/);
  } finally {
    await slow.close();
  }
  const crash = await TrainingJobs.create({ dir: path.join(tmp, 'crash'), logger, settings: SETTINGS, processEntry: path.join(fixtures, 'crash-process.ts') });
  try {
    const c = await crash.submit('identity-x', upload);
    const crashed = await until(crash, c.id, ended, 30_000);
    assert.equal(crashed.state, 'failed');
    assert.equal(crashed.error?.code, 'CRASHED');
    assert.match(crashed.error!.message, /exit code 3/);
  } finally {
    await crash.close();
  }
});

test('after a restart a job that was running is failed as interrupted and a queued one runs again', async () => {
  const dir = path.join(tmp, 'restart');
  const first = await TrainingJobs.create({ dir, logger, settings: SETTINGS, processEntry: path.join(fixtures, 'stall-process.ts'), queueMax: 2 });
  const running = await first.submit('identity-r1', upload);
  const queued = await first.submit('identity-r2', upload);
  await until(first, running.id, (j) => j.state === 'training');
  assert.equal(first.get(queued.id)!.queuePosition, 1);
  // a half-written asset, as a crash mid-write would leave
  fs.writeFileSync(path.join(dir, running.id, 'asset.avgs'), 'partial');
  // the server dies without closing: simulate by killing the child and reopening the directory
  const children = fs.readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  for (const pid of children) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  const recordBefore = JSON.parse(fs.readFileSync(path.join(dir, running.id, 'job.json'), 'utf8'));
  await first.close();
  // close() records INTERRUPTED itself; put back the record a killed server would have left
  fs.writeFileSync(path.join(dir, running.id, 'job.json'), JSON.stringify(recordBefore));
  fs.writeFileSync(path.join(dir, running.id, 'asset.avgs'), 'partial');
  fs.mkdirSync(path.join(dir, 'garbage'));
  const second = await TrainingJobs.create({ dir, logger, settings: SETTINGS, processEntry: path.join(fixtures, 'stall-process.ts') });
  try {
    const r = second.get(running.id)!;
    assert.equal(r.state, 'failed');
    assert.equal(r.error?.code, 'INTERRUPTED');
    assert.ok(!fs.existsSync(path.join(dir, running.id, 'asset.avgs')), 'the partial asset is deleted');
    assert.ok(!fs.existsSync(path.join(dir, 'garbage')), 'a directory without a record is removed');
    await until(second, queued.id, (j) => j.state === 'training');
  } finally {
    await second.close();
  }
});

test('a full queue answers BUSY (503), garbage uploads BAD_REQUEST (400), a second job of one identity INVALID_STATE', async () => {
  const jobs = await TrainingJobs.create({ dir: path.join(tmp, 'busy'), logger, settings: SETTINGS, processEntry: path.join(fixtures, 'stall-process.ts'), queueMax: 1 });
  try {
    await jobs.submit('identity-b1', upload);
    await jobs.submit('identity-b2', upload);
    await assert.rejects(jobs.submit('identity-b3', upload), (e: unknown) => e instanceof AppError && e.code === 'BUSY' && e.status === 503);
    await assert.rejects(jobs.submit('identity-b1', upload), (e: unknown) => e instanceof AppError && e.code === 'INVALID_STATE' && /already/.test(e.message));
    await assert.rejects(jobs.submit('identity-g', new Uint8Array(100)), (e: unknown) => e instanceof AppError && e.code === 'BAD_REQUEST' && /clip upload/.test(e.message));
    await assert.rejects(jobs.cancel('nope'), (e: unknown) => e instanceof AppError && e.status === 404);
    assert.equal(await jobs.deleteForIdentity('identity-b2'), 1);
    assert.deepEqual(jobs.list('identity-b2'), []);
  } finally {
    await jobs.close();
  }
  await assert.rejects(jobs.submit('identity-z', upload), /closed/);
});
