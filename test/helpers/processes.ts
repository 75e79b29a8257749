/**
 * Finding the processes of one test run: a unique marker in the environment (`RUN_MARKER_ENV=<id>`)
 * that every child inherits (server, avatar workers, Chromium and its helpers, ffmpeg, esbuild), read
 * back from /proc/PID/environ. Never matches by program name: other people's processes share the box.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { sleep } from './wait.ts';

/** Not read by any code of the project: only this helper looks for it. */
export const RUN_MARKER_ENV = 'AVATAR_SFU_TEST_RUN_MARKER';

export function newRunMarker(): string {
  return crypto.randomBytes(8).toString('hex');
}

export interface MarkedProcess {
  pid: number;
  /** /proc/PID/stat state letter (R, S, D, T, …; zombies are left out). */
  state: string;
  cmdline: string;
}

/**
 * Live processes whose environment holds `RUN_MARKER_ENV=marker`. Zombies are left out: they hold no
 * memory, ports or CPU, and an orphan's zombie stays until PID 1 reaps it (which some container inits
 * never do).
 */
export function markedProcesses(marker: string, exceptPids: readonly number[] = [process.pid]): MarkedProcess[] {
  const needle = Buffer.from(`${RUN_MARKER_ENV}=${marker}\0`);
  const out: MarkedProcess[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (exceptPids.includes(pid)) continue;
    try {
      const env = fs.readFileSync(`/proc/${entry}/environ`);
      if (!env.includes(needle)) continue;
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') continue;
      out.push({ pid, state, cmdline: fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim().slice(0, 200) });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

/** Waits up to `ms` for every marked process to end; returns those still there (empty when all went). */
export async function waitMarkedGone(marker: string, ms: number, exceptPids?: readonly number[]): Promise<MarkedProcess[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = markedProcesses(marker, exceptPids);
    if (left.length === 0 || Date.now() >= deadline) return left;
    await sleep(100);
  }
}

/** SIGKILLs what a failed test left behind (by pid, only processes carrying this run's marker). */
export function killMarked(marker: string): void {
  for (const p of markedProcesses(marker)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
