/**
 * `npm run bench -- call [--json] [--participants N] [--seconds S] [--width W --height H --fps F] [--warmup W] [--browsers chromium,firefox]`
 *
 * End-to-end call benchmark: the real server as a child process (`node --import tsx server/src/main.ts`
 * on 127.0.0.1), N headless Chromium pages (one browser, fake camera and microphone) joining one room
 * one after the other through the real call page, then a measurement window of S seconds.
 *
 * Defaults: N=3, S=15, 320×240 @ 30 fps, 3 s warm-up. They are what a 2-core machine sustains with
 * everything (server, Chromium with N encoders and N·(N−1) decoders) on the same two cores; see
 * bench/README.md for what was measured.
 *
 * Definitions (all over the measurement window unless said otherwise):
 * - camera_fps: the fake camera's real sending rate: per page, Δ outbound-rtp framesEncoded / Δt; the
 *   median over pages.
 * - decoded fps of a remote tile: Δ inbound-rtp framesDecoded / Δt (page clock). min_ / median_decoded_fps
 *   over every remote tile of every page; min_decoded_ratio = min_decoded_fps / camera_fps.
 * - time to first frame of a remote tile (page P showing peer Q): from the moment Q's producer became
 *   available to P until P's first decoded frame of Q (the tile's first requestVideoFrameCallback /
 *   loadeddata). "Available" is the later of P's join start and Q's join start (CallClient.joinStartedAt,
 *   taken after getUserMedia): for a page joining after Q that is its own join start, for a page already
 *   present it is the newcomer's join start, so the newcomer's signaling and publish are included. The
 *   pages' performance.now() values are put on one clock with each page's performance.timeOrigin.
 *   Measured once for the joins (not in the window).
 * - server_cpu_pct: Δ process_cpu_seconds_total / Δt from the server's /metrics, in % of one core.
 * - forwarded_packets_per_s: Δ avatar_sfu_forwarded_packets_total (audio + video) / Δt.
 * - packets_lost: Δ of the receivers' inbound-rtp packetsLost (audio + video, all tiles);
 *   dropped_packets: Δ avatar_sfu_dropped_packets_total (the SFU's pacer queue overflows).
 * - --browsers chromium,firefox: page i runs in browsers[i mod k] (round robin; Firefox ESR via
 *   puppeteer-core, in the veth namespace it needs: bench/run.ts makes it when run as root).
 *   min_decoded_fps_by_pair: the min decoded fps per "sender->receiver" browser pair, e.g.
 *   {"chromium->firefox": …, "firefox->chromium": …, "chromium->chromium": …}.
 * Extra fields under "diagnostics" help to find the bottleneck (CPU of Chromium and of the whole
 * machine, decoder drops and freezes, encoder quality limitation).
 */
import fs from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext } from 'playwright-core';
import type { Browser as FirefoxBrowser } from 'puppeteer-core';
import { buildClient } from '../scripts/build-client.ts';
import { launchChromium } from '../test/helpers/browser.ts';
import { CallPage, type RemoteStats } from '../test/helpers/callPage.ts';
import { FirefoxCallPage, launchFirefox } from '../test/helpers/firefox.ts';
import { FIREFOX_NET } from '../test/helpers/firefoxNetwork.ts';
import { waitFor, sleep } from '../test/helpers/wait.ts';
import { intOption, UsageError, type Suite } from './suite.ts';
import { onTeardown } from './lifecycle.ts';
import { startServerProcess, type ServerProcess } from './serverProcess.ts';
import { quantile } from './keypoint-util.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const CALL_DEFAULTS = { participants: 3, seconds: 15, width: 320, height: 240, fps: 30, warmup: 3 } as const;

export const CALL_BROWSERS = ['chromium', 'firefox'] as const;
export type CallBrowser = (typeof CALL_BROWSERS)[number];

export interface CallOptions {
  /** pages are spread over these round robin */
  browsers: CallBrowser[];
  participants: number;
  seconds: number;
  width: number;
  height: number;
  fps: number;
  warmup: number;
  /** nice value for the server process (diagnostics: does giving the SFU CPU priority fix the drops?) */
  serverNice: number | undefined;
}

// ---------------------------------------------------------------- server child process

// ---------------------------------------------------------------- /metrics and /proc

