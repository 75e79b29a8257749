/**
 * Finding the processes of one test run: a unique marker in the environment (`RUN_MARKER_ENV=<id>`)
 * that every child inherits (server, avatar workers, Chromium, ffmpeg, esbuild), read back from
 * /proc/PID/environ, plus every member of a process group led by a marked process: Chromium's
 * zygote, renderers and GPU process overwrite their environment block with their process title, but
 * stay in the group of the browser process (playwright starts it detached, as a group leader).
 * Never matches by program name: other people's processes share the box.
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

/** The processes of one run, remembering the groups its marked processes lead after the leaders end. */
export class RunProcesses {
  readonly #needle: Buffer;
  readonly #groups = new Set<number>();

  constructor(readonly marker: string) {
    this.#needle = Buffer.from(`${RUN_MARKER_ENV}=${marker}\0`);
  }

  /**
   * Live processes that carry the marker or belong to a group a marked process leads (or led at an
   * earlier call). This process is left out. Zombies are left out too: they hold no memory, ports or
   * CPU, and an orphan's zombie stays until PID 1 reaps it (which some container inits never do).
   */
  list(): MarkedProcess[] {
    const all: { pid: number; state: string; pgrp: number; marked: boolean }[] = [];
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      if (pid === process.pid) continue;
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        let marked = false;
        try {
          marked = fs.readFileSync(`/proc/${entry}/environ`).includes(this.#needle);
        } catch {
          // not ours to read
        }
        all.push({ pid, state: f[0]!, pgrp: Number(f[2]), marked });
      } catch {
        // gone meanwhile
      }
    }
    for (const p of all) if (p.marked && p.pgrp === p.pid) this.#groups.add(p.pid);
    const out: MarkedProcess[] = [];
    for (const p of all) {
      if (p.state === 'Z' || p.state === 'X' || !(p.marked || this.#groups.has(p.pgrp))) continue;
      let cmdline = '';
      try {
        cmdline = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim().slice(0, 200);
      } catch {
        continue;
      }
      out.push({ pid: p.pid, state: p.state, cmdline });
    }
    return out;
  }

  /** Waits up to `ms` for every process of the run to end; returns those still there (empty when all went). */
  async waitGone(ms: number): Promise<MarkedProcess[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const left = this.list();
      if (left.length === 0 || Date.now() >= deadline) return left;
      await sleep(100);
    }
  }

  /** SIGKILLs what a failed test left behind (by pid, only processes of this run). */
  killAll(): void {
    for (const p of this.list()) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** Processes whose environment holds `RUN_MARKER_ENV=marker` or in a group one of them leads. */
export function markedProcesses(marker: string): MarkedProcess[] {
  return new RunProcesses(marker).list();
}

/** Waits up to `ms` for every process of the run to end; returns those still there. */
export function waitMarkedGone(marker: string, ms: number): Promise<MarkedProcess[]> {
  return new RunProcesses(marker).waitGone(ms);
}

/** SIGKILLs what a failed test left behind (by pid, only processes of this run). */
export function killMarked(marker: string): void {
  new RunProcesses(marker).killAll();
}
