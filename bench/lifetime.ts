/**
 * `lifetime`: a test helper, not a measurement (test/e2e/process-lifetime.test.ts). It starts the
 * kinds of children the real suites start, through the same helpers: the server (startServerProcess)
 * with one avatar worker (its process started; it may still be loading), headless Chromium
 * (launchChromium) with a page on the server, and an ffmpeg decode (decodeVideo) left blocked on its
 * output pipe. Then it logs `ready …`, holds for `--hold` seconds and returns, or fails on purpose
 * (`--fault`) the way a real suite can: a thrown error, an uncaught exception, an unhandled rejection.
 * Whatever ends it, none of those processes may remain.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchChromium } from '../test/helpers/browser.ts';
import { sleep, waitFor } from '../test/helpers/wait.ts';
import { childPids, decodeVideo } from './keypoint-util.ts';
import { onTeardown } from './lifecycle.ts';
import { startServerProcess } from './serverProcess.ts';
import { intOption, UsageError, type Suite } from './suite.ts';

const FAULTS = ['none', 'throw', 'uncaught', 'rejection'] as const;
type Fault = (typeof FAULTS)[number];

interface LifetimeOptions {
  hold: number;
  fault: Fault;
}

/** A gray .y4m whose frames (320×240 → 230 KB of RGB each) overflow a pipe: ffmpeg blocks writing. */
function writeClip(file: string): void {
  const frame = Buffer.alloc(320 * 240 * 1.5, 128);
  const parts = [Buffer.from('YUV4MPEG2 W320 H240 F10:1 Ip A1:1 C420jpeg\n')];
  for (let i = 0; i < 10; i++) parts.push(Buffer.from('FRAME\n'), frame);
  fs.writeFileSync(file, Buffer.concat(parts));
}

async function runLifetime(o: LifetimeOptions, log: (line: string) => void): Promise<{ result: Record<string, unknown>; summary: string[] }> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-lifetime-'));
  const cleanups: (() => Promise<void>)[] = [async () => fs.rmSync(tmp, { recursive: true, force: true })];
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
  };
  const unregister = onTeardown(cleanup);
  try {
    // Started side by side: the tests run this suite several times on a busy 2-core machine.
    const serverUp = (async () => {
      const server = await startServerProcess({ AVATAR_WORKERS: '1' }, path.join(tmp, 'data'), log);
      cleanups.push(() => server.stop());
      const worker = await waitFor(() => childPids(server.pid, 'worker/src/main.ts')[0], { timeoutMs: 20_000, intervalMs: 50, what: 'the avatar worker process' });
      return { server, worker };
    })();
    const chromiumUp = (async () => {
      const { browser, close } = await launchChromium();
      cleanups.push(close);
      return browser.newPage();
    })();
    const clip = path.join(tmp, 'clip.y4m');
    writeClip(clip);
    let firstFrame!: () => void;
    const decoding = new Promise<void>((r) => (firstFrame = r));
    // Never resolves: ffmpeg stays blocked on its full stdout pipe until the bench ends.
    void decodeVideo(clip, 10, () => {
      firstFrame();
      return new Promise<void>(() => undefined);
    }).catch(() => undefined);
    const [{ server, worker }, page] = await Promise.all([serverUp, chromiumUp, decoding]);
    await page.goto(`${server.url}/api/health`);

    log(`ready: server ${server.pid}, worker ${worker}, Chromium, ffmpeg; temp dir ${tmp}; fault ${o.fault} after ${o.hold} s`);
    await sleep(o.hold * 1000);
    if (o.fault === 'throw') throw new Error('lifetime: thrown on purpose (--fault throw)');
    if (o.fault === 'uncaught') {
      setTimeout(() => {
        throw new TypeError('lifetime: uncaught on purpose (--fault uncaught)');
      }, 0);
    }
    if (o.fault === 'rejection') void Promise.reject(new TypeError('lifetime: rejected on purpose (--fault rejection)'));
    // the process-wide handlers (bench/lifecycle.ts) end the run from here
    if (o.fault !== 'none') await sleep(60_000);
    const result = { suite: 'lifetime', held_s: o.hold, server_pid: server.pid, worker_pid: worker };
    return { result, summary: [`lifetime: held ${o.hold} s with server ${server.pid}, worker ${worker}, Chromium and ffmpeg`] };
  } finally {
    await cleanup();
    unregister();
  }
}

export const lifetimeSuite: Suite<LifetimeOptions> = {
  name: 'lifetime',
  summary: 'test helper: starts a server with a worker, Chromium and ffmpeg, holds, then returns or fails on purpose (test/e2e/process-lifetime.test.ts)',
  needsLoopbackNetns: true,
  options: { hold: { type: 'string' }, fault: { type: 'string' } },
  usage: ['--hold S     seconds to hold once everything runs (default 60)', `--fault F    ${FAULTS.join(' | ')}: how to fail after the hold (default none: return)`],
  parse(values) {
    const fault = (values['fault'] ?? 'none') as Fault;
    if (!FAULTS.includes(fault)) throw new UsageError(`--fault must be one of ${FAULTS.join(', ')}`);
    return { hold: intOption(values, 'hold', 60, 0, 3600), fault };
  },
  run: runLifetime,
};