/** Sum of every sample of `name` (all label sets) in Prometheus text format. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

interface MetricsSample {
  at: number;
  cpuSeconds: number;
  forwarded: number;
  forwardedVideo: number;
  dropped: number;
  keyFrameRequests: number;
  /** Event-loop delay since the previous scrape (prom-client resets its histogram on every scrape). */
  loopLagMax: number;
  loopLagP99: number;
  gcSeconds: number;
}

async function sampleMetrics(url: string): Promise<MetricsSample> {
  const res = await fetch(`${url}/metrics`);
  if (!res.ok) throw new Error(`/metrics: HTTP ${res.status}`);
  const text = await res.text();
  return {
    at: performance.now(),
    cpuSeconds: metricSum(text, 'process_cpu_seconds_total'),
    forwarded: metricSum(text, 'avatar_sfu_forwarded_packets_total'),
    forwardedVideo: metricSum(text.split('\n').filter((l) => !l.startsWith('avatar_sfu_forwarded_packets_total') || l.includes('kind="video"')).join('\n'), 'avatar_sfu_forwarded_packets_total'),
    dropped: metricSum(text, 'avatar_sfu_dropped_packets_total'),
    keyFrameRequests: metricSum(text, 'avatar_sfu_keyframe_requests_total'),
    loopLagMax: metricSum(text, 'nodejs_eventloop_lag_max_seconds'),
    loopLagP99: metricSum(text, 'nodejs_eventloop_lag_p99_seconds'),
    gcSeconds: metricSum(text, 'nodejs_gc_duration_seconds_sum'),
  };
}

const CLK_TCK = 100; // Linux USER_HZ on every mainstream architecture

/** utime+stime (s) and ppid of every process, from /proc. */
function procTable(): Map<number, { ppid: number; cpu: number }> {
  const out = new Map<number, { ppid: number; cpu: number }>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // f[0] = state (field 3), f[1] = ppid (4), f[11] = utime (14), f[12] = stime (15)
      out.set(Number(entry), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** CPU seconds of the processes under `rootPid` (not itself), leaving out the subtrees of `exclude`. */
function descendantsCpu(table: Map<number, { ppid: number; cpu: number }>, rootPid: number, exclude: number[]): number {
  const children = new Map<number, number[]>();
  for (const [pid, p] of table) {
    let list = children.get(p.ppid);
    if (!list) children.set(p.ppid, (list = []));
    list.push(pid);
  }
  let sum = 0;
  const stack = [...(children.get(rootPid) ?? [])];
  while (stack.length) {
    const pid = stack.pop()!;
    if (exclude.includes(pid)) continue;
    sum += table.get(pid)?.cpu ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return sum;
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/**
 * Kernel drops of UDP datagrams (receive buffer full) per owner, from /proc/net/udp{,6} of this
 * network namespace: sockets of the server process vs sockets of everything else we started (Chromium).
 */
function udpDrops(serverPid: number, table: Map<number, { ppid: number; cpu: number }>): { server: number; chromium: number } {
  const owner = new Map<string, 'server' | 'chromium'>();
  const mine = (pid: number): 'server' | 'chromium' | null => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = table.get(p)?.ppid ?? 0, hops++) {
      if (p === serverPid) return 'server';
      if (p === process.pid) return 'chromium';
    }
    return null;
  };
  for (const [pid] of table) {
    const who = pid === process.pid ? null : mine(pid);
    if (!who) continue;
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        const m = /^socket:\[(\d+)\]$/.exec(link);
        if (m) owner.set(m[1]!, who);
      }
    } catch {
      // exited or not ours to read
    }
  }
  const out = { server: 0, chromium: 0 };
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 13) continue;
      const who = owner.get(f[9]!);
      if (who) out[who] += Number(f[12]);
    }
  }
  return out;
}

interface CpuSample {
  at: number;
  chromium: number;
  serverProc: number;
  bench: number;
  machine: { busy: number; total: number };
  udpDrops: { server: number; chromium: number };
  /** /proc/pressure/cpu "some" total (µs during which at least one runnable task waited for a CPU). */
  cpuPressureUs: number;
  /** The server's main (event-loop) thread: ns on a CPU and ns runnable but waiting for one. */
  serverSched: { run: number; wait: number };
}

function schedstat(pid: number): { run: number; wait: number } {
  try {
    const [run, wait] = fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { run: run ?? NaN, wait: wait ?? NaN };
  } catch {
    return { run: NaN, wait: NaN };
  }
}

