/**
 * Children end with their parent, whatever the reason: an avatar worker with its SIGKILLed server,
 * and everything a benchmark started (server, worker, Chromium, ffmpeg, the netns re-exec) when the
 * bench throws, rejects, gets SIGTERM or SIGKILL. Processes are found by a marker in their
 * environment (test/helpers/processes.ts), never by name.
 */
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServerProcess } from '../../bench/serverProcess.ts';
import { childPids } from '../../bench/keypoint-util.ts';
import { killMarked, newRunMarker, RunProcesses, RUN_MARKER_ENV, waitMarkedGone } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const markers: string[] = [];
/** Temp dirs a killed bench could not remove (its own, Chromium's profile): the test removes them. */
const leftDirs = new Set<string>();
afterEach(() => {
  for (const m of markers.splice(0)) killMarked(m);
  for (const dir of leftDirs) fs.rmSync(dir, { recursive: true, force: true });
  leftDirs.clear();
});

interface BenchRun {
  child: ChildProcess;
  procs: RunProcesses;
  stdout(): string;
  stderr(): string;
  /** Resolves once the suite logged `ready` (server, worker, Chromium and ffmpeg running). */
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `npm run bench -- lifetime --json …` as a user would start it (it re-executes itself in a netns as root). */
function startBench(args: string[]): BenchRun {
  const marker = newRunMarker();
  markers.push(marker);
  const env: NodeJS.ProcessEnv = { ...process.env, [RUN_MARKER_ENV]: marker };
  delete env['AVATAR_SFU_BENCH_IN_NETNS'];
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/run.ts'), 'lifetime', '--json', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => void (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /\[bench lifetime\] ready: .*; temp dir (\S+);/.exec(err);
      if (m) {
        leftDirs.add(m[1]!);
        resolve();
      }
    });
    void exited.then(({ code, signal }) => reject(new Error(`bench exited (${code ?? signal}) before it was ready; stderr: ${err.slice(-3000)}`)));
  });
  return { child, procs: new RunProcesses(marker), stdout: () => out, stderr: () => err, ready, exited };
}

function lastJsonLine(run: BenchRun): { suite?: string; error?: string } {
  const last = run.stdout().trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as { suite?: string; error?: string };
  } catch {
    assert.fail(`last stdout line is not JSON: ${JSON.stringify(last)}; stderr: ${run.stderr().slice(-2000)}`);
  }
}

/** Every kind of child the bench starts is running (and its group remembered) before the test acts. */
function assertEverythingRuns(run: BenchRun): void {
  const cmds = run.procs.list().map((p) => p.cmdline);
  for (const c of cmds) {
    const profile = /--user-data-dir=(\S*avatar-sfu-chromium-\S+)/.exec(c)?.[1];
    if (profile) leftDirs.add(profile);
  }
  for (const [what, re] of [['server', /server\/src\/main\.ts/], ['avatar worker', /worker\/src\/main\.ts/], ['Chromium', /chromium/], ['Chromium renderer', /--type=renderer/], ['ffmpeg', /^\S*ffmpeg /]] as const) {
    assert.ok(cmds.some((c) => re.test(c)), `no ${what} among the bench's processes: ${cmds.join(' | ')}`);
  }
}

const BENCH_TIMEOUT = { timeout: 120_000 };

async function workersRegistered(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^avatar_workers (\S+)/m.exec(text)?.[1] ?? 0);
}

describe('an avatar worker follows its server', () => {
  for (const when of ['while the worker is still starting', 'once the worker has registered'] as const) {
    test(`a server SIGKILLed ${when} leaves no worker behind after 5 s`, async () => {
      const marker = newRunMarker();
      markers.push(marker);
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-lifetime-'));
      const server = await startServerProcess({ AVATAR_WORKERS: '1', [RUN_MARKER_ENV]: marker }, dataDir, () => undefined);
      try {
        const worker = await waitFor(() => childPids(server.pid, 'worker/src/main.ts')[0], { timeoutMs: 20_000, intervalMs: 20, what: 'the worker process' });
        if (when === 'once the worker has registered') await waitFor(async () => (await workersRegistered(server.url)) === 1, { timeoutMs: 30_000, what: 'the worker to register' });
        process.kill(server.pid, 'SIGKILL');
        const left = await waitMarkedGone(marker, 5000);
        assert.deepEqual(left, [], `worker ${worker} (or another child) outlived the SIGKILLed server`);
      } finally {
        await server.stop();
      }
    });
  }
});

describe('everything a benchmark starts ends with it', () => {
  for (const [fault, error] of [
    ['throw', /^Error: lifetime: thrown on purpose/],
    ['uncaught', /^uncaught exception: TypeError: lifetime: uncaught on purpose/],
    ['rejection', /^unhandled rejection: TypeError: lifetime: rejected on purpose/],
  ] as const) {
    test(`a bench that fails with ${fault === 'throw' ? 'a thrown error' : fault === 'uncaught' ? 'an uncaught exception' : 'an unhandled rejection'} exits 1 with a JSON error line, and none of its processes remain 5 s later`, BENCH_TIMEOUT, async () => {
      const run = startBench(['--fault', fault, '--hold', '3']); // fails 3 s after `ready`: time to see its processes
      await run.ready;
      assertEverythingRuns(run);
      const { code } = await run.exited;
      assert.equal(code, 1);
      const last = lastJsonLine(run);
      assert.equal(last.suite, 'lifetime');
      assert.match(last.error ?? '', error);
      assert.deepEqual(await run.procs.waitGone(5000), []);
    });
  }

  for (const [signal, code, error] of [
    ['SIGTERM', 143, 'terminated by SIGTERM'],
    ['SIGINT', 130, 'interrupted by SIGINT'],
  ] as const) {
    test(`a bench sent ${signal} exits ${code} with a JSON error line, and none of its processes remain 5 s later`, BENCH_TIMEOUT, async () => {
      const run = startBench([]);
      await run.ready;
      assertEverythingRuns(run);
      run.child.kill(signal);
      assert.deepEqual(await run.procs.waitGone(5000), []);
      assert.equal((await run.exited).code, code);
      assert.deepEqual(lastJsonLine(run), { suite: 'lifetime', error });
    });
  }

  test('a SIGKILLed bench leaves none of its processes (netns re-exec, server, worker, Chromium, ffmpeg) 5 s later', BENCH_TIMEOUT, async () => {
    const run = startBench([]);
    await run.ready;
    assertEverythingRuns(run);
    run.child.kill('SIGKILL');
    assert.deepEqual(await run.procs.waitGone(5000), []);
  });

  test('SIGKILL of the bench inside the network namespace leaves none of its processes 5 s later, and the outer one reports it', BENCH_TIMEOUT, async (t) => {
    const run = startBench([]);
    await run.ready;
    const inner = run.procs.list().find((p) => p.pid !== run.child.pid && /bench\/run\.ts lifetime/.test(p.cmdline));
    if (!inner) {
      t.skip('the bench did not re-execute itself in a network namespace (not root, no unshare, or AVATAR_SFU_NO_NETNS=1)');
      run.child.kill('SIGTERM');
      await run.exited;
      return;
    }
    assertEverythingRuns(run);
    process.kill(inner.pid, 'SIGKILL');
    assert.deepEqual(await run.procs.waitGone(5000), []);
    const { code } = await run.exited;
    assert.equal(code, 137);
    assert.deepEqual(lastJsonLine(run), { suite: 'lifetime', error: 'the bench in the network namespace was killed by SIGKILL' });
  });
});
