/**
 * Children end with their parent, whatever the reason: an avatar worker with its SIGKILLed server,
 * and everything a benchmark started (server, worker, Chromium, ffmpeg, the netns re-exec) when the
 * bench throws, rejects, gets SIGTERM or SIGKILL. Processes are found by a marker in their
 * environment (test/helpers/processes.ts), never by name.
 */
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServerProcess } from '../../bench/serverProcess.ts';
import { childPids } from '../../bench/keypoint-util.ts';
import { killMarked, newRunMarker, RUN_MARKER_ENV, waitMarkedGone } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

const markers: string[] = [];
afterEach(() => {
  for (const m of markers.splice(0)) killMarked(m);
});

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
        const worker = await waitFor(() => childPids(server.pid, 'worker/main.ts')[0], { timeoutMs: 20_000, intervalMs: 20, what: 'the worker process' });
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
