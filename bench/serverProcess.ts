/** The real server as a child process for benchmarks (`node --import tsx server/src/main.ts`). */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { onTeardown, parentWatchEnv } from './lifecycle.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface ServerProcess {
  url: string;
  pid: number;
  dataDir: string;
  stop(): Promise<void>;
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 8000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * The real server (`node --import tsx server/src/main.ts`) on 127.0.0.1, a free port, HTTPS off,
 * with its own avatar data dir (removed by stop()) and `env` on top (e.g. AVATAR_WORKERS).
 * It ends with this process whatever the reason: stop() on the normal path, a teardown (lifecycle.ts)
 * on signals and crashes, SIGTERM from the 'exit' handler, and for a SIGKILLed bench the server's
 * own watch of its parent (bench/exit-with-parent.ts, preloaded); its workers follow it.
 */
export async function startServerProcess(env: Record<string, string>, dataDir: string, log: (l: string) => void): Promise<ServerProcess> {
  const preload = pathToFileURL(path.join(ROOT, 'bench/exit-with-parent.ts')).href;
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', preload, path.join(ROOT, 'server/src/main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: '0',
      HTTPS_PORT: 'off',
      RTC_LISTEN_IP: '127.0.0.1',
      RTC_ANNOUNCED_IP: '127.0.0.1',
      LOG_LEVEL: process.env['BENCH_SERVER_LOG_LEVEL'] ?? 'warn',
      AVATAR_DATA_DIR: dataDir,
      ...env,
      ...parentWatchEnv(),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderrTail = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderrTail = (stderrTail + d).slice(-4000);
    for (const line of d.split('\n')) if (line.trim()) log(`server: ${line.trim().slice(0, 400)}`);
  });
  // last resort when the bench exits without stop(): SIGTERM lets the server stop its workers
  const onExit = (): void => void (child.exitCode === null && child.signalCode === null && child.kill('SIGTERM'));
  process.on('exit', onExit);
  const unregister = onTeardown(() => stop());
  const stop = async (): Promise<void> => {
    unregister();
    await stopChild(child);
    process.off('exit', onExit);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`server printed no URL within 40 s; stderr: ${stderrTail}`)), 40_000);
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = /http:\/\/127\.0\.0\.1:\d+/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[0]);
        }
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`server exited (${code ?? signal}) before listening; stderr: ${stderrTail}`));
      });
    });
    child.stdout!.resume();
    return { url, pid: child.pid!, dataDir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