function cpuPressureUs(): number {
  try {
    const m = /^some .*total=(\d+)/m.exec(fs.readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

function sampleCpu(serverPid: number): CpuSample {
  const table = procTable();
  return {
    at: performance.now(),
    chromium: descendantsCpu(table, process.pid, [serverPid]),
    serverProc: (table.get(serverPid)?.cpu ?? 0) + descendantsCpu(table, serverPid, []),
    bench: table.get(process.pid)?.cpu ?? 0,
    machine: machineCpu(),
    udpDrops: udpDrops(serverPid, table),
    cpuPressureUs: cpuPressureUs(),
    serverSched: schedstat(serverPid),
  };
}

// ---------------------------------------------------------------- pages

interface PageSample {
  remote: RemoteStats;
  timeOrigin: number;
  now: number;
  send: { framesEncoded: number; framesSent: number; frameWidth: number; frameHeight: number; totalEncodeTime: number; qualityLimitationReason: string; qualityLimitationDurations: Record<string, number> };
  recv: { framesReceived: number; framesDecoded: number; framesDropped: number; freezeCount: number; totalFreezesDuration: number; nackCount: number; pliCount: number; totalDecodeTime: number; keyFramesDecoded: number };
}

/** A call page in either browser, as the bench uses it. */
interface BenchPage {
  name: string;
  browser: CallBrowser;
  errors: string[];
  join(): Promise<string>;
  evaluate<T>(fn: () => Promise<T>): Promise<T>;
}

function benchPage(p: CallPage | FirefoxCallPage, browser: CallBrowser): BenchPage {
  return {
    name: p.name,
    browser,
    errors: p.errors,
    join: () => p.join(),
    evaluate: <T,>(fn: () => Promise<T>) => {
      const run = p instanceof CallPage ? p.page.evaluate(fn) : (p.page.evaluate(fn) as Promise<T>);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${p.name} (${browser}): no answer to page.evaluate within 20 s`)), 20_000);
      });
      return Promise.race([run, timeout]).finally(() => clearTimeout(timer));
    },
  };
}

function samplePage(page: BenchPage): Promise<PageSample> {
  return page.evaluate(async () => {
    const remote = (await window.avatarSfu.remoteStats()) as RemoteStats;
    const c = window.avatarSfu.client();
    const send = { framesEncoded: 0, framesSent: 0, frameWidth: 0, frameHeight: 0, totalEncodeTime: 0, qualityLimitationReason: '', qualityLimitationDurations: {} as Record<string, number> };
    (await c?.sendPeerConnection?.getStats())?.forEach((s: Record<string, unknown>) => {
      if (s['type'] !== 'outbound-rtp' || s['kind'] !== 'video') return;
      send.framesEncoded += Number(s['framesEncoded'] ?? 0);
      send.framesSent += Number(s['framesSent'] ?? 0);
      send.frameWidth = Math.max(send.frameWidth, Number(s['frameWidth'] ?? 0));
      send.frameHeight = Math.max(send.frameHeight, Number(s['frameHeight'] ?? 0));
      send.totalEncodeTime += Number(s['totalEncodeTime'] ?? 0);
      send.qualityLimitationReason = String(s['qualityLimitationReason'] ?? '');
      send.qualityLimitationDurations = (s['qualityLimitationDurations'] as Record<string, number> | undefined) ?? {};
    });
    const recv = { framesReceived: 0, framesDecoded: 0, framesDropped: 0, freezeCount: 0, totalFreezesDuration: 0, nackCount: 0, pliCount: 0, totalDecodeTime: 0, keyFramesDecoded: 0 };
    (await c?.receivePeerConnection?.getStats())?.forEach((s: Record<string, unknown>) => {
      if (s['type'] !== 'inbound-rtp' || s['kind'] !== 'video') return;
      for (const k of Object.keys(recv) as (keyof typeof recv)[]) recv[k] += Number(s[k] ?? 0);
    });
    return { remote, timeOrigin: performance.timeOrigin, now: performance.now(), send, recv };
  });
}

// ---------------------------------------------------------------- statistics

const round = (v: number, digits = 1): number => (Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : v);

// ---------------------------------------------------------------- the suite

async function runCall(opts: CallOptions, log: (line: string) => void): Promise<{ result: Record<string, unknown>; summary: string[] }> {
  const cleanups: (() => Promise<void>)[] = [];
  /** Chromium and the server are stopped at the same time. */
  const cleanup = async (): Promise<void> => {
    await Promise.allSettled(cleanups.splice(0).map((fn) => fn()));
  };
  const unregisterSignals = onTeardown(cleanup);
  try {
    log('building the client');
    await buildClient();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-callbench-'));
    const firefoxToo = opts.browsers.includes('firefox');
    // Firefox gathers no candidates on loopback only: the media sockets go on the veth end (firefoxNetwork.ts).
    const rtc: Record<string, string> = firefoxToo ? { RTC_LISTEN_IP: FIREFOX_NET.hostIp, RTC_ANNOUNCED_IP: FIREFOX_NET.hostIp } : {};
    const server = await startServerProcess({ AVATAR_WORKERS: '0', ...rtc }, dataDir, log);
    cleanups.push(() => server.stop());
    log(`server ${server.url} (pid ${server.pid})`);
    if (opts.serverNice !== undefined) {
      os.setPriority(server.pid, opts.serverNice);
      log(`server niceness ${os.getPriority(server.pid)}`);
    }
    // Chromium's fake camera runs at 20 fps unless told otherwise; getUserMedia's frameRate can't raise it.
    // A later copy of the switch overrides the bare one that launchChromium passes.
    const browsers: Browsers = {};
    if (opts.browsers.includes('chromium')) {
      const { browser, close } = await launchChromium({ extraArgs: [`--use-fake-device-for-media-stream=fps=${opts.fps}`] });
      cleanups.push(close);
      browsers.chromium = browser;
    }
    if (firefoxToo) {
      // One Firefox per Firefox page: a page in a background tab got no answer to page.evaluate (getStats) in a measurement.
      browsers.firefox = async () => {
        const { browser, close } = await launchFirefox();
        cleanups.push(close);
        return browser;
      };
    }
    return await measure(opts, server, browsers, log);
  } finally {
    await cleanup();
    unregisterSignals();
  }
}

interface Browsers {
  chromium?: BrowserContext;
  /** launches a Firefox for each page */
  firefox?: () => Promise<FirefoxBrowser>;
}

async function openPage(opts: CallOptions, browsers: Browsers, url: string, room: string, i: number): Promise<BenchPage> {
  const kind = opts.browsers[i % opts.browsers.length]!;
  const name = `p${i + 1}`;
  if (kind === 'chromium') return benchPage(await CallPage.open(browsers.chromium!, url, room, name, { width: opts.width, height: opts.height, fps: opts.fps }), kind);
  return benchPage(await FirefoxCallPage.open(await browsers.firefox!(), url, room, name, { w: String(opts.width), h: String(opts.height), fps: String(opts.fps) }), kind);
}

async function measure(opts: CallOptions, server: ServerProcess, browsers: Browsers, log: (line: string) => void): Promise<{ result: Record<string, unknown>; summary: string[] }> {
  const room = `bench-${process.pid}`;
  const pages: BenchPage[] = [];
  const ids: string[] = [];
  for (let i = 0; i < opts.participants; i++) {
    const page = await openPage(opts, browsers, server.url, room, i);
    pages.push(page);
    ids.push(await page.join());
    log(`p${i + 1} (${page.browser}) joined as ${ids[i]}`);
  }
  // Every page decodes every other page.
  let missing: string[] = [];
  const first = await waitFor(
    async () => {
      const samples = await Promise.all(pages.map((p) => samplePage(p)));
      missing = [];
      samples.forEach((s, i) => ids.forEach((id, j) => {
        if (j !== i && !s.remote.tiles.some((t) => t.peerId === id && t.framesDecoded > 0 && t.firstFrameAt !== null)) missing.push(`${pages[j]!.name} (${pages[j]!.browser}) -> ${pages[i]!.name} (${pages[i]!.browser})`);
      }));
      return missing.length === 0 ? samples : null;
    },
    { timeoutMs: 60_000, intervalMs: 250, what: 'every page to decode every other page' },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; not decoded (sender -> receiver): ${missing.join(', ')}`);
  });
  // Time to first frame, on one clock (epoch ms via timeOrigin).
  const joinAt = first.map((s) => s.timeOrigin + (s.remote.joinStartedAt ?? 0));
  const ttff: number[] = [];
  first.forEach((s, i) => {
    for (const t of s.remote.tiles) {
      const j = ids.indexOf(t.peerId);
      if (j < 0 || j === i || t.firstFrameAt === null) continue;
      ttff.push(s.timeOrigin + t.firstFrameAt - Math.max(joinAt[i]!, joinAt[j]!));
    }
  });
  log(`all ${opts.participants} pages decode each other; warm-up ${opts.warmup} s, then ${opts.seconds} s of measurement`);
  await sleep(opts.warmup * 1000);

  const benchLoop = monitorEventLoopDelay({ resolution: 10 });
  benchLoop.enable();
  const [mA, cA, pA] = await Promise.all([sampleMetrics(server.url), Promise.resolve(sampleCpu(server.pid)), Promise.all(pages.map((p) => samplePage(p)))]);
  await sleep(opts.seconds * 1000);
  const [mB, cB, pB] = await Promise.all([sampleMetrics(server.url), Promise.resolve(sampleCpu(server.pid)), Promise.all(pages.map((p) => samplePage(p)))]);
  benchLoop.disable();

  const sentFps: number[] = [];
  const decoded: { page: string; peer: string; pair: string; fps: number }[] = [];
  let lost = 0;
  let lostTotal = 0;
  const recv = { framesReceived: 0, framesDecoded: 0, framesDropped: 0, freezeCount: 0, totalFreezesDuration: 0, nackCount: 0, pliCount: 0, totalDecodeTime: 0, keyFramesDecoded: 0 };
  let encodeTime = 0;
  let encoded = 0;
  const limitation: Record<string, number> = {};
  const sentRes = new Set<string>();
  pB.forEach((b, i) => {
    const a = pA[i]!;
    const dt = (b.now - a.now) / 1000;
    sentFps.push((b.send.framesEncoded - a.send.framesEncoded) / dt);
    encodeTime += b.send.totalEncodeTime - a.send.totalEncodeTime;
    encoded += b.send.framesEncoded - a.send.framesEncoded;
    limitation[b.send.qualityLimitationReason] = (limitation[b.send.qualityLimitationReason] ?? 0) + 1;
    sentRes.add(`${b.send.frameWidth}x${b.send.frameHeight}`);
    for (const k of Object.keys(recv) as (keyof typeof recv)[]) recv[k] += b.recv[k] - a.recv[k];
    for (const tb of b.remote.tiles) {
      if (!ids.includes(tb.peerId) || tb.peerId === ids[i]) continue;
      const ta = a.remote.tiles.find((t) => t.peerId === tb.peerId);
      const sender = pages[ids.indexOf(tb.peerId)]!;
      decoded.push({ page: pages[i]!.name, peer: sender.name, pair: `${sender.browser}->${pages[i]!.browser}`, fps: (tb.framesDecoded - (ta?.framesDecoded ?? 0)) / dt });
      lost += tb.packetsLost - (ta?.packetsLost ?? 0);
      lostTotal += tb.packetsLost;
    }
  });
  const expectedTiles = opts.participants * (opts.participants - 1);
  if (decoded.length !== expectedTiles) {
    const tilesSeen = pB.map((b, i) => `${pages[i]!.name}(${pages[i]!.browser}): ${b.remote.tiles.map((t) => `${pages[ids.indexOf(t.peerId)]?.name ?? t.peerId}`).join('/')}`);
    throw new Error(`expected ${expectedTiles} remote tiles, found ${decoded.length}: ${tilesSeen.join('; ')}`);
  }
  const wall = (cB.at - cA.at) / 1000;
  const mWall = (mB.at - mA.at) / 1000;
  const cameraFps = quantile(sentFps, 0.5);
  const fpsList = decoded.map((d) => d.fps);
  const minDecoded = Math.min(...fpsList);
  const worst = decoded.find((d) => d.fps === minDecoded)!;
  const byPair: Record<string, number> = {};
  for (const d of decoded) byPair[d.pair] = round(Math.min(byPair[d.pair] ?? Infinity, d.fps));
  const machineCores = os.cpus().length;
  const pageErrors = pages.flatMap((p) => p.errors.map((e) => `${p.name}: ${e}`));

  const result = {
    suite: 'call',
    participants: opts.participants,
    seconds: opts.seconds,
    width: opts.width,
    height: opts.height,
    fps: opts.fps,
    ...(opts.serverNice !== undefined ? { server_nice: opts.serverNice } : {}),
    camera_fps: round(cameraFps),
    min_decoded_fps: round(minDecoded),
    median_decoded_fps: round(quantile(fpsList, 0.5)),
    min_decoded_ratio: round(minDecoded / cameraFps, 3),
    browsers: opts.browsers,
    /** min decoded fps per "sender->receiver" browser pair */
    min_decoded_fps_by_pair: byPair,
    time_to_first_frame_ms_p50: round(quantile(ttff, 0.5), 0),
    time_to_first_frame_ms_max: round(Math.max(...ttff), 0),
    server_cpu_pct: round(((mB.cpuSeconds - mA.cpuSeconds) / mWall) * 100),
    forwarded_packets_per_s: round((mB.forwarded - mA.forwarded) / mWall, 0),
    packets_lost: lost,
    dropped_packets: mB.dropped - mA.dropped,
    diagnostics: {
      cores: machineCores,
      machine_cpu_pct: round(((cB.machine.busy - cA.machine.busy) / (cB.machine.total - cA.machine.total)) * 100 * machineCores),
      chromium_cpu_pct: round(((cB.chromium - cA.chromium) / wall) * 100),
      bench_cpu_pct: round(((cB.bench - cA.bench) / wall) * 100),
      /** % of the window in which some runnable task on the machine waited for a CPU (PSI). */
      cpu_pressure_pct: round(((cB.cpuPressureUs - cA.cpuPressureUs) / 1e6 / wall) * 100),
      /** The bench process's own event-loop delay: a control for stalls of the whole machine. */
      bench_event_loop_lag_ms_max: round(benchLoop.max / 1e6),
      server_proc_cpu_pct: round(((cB.serverProc - cA.serverProc) / wall) * 100),
      /** Everything else on the machine (other users' processes): a loaded machine skews the numbers. */
      other_cpu_pct: 0,
      forwarded_video_packets_per_s: round((mB.forwardedVideo - mA.forwardedVideo) / mWall, 0),
      keyframe_requests: mB.keyFrameRequests - mA.keyFrameRequests,
      /** Share of the window the server's event-loop thread was runnable but had no CPU (starved). */
      server_thread_runqueue_wait_pct: round(((cB.serverSched.wait - cA.serverSched.wait) / 1e9 / wall) * 100),
      server_event_loop_lag_ms_max: round(mB.loopLagMax * 1000),
      server_event_loop_lag_ms_p99: round(mB.loopLagP99 * 1000),
      server_gc_pct: round(((mB.gcSeconds - mA.gcSeconds) / mWall) * 100),
      udp_rcvbuf_drops_server: cB.udpDrops.server - cA.udpDrops.server,
      udp_rcvbuf_drops_chromium: cB.udpDrops.chromium - cA.udpDrops.chromium,
      worst_tile: `${worst.page} receiving ${worst.peer}`,
      sent_fps_min: round(Math.min(...sentFps)),
      sent_resolution: [...sentRes].join(','),
      encode_ms_per_frame: round((encodeTime / Math.max(1, encoded)) * 1000, 2),
      quality_limitation: limitation,
      frames_received: recv.framesReceived,
      frames_decoded: recv.framesDecoded,
      frames_dropped: recv.framesDropped,
      decode_ms_per_frame: round((recv.totalDecodeTime / Math.max(1, recv.framesDecoded)) * 1000, 2),
      freezes: recv.freezeCount,
      freeze_s: round(recv.totalFreezesDuration, 2),
      nacks: recv.nackCount,
      plis: recv.pliCount,
      packets_lost_since_join: lostTotal,
      page_errors: pageErrors.length,
    },
  };
  const d = result.diagnostics;
  d.other_cpu_pct = round(Math.max(0, d.machine_cpu_pct - d.chromium_cpu_pct - d.server_proc_cpu_pct - d.bench_cpu_pct));
  const summary = [
    `call: ${opts.participants} participants, ${opts.width}x${opts.height}@${opts.fps}, ${opts.seconds} s window`,
    `  camera (sent)        ${result.camera_fps} fps median, ${d.sent_fps_min} min, ${d.sent_resolution}, encode ${d.encode_ms_per_frame} ms/frame, limitation ${JSON.stringify(limitation)}`,
    `  decoded              min ${result.min_decoded_fps} fps (${d.worst_tile}), median ${result.median_decoded_fps} fps, ratio ${result.min_decoded_ratio}`,
    `  by browser pair      min decoded fps ${JSON.stringify(byPair)} (sender->receiver)`,
    `  time to first frame  p50 ${result.time_to_first_frame_ms_p50} ms, max ${result.time_to_first_frame_ms_max} ms`,
    `  server               ${result.server_cpu_pct} % of a core, ${result.forwarded_packets_per_s} packets/s forwarded, ${result.dropped_packets} dropped by the pacer, event loop delay p99 ${d.server_event_loop_lag_ms_p99} ms max ${d.server_event_loop_lag_ms_max} ms, GC ${d.server_gc_pct} %, main thread waiting for a CPU ${d.server_thread_runqueue_wait_pct} % of the time`,
    `  receivers            ${result.packets_lost} packets lost, ${d.frames_dropped} frames dropped, ${d.freezes} freezes, ${d.nacks} NACKs, ${d.plis} PLIs, decode ${d.decode_ms_per_frame} ms/frame`,
    `  kernel UDP drops     ${d.udp_rcvbuf_drops_server} at the server's sockets, ${d.udp_rcvbuf_drops_chromium} at Chromium's (receive buffers full)`,
    `  CPU                  machine ${d.machine_cpu_pct} % of ${machineCores * 100} %, Chromium ${d.chromium_cpu_pct} %, server ${d.server_proc_cpu_pct} %, bench ${d.bench_cpu_pct} %, other processes ${d.other_cpu_pct} %; CPU pressure ${d.cpu_pressure_pct} % of the time; bench event loop delay max ${d.bench_event_loop_lag_ms_max} ms`,
  ];
  if (pageErrors.length) summary.push(`  page errors: ${pageErrors.join('; ')}`);
  return { result, summary };
}

export const callSuite: Suite<CallOptions> = {
  name: 'call',
  summary: 'N headless Chromium participants in one room through the real server; decoded fps, time to first frame, server CPU',
  needsLoopbackNetns: true,
  options: {
    participants: { type: 'string', short: 'n' },
    seconds: { type: 'string', short: 's' },
    width: { type: 'string' },
    height: { type: 'string' },
    fps: { type: 'string' },
    warmup: { type: 'string' },
    'server-nice': { type: 'string' },
    browsers: { type: 'string' },
  },
  usage: [
    `--participants N  pages in the room, 2–16 (default ${CALL_DEFAULTS.participants})`,
    `--seconds S       measurement window (default ${CALL_DEFAULTS.seconds})`,
    `--width W --height H --fps F  fake camera constraints (default ${CALL_DEFAULTS.width}x${CALL_DEFAULTS.height}@${CALL_DEFAULTS.fps})`,
    `--warmup S        seconds between "everyone decodes everyone" and the window (default ${CALL_DEFAULTS.warmup})`,
    `--browsers LIST   comma-separated ${CALL_BROWSERS.join(', ')}: pages round robin over them (default chromium)`,
    '--server-nice N   run the server at this nice value (-20…19; negative needs root): tells CPU starvation from SFU cost',
  ],
  parse(values) {
    const browsers = String(values['browsers'] ?? 'chromium').split(',').map((b) => b.trim());
    for (const b of browsers) if (!(CALL_BROWSERS as readonly string[]).includes(b)) throw new UsageError(`--browsers: unknown browser "${b}" (known: ${CALL_BROWSERS.join(', ')})`);
    const o: CallOptions = {
      browsers: browsers as CallBrowser[],
      participants: intOption(values, 'participants', CALL_DEFAULTS.participants, 2, 16),
      seconds: intOption(values, 'seconds', CALL_DEFAULTS.seconds, 1, 3600),
      width: intOption(values, 'width', CALL_DEFAULTS.width, 16, 3840),
      height: intOption(values, 'height', CALL_DEFAULTS.height, 16, 2160),
      fps: intOption(values, 'fps', CALL_DEFAULTS.fps, 1, 60),
      warmup: intOption(values, 'warmup', CALL_DEFAULTS.warmup, 0, 600),
      serverNice: values['server-nice'] === undefined ? undefined : intOption(values, 'server-nice', 0, -20, 19),
    };
    if ((values['width'] === undefined) !== (values['height'] === undefined)) throw new UsageError('give --width and --height together');
    return o;
  },
  network: (o) => (o.browsers.includes('firefox') ? 'firefox' : 'loopback'),
  run: runCall,
};
