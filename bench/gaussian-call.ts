/**
 * `npm run bench -- gaussian-call --json [--clip VIDEO] [--minutes M] [--iterations N]
 *                                        [--seconds S] [--freeview-repeats N] [--no-call]`
 *
 * The personal-avatar flow end to end on this machine, through a real server process (one local
 * avatar worker, AVATAR_GENERATOR=gaussian so sessions render the Gaussian head when the identity
 * has one):
 *  1. clip: prepareClip on the video (default Megamind's longest shot, bench/gaussian.ts), its
 *     frames as JPEG + tracking in one clip upload (test/helpers/clipUpload.ts), the first frame
 *     enrolled as the identity's photo (POST /api/identities → ownerKey);
 *  2. a separate 3-participant Chromium call (bench/call.ts's pages) starts; its lowest decoded fps
 *     per 3 s window before the job (baseline) and while the job trains (`call_fps_during_training`);
 *  3. job: POST /api/identities/:id/training-jobs with the owner key, polled until done
 *     (`job_seconds`: POST → done; `heldout_psnr` from the job); the server's time budget is
 *     --minutes (default the server's AVATAR_TRAINING_MINUTES default) or --iterations;
 *  4. cached asset: one warm-up session fetches the asset into the worker's cache; then a wrtc
 *     viewer waits in the room and the owner joins: `session_start_ms` = owner's join → the viewer's
 *     first decoded frame of the Gaussian head; `render_fps` = the viewer's decoded fps;
 *  5. live: the keypoint bench's Node phase (bench/keypoint-live/node-phase.ts) on that identity with
 *     the Gaussian generator as reference: `glass_to_glass_ms_p50` (jaw steps), `freeview_apply_ms`
 *     (median of the free-view changes), `worker_cpu_pct`; then the same on an identity enrolled
 *     from the same photo without a head (mesh generator): `mesh_glass_to_glass_ms_p50`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import jpeg from 'jpeg-js';
import type { BrowserContext } from 'playwright-core';
import { buildClient } from '../scripts/build-client.ts';
import { launchChromium } from '../test/helpers/browser.ts';
import { CallPage } from '../test/helpers/callPage.ts';
import { clipUploadFromFrames } from '../test/helpers/clipUpload.ts';
import { MotionOwner, rememberOwnerKey } from '../test/helpers/avatarPeers.ts';
import { sleep, waitFor } from '../test/helpers/wait.ts';
import { prepareClip } from '../server/src/avatar/training/prepareClip.ts';
import { decodeFrames, probeClip } from '../server/src/avatar/training/clipDecode.ts';
import { GaussianAvatarGenerator } from '../worker/src/generator/gaussian-generator.ts';
import { HEAD_ASSET_KIND } from '../models/gaussian/headAsset.ts';
import { ACTIVE_JOB_STATES, type TrainingJobInfo } from '../protocol/src/trainingJobs.ts';
import { CLIP_UPLOAD_LIMITS } from '../protocol/src/clipUpload.ts';
import { ensureMegamind, MEGAMIND } from './gaussian.ts';
import { runNodePhase } from './keypoint-live/node-phase.ts';
import { ReferenceRenderer } from './keypoint-live/reference.ts';
import { joinViewer } from './keypoint-live/viewer.ts';
import { epochNow } from './keypoint-live/clock.ts';
import { onTeardown } from './lifecycle.ts';
import { startServerProcess, type ServerProcess } from './serverProcess.ts';
import { metricSum } from './call.ts';
import { num, quantile } from './keypoint-util.ts';
import { intOption, UsageError, type OptionValues, type Suite } from './suite.ts';
import { loadConfig } from '../server/src/config.ts';

export interface GaussianCallOptions {
  clip: string;
  minutes: number;
  iterations: number | undefined;
  seconds: number;
  freeviewRepeats: number;
  call: boolean;
}

/** The crop side the server trains at by default (AVATAR_TRAINING_SIZE). */
const TRAIN_SIZE = 256;
const CALL_PARTICIPANTS = 3;
const CALL_WINDOW_MS = 3000;

