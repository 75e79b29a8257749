/**
 * Graceful shutdown: the real server (a child process) gets SIGTERM with a page and a socket in a
 * room. Every client is told (`server:shutdown`), joins during the drain are refused with
 * SHUTTING_DOWN 503, the page's badge says "server restarting…", and the process exits by itself
 * (status 0) within SHUTDOWN_TIMEOUT_MS. A new server on the same port then gets the page back in
 * the room without anyone touching it: a second page sees it again.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { notificationSchemas, SIGNALING_PROTOCOL_VERSION, type Ack } from '../../protocol/src/signaling.ts';
import { launchChromium } from '../helpers/browser.ts';
import { CallPage } from '../helpers/callPage.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHUTDOWN_TIMEOUT_MS = 8000;
const DRAIN_MS = 1500;
const ROOM = 'restart';

interface ServerChild {
  child: ChildProcess;
  url: string;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startServer(port: number, dataDir: string): Promise<ServerChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server/src/main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      HTTPS_PORT: 'off',
      RTC_LISTEN_IP: '127.0.0.1',
      RTC_ANNOUNCED_IP: '127.0.0.1',
      LOG_LEVEL: 'warn',
      AVATAR_WORKERS: '0',
      AVATAR_DATA_DIR: dataDir,
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      SHUTDOWN_DRAIN_MS: String(DRAIN_MS),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => void (err = (err + d).slice(-4000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no URL within 40 s; stderr: ${err}`)), 40_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /http:\/\/127\.0\.0\.1:\d+/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening; stderr: ${err}`));
    });
  });
  child.stdout!.resume();
  return { child, url, port: Number(new URL(url).port), exited };
}

function connect(url: string): Promise<ClientSocket> {
  const socket = ioClient(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

function join(socket: ClientSocket, displayName: string): Promise<Ack<unknown>> {
  return socket.timeout(5000).emitWithAck('join', { protocolVersion: SIGNALING_PROTOCOL_VERSION, roomId: ROOM, displayName }) as Promise<Ack<unknown>>;
}

describe('graceful shutdown on SIGTERM', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-shutdown-'));
  const children: ChildProcess[] = [];
  const closers: (() => Promise<void>)[] = [];
  const sockets: ClientSocket[] = [];
  after(async () => {
    for (const s of sockets) s.disconnect();
    for (const c of closers.splice(0)) await c().catch(() => undefined);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('clients are told server:shutdown, joins during the drain get SHUTTING_DOWN 503, the process exits within SHUTDOWN_TIMEOUT_MS, and the page rejoins a new server on the same port by itself', async () => {
    const first = await startServer(0, dataDir);
    children.push(first.child);
    const chromium = await launchChromium();
    closers.push(chromium.close);
    const page = await CallPage.open(chromium.browser, first.url, ROOM, 'ada');
    await page.join();

    const member = await connect(first.url);
    sockets.push(member);
    assert.ok((await join(member, 'socket')).ok, 'a socket client joins too');
    const notices: unknown[] = [];
    member.on('server:shutdown', (p: unknown) => notices.push(p));
    const latecomer = await connect(first.url);
    sockets.push(latecomer);

    const t0 = performance.now();
    first.child.kill('SIGTERM');
    const notice = await waitFor(() => notices[0], { timeoutMs: 5000, intervalMs: 20, what: 'server:shutdown at the joined socket' });
    const parsed = notificationSchemas['server:shutdown'].safeParse(notice);
    assert.ok(parsed.success, `a valid server:shutdown: ${JSON.stringify(notice)}`);
    assert.equal(parsed.data.reason, 'server restarting');

    const refused = await join(latecomer, 'late');
    assert.equal(refused.ok, false, 'a join during the drain is refused');
    if (!refused.ok) assert.deepEqual([refused.error.code, refused.error.status], ['SHUTTING_DOWN', 503]);

    // the badge during the drain (after the exit the page may already show its own reconnecting state)
    let lastBadge: unknown;
    const sawRestarting = await waitFor(async () => {
      const badge = await page.page.evaluate(() => {
        const el = document.getElementById('connection');
        return { text: el?.textContent ?? '', state: el?.dataset['state'] ?? '', hidden: el?.hidden ?? true };
      });
      lastBadge = badge;
      return badge.text === 'server restarting…' && badge.state === 'reconnecting' && !badge.hidden ? true : undefined;
    }, { timeoutMs: SHUTDOWN_TIMEOUT_MS, intervalMs: 20, what: 'the page saying the server is restarting' }).catch(() => false);

    const exit = await Promise.race([first.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), SHUTDOWN_TIMEOUT_MS + 5000))]);
    const exitMs = performance.now() - t0;
    assert.notEqual(exit, 'hung', 'the server exited');
    assert.deepEqual(exit, { code: 0, signal: null }, 'it finished its shutdown (status 1 means the timeout cut it short)');
    assert.ok(exitMs < SHUTDOWN_TIMEOUT_MS, `exited within SHUTDOWN_TIMEOUT_MS: ${exitMs.toFixed(0)} ms`);
    process.stdout.write(`# server exited ${exitMs.toFixed(0)} ms after SIGTERM (drain ${DRAIN_MS} ms, bound ${SHUTDOWN_TIMEOUT_MS} ms)\n`);

    assert.ok(sawRestarting, `the page said the server is restarting during the drain (last badge ${JSON.stringify(lastBadge)})`);
    assert.ok(await page.page.isVisible('#call'), 'the call stays on screen');

    const second = await startServer(first.port, dataDir);
    children.push(second.child);
    const other = await CallPage.open(chromium.browser, second.url, ROOM, 'bob');
    await other.join();
    const back = await waitFor(async () => {
      const s = await page.stats();
      const seen = (await other.stats()).tiles.some((t) => t.peerId === s.peerId);
      return seen && s.peerId;
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'the first page back in the room, seen by the second' });
    assert.ok(back);
    const badgeAfter = await page.page.evaluate(() => document.getElementById('connection')?.textContent ?? '');
    await waitFor(async () => (await page.page.evaluate(() => document.getElementById('connection')?.textContent ?? '')) === 'connected', { timeoutMs: 10_000, what: `the badge back to "connected" (was "${badgeAfter}")` });
    second.child.kill('SIGTERM');
    assert.deepEqual(await second.exited, { code: 0, signal: null });
  });
});