interface CallProbe {
  pages: CallPage[];
  /** lowest decoded fps of any page for any other page over one window */
  lowestFps(): Promise<number>;
}

async function startCall(browser: BrowserContext, url: string, log: (l: string) => void): Promise<CallProbe> {
  const room = `gc-call-${process.pid}`;
  const pages: CallPage[] = [];
  const ids: string[] = [];
  for (let i = 0; i < CALL_PARTICIPANTS; i++) {
    const page = await CallPage.open(browser, url, room, `c${i + 1}`, { width: 320, height: 240, fps: 30 });
    pages.push(page);
    // a machine busy starting the worker and enrolling may take longer than a test's 15 s
    ids.push(await page.join(60_000));
  }
  await waitFor(async () => {
    const tiles = await Promise.all(pages.map(async (p, i) => Promise.all(ids.filter((_, j) => j !== i).map((id) => p.tile(id)))));
    return tiles.every((ts) => ts.every((t) => t && t.framesDecoded > 0)) || undefined;
  }, { timeoutMs: 30_000, intervalMs: 250, what: 'every call page decoding every other page' });
  log(`${CALL_PARTICIPANTS}-participant call running`);
  return {
    pages,
    async lowestFps(): Promise<number> {
      const rates = await Promise.all(pages.map((p) => p.decodeRates(CALL_WINDOW_MS)));
      let low = Number.POSITIVE_INFINITY;
      rates.forEach((r, i) => {
        for (const [peer, v] of r) if (peer !== ids[i]) low = Math.min(low, v.fps);
      });
      return low;
    },
  };
}

async function postJson<T>(url: string, body: Uint8Array, contentType: string, auth?: string): Promise<{ status: number; json: T }> {
  const res = await fetch(url, { method: 'POST', body: body as Uint8Array<ArrayBuffer>, headers: { 'Content-Type': contentType, ...(auth ? { Authorization: `Bearer ${auth}` } : {}) } });
  return { status: res.status, json: (await res.json().catch(() => null)) as T };
}

async function firstFrameJpeg(file: string, index: number): Promise<Uint8Array> {
  const info = await probeClip(file);
  for await (const f of decodeFrames(file, info, [{ first: index, last: index, step: 1 }], { channels: 4 })) {
    return new Uint8Array(jpeg.encode({ width: info.width, height: info.height, data: Buffer.from(f.pixels) }, 92).data);
  }
  throw new Error(`frame ${index} of ${file} could not be decoded`);
}

async function runGaussianCall(o: GaussianCallOptions, log: (l: string) => void): Promise<{ result: Record<string, unknown>; summary: string[] }> {
  if (o.clip === MEGAMIND) ensureMegamind(log);
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    await Promise.allSettled(cleanups.splice(0).reverse().map((fn) => fn()));
  };
  const unregister = onTeardown(cleanup);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-gaussian-call-'));
  cleanups.push(async () => fs.rmSync(tmp, { recursive: true, force: true }));
  try {
    // 1. the clip: every frame of its longest shot (bounded by the upload's frame limit)
    log(`preparing ${o.clip}`);
    const prepared = await prepareClip({ file: o.clip, size: TRAIN_SIZE, cropMode: 'stabilised', log });
    let frames = [...prepared.train, ...prepared.test].sort((a, b) => a.index - b.index);
    if (frames.length > CLIP_UPLOAD_LIMITS.maxFrames) {
      const step = Math.ceil(frames.length / CLIP_UPLOAD_LIMITS.maxFrames);
      frames = frames.filter((_, i) => i % step === 0);
    }
    const upload = await clipUploadFromFrames(o.clip, frames, TRAIN_SIZE);
    const photo = await firstFrameJpeg(o.clip, frames[0]!.index);
    log(`clip upload: ${frames.length} frames, ${(upload.length / 1e6).toFixed(1)} MB`);

    if (o.call) await buildClient();
    const token = randomBytes(24).toString('base64url');
    const server: ServerProcess = await startServerProcess({
      AVATAR_WORKERS: '1',
      AVATAR_GENERATOR: 'gaussian',
      AVATAR_WORKER_TOKEN: token,
      AVATAR_TRAINING_MINUTES: String(o.minutes),
      ...(o.iterations !== undefined ? { AVATAR_TRAINING_ITERATIONS: String(o.iterations) } : {}),
    }, path.join(tmp, 'data'), log);
    cleanups.push(() => server.stop());
    log(`server ${server.url} (pid ${server.pid})`);
    await waitFor(async () => metricSum(await (await fetch(`${server.url}/metrics`)).text(), 'avatar_workers') >= 1 || undefined, { timeoutMs: 60_000, intervalMs: 250, what: 'the avatar worker registered' });

    const enrolled = await postJson<{ identityId: string; ownerKey: string }>(`${server.url}/api/identities`, photo, 'image/jpeg');
    if (enrolled.status !== 201) throw new Error(`enrollment failed: HTTP ${enrolled.status} ${JSON.stringify(enrolled.json)}`);
    const { identityId, ownerKey } = enrolled.json;
    rememberOwnerKey(identityId, ownerKey); // MotionOwner joins as it with its key
    const meshIdentity = await postJson<{ identityId: string; ownerKey: string }>(`${server.url}/api/identities`, photo, 'image/jpeg');
    if (meshIdentity.status !== 201) throw new Error(`enrollment failed: HTTP ${meshIdentity.status}`);
    rememberOwnerKey(meshIdentity.json.identityId, meshIdentity.json.ownerKey);

    // 2. the parallel call, its baseline
    let call: CallProbe | undefined;
    let baselineFps: number | null = null;
    if (o.call) {
      const { browser, close } = await launchChromium({ extraArgs: ['--use-fake-device-for-media-stream=fps=30'] });
      cleanups.push(close);
      call = await startCall(browser, server.url, log);
      await sleep(2000);
      baselineFps = Math.min(await call.lowestFps(), await call.lowestFps());
      log(`call before training: lowest decoded fps ${baselineFps.toFixed(1)}`);
    }

    // 3. the job
    const t0 = performance.now();
    const posted = await postJson<TrainingJobInfo>(`${server.url}/api/identities/${identityId}/training-jobs`, upload, 'application/octet-stream', ownerKey);
    if (posted.status !== 202) throw new Error(`training job refused: HTTP ${posted.status} ${JSON.stringify(posted.json)}`);
    const jobUrl = `${server.url}/api/training-jobs/${posted.json.id}`;
    let job = posted.json;
    const duringTraining: number[] = [];
    while (ACTIVE_JOB_STATES.includes(job.state)) {
      if (call && job.state === 'training') duringTraining.push(await call.lowestFps());
      else await sleep(1000);
      const res = await fetch(jobUrl, { headers: { Authorization: `Bearer ${ownerKey}` } });
      job = (await res.json()) as TrainingJobInfo;
      if (Math.random() < 0.2) log(`job ${job.state} ${(job.progress * 100).toFixed(0)} %${job.heldOutPsnr !== undefined ? `, held-out PSNR ${job.heldOutPsnr.toFixed(2)} dB` : ''}`);
    }
    const jobSeconds = (performance.now() - t0) / 1000;
    if (job.state !== 'done') throw new Error(`training job ended ${job.state}: ${job.error?.code ?? ''} ${job.error?.message ?? ''}`);
    const callFpsDuringTraining = duringTraining.length > 0 ? Math.min(...duringTraining) : null;
    const callFpsDuringTrainingMedian = duringTraining.length > 0 ? quantile(duringTraining, 0.5) : null;
    log(`job done in ${jobSeconds.toFixed(0)} s, held-out PSNR ${job.asset?.heldOut?.psnr ?? job.heldOutPsnr}; call during training: lowest ${callFpsDuringTraining?.toFixed(1)} fps over ${duringTraining.length} windows`);
    if (call) for (const p of call.pages) await p.leave().catch(() => undefined);

    // the head as the worker renders it (the reference of the glass-to-glass and free-view steps)
    const assetRes = await fetch(`${server.url}/api/worker/identities/${identityId}/assets/gaussian-head`, { headers: { Authorization: `Bearer ${token}` } });
    if (!assetRes.ok) throw new Error(`the identity has no gaussian-head asset (HTTP ${assetRes.status})`);
    const head = new Uint8Array(await assetRes.arrayBuffer());

    // 4. session start from the worker's cache (a warm-up session fetched it)
    const startSession = async (room: string): Promise<{ startMs: number; fps: number; width: number }> => {
      let ownerId: string | undefined;
      const viewer = await joinViewer(server.url, room, 'viewer', () => ownerId);
      const owner = new MotionOwner(server.url);
      try {
        const t = epochNow();
        ownerId = await owner.join(room, identityId, 30);
        await waitFor(() => viewer.rec.count > 0 || undefined, { timeoutMs: 30_000, intervalMs: 5, what: 'the Gaussian head at the viewer' });
        const startMs = viewer.rec.times[0]! - t;
        await sleep(1500);
        const c0 = viewer.rec.count, w0 = performance.now();
        await sleep(4000);
        return { startMs, fps: ((viewer.rec.count - c0) * 1000) / (performance.now() - w0), width: viewer.rec.width };
      } finally {
        viewer.rec.stop();
        await viewer.client.leave().catch(() => undefined);
        await owner.leave().catch(() => undefined);
      }
    };
    const warm = await startSession('gc-warm');
    log(`warm-up session (asset fetched): first frame after ${warm.startMs.toFixed(0)} ms`);
    await sleep(1000);
    const cached = await startSession('gc-cached');
    log(`session from the cached asset: first frame after ${cached.startMs.toFixed(0)} ms, ${cached.fps.toFixed(1)} fps at ${cached.width} px`);

    // 5. live: glass-to-glass, free view, worker CPU (Gaussian), then glass-to-glass of the mesh avatar
    const gaussian = await runNodePhase({
      url: server.url, server, photo: '', identityId, room: 'gc-live', seconds: o.seconds, freeviewRepeats: o.freeviewRepeats, killWorker: false, ownerAudio: false, settleS: 8, control: false, log,
      reference: async (_id, size) => ReferenceRenderer.create({ kind: HEAD_ASSET_KIND, bytes: head }, size, new GaussianAvatarGenerator()),
    });
    const mesh = await runNodePhase({ url: server.url, server, photo: '', identityId: meshIdentity.json.identityId, room: 'gc-mesh', seconds: o.seconds, freeviewRepeats: 0, killWorker: false, ownerAudio: false, settleS: 8, control: false, log });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const renderMs = (kind: string): number | null => {
      const sum = metricSum(metrics.split('\n').filter((l) => l.includes(`generator="${kind}"`)).join('\n'), 'avatar_render_ms_sum');
      const count = metricSum(metrics.split('\n').filter((l) => l.includes(`generator="${kind}"`)).join('\n'), 'avatar_render_ms_count');
      return count > 0 ? sum / count : null;
    };
    const freeviewMs = gaussian.freeview.map((f) => f.ms).filter((v): v is number => v !== null);
    const result = {
      suite: 'gaussian-call',
      clip: path.basename(o.clip),
      clip_frames: frames.length,
      training_minutes: o.minutes,
      ...(o.iterations !== undefined ? { training_iterations: o.iterations } : {}),
      job_seconds: num(jobSeconds, 1),
      heldout_psnr: num(job.asset?.heldOut?.psnr ?? job.heldOutPsnr, 2),
      heldout_face_psnr: num(job.asset?.heldOut?.facePsnr ?? job.heldOutFacePsnr, 2),
      asset_bytes: head.length,
      session_start_ms: num(cached.startMs, 0),
      session_start_uncached_ms: num(warm.startMs, 0),
      render_fps: num(cached.fps, 1),
      render_size: cached.width,
      worker_render_ms_mean_gaussian: num(renderMs('gaussian'), 1),
      worker_render_ms_mean_mesh: num(renderMs('mesh'), 1),
      quality_changes_down: metricSum(metrics.split('\n').filter((l) => l.includes('direction="down"')).join('\n'), 'avatar_quality_changes_total'),
      glass_to_glass_ms_p50: num(quantile(gaussian.g2g, 0.5), 0),
      glass_to_glass_steps_seen: `${gaussian.g2g.length}/${gaussian.g2gSteps}`,
      mesh_glass_to_glass_ms_p50: num(quantile(mesh.g2g, 0.5), 0),
      mesh_glass_to_glass_steps_seen: `${mesh.g2g.length}/${mesh.g2gSteps}`,
      freeview_apply_ms: freeviewMs.length > 0 ? num(quantile(freeviewMs, 0.5), 0) : null,
      freeview_missed: gaussian.freeview.length - freeviewMs.length,
      call_fps_before_training: baselineFps === null ? null : num(baselineFps, 1),
      call_fps_during_training: callFpsDuringTraining === null ? null : num(callFpsDuringTraining, 1),
      call_fps_during_training_median: callFpsDuringTrainingMedian === null ? null : num(callFpsDuringTrainingMedian, 1),
      call_windows_during_training: duringTraining.length,
      call_fps_ratio: baselineFps && callFpsDuringTraining !== null ? num(callFpsDuringTraining / baselineFps, 2) : null,
      worker_cpu_pct: num(gaussian.workerCpuPct, 0),
      mesh_worker_cpu_pct: num(mesh.workerCpuPct, 0),
      viewer_fps_live: num(gaussian.viewerFps, 1),
      live_size: gaussian.size,
      load_average_1m: num(os.loadavg()[0]!, 1),
      cores: os.cpus().length,
    };
    const summary = [
      `job: ${result.job_seconds} s, held-out PSNR ${result.heldout_psnr} dB (${frames.length} frames, ${o.iterations !== undefined ? `${o.iterations} iterations` : `${o.minutes} min`})`,
      `session start from cache: ${result.session_start_ms} ms (uncached ${result.session_start_uncached_ms} ms); ${result.render_fps} fps at ${result.render_size} px`,
      `glass-to-glass p50: Gaussian ${result.glass_to_glass_ms_p50} ms, mesh ${result.mesh_glass_to_glass_ms_p50} ms; free view ${result.freeview_apply_ms} ms`,
      `call during training: lowest ${result.call_fps_during_training} fps (before: ${result.call_fps_before_training}); worker CPU ${result.worker_cpu_pct} %`,
    ];
    return { result, summary };
  } finally {
    await cleanup();
    unregister();
  }
}

function parse(v: OptionValues): GaussianCallOptions {
  const serverDefault = loadConfig({}).training.minutes;
  const clip = typeof v['clip'] === 'string' ? v['clip'] : MEGAMIND;
  if (clip !== MEGAMIND && !fs.existsSync(clip)) throw new UsageError(`--clip ${clip}: no such file`);
  return {
    clip,
    minutes: intOption(v, 'minutes', serverDefault, 1, 120),
    iterations: v['iterations'] === undefined ? undefined : intOption(v, 'iterations', 0, 1, 1_000_000),
    seconds: intOption(v, 'seconds', 8, 2, 120),
    freeviewRepeats: intOption(v, 'freeview-repeats', 2, 1, 20),
    call: v['no-call'] !== true,
  };
}

export const gaussianCallSuite: Suite<GaussianCallOptions> = {
  name: 'gaussian-call',
  summary: 'clip → training job (REST) → cached asset → live Gaussian-head session: start, fps, glass-to-glass, free view, a call during training',
  needsLoopbackNetns: true,
  options: {
    clip: { type: 'string' },
    minutes: { type: 'string' },
    iterations: { type: 'string' },
    seconds: { type: 'string' },
    'freeview-repeats': { type: 'string' },
    'no-call': { type: 'boolean', default: false },
  },
  usage: [
    '  --clip VIDEO           clip of one person talking (default Megamind.avi, its longest shot)',
    '  --minutes M            training budget of the job (default the server\'s AVATAR_TRAINING_MINUTES default)',
    '  --iterations N         exact training iterations instead of the time budget',
    '  --seconds S            glass-to-glass window of each live phase (default 8)',
    '  --freeview-repeats N   free-view change rounds (default 2)',
    '  --no-call              skip the parallel 3-participant Chromium call',
  ],
  parse,
  run: runGaussianCall,
};
