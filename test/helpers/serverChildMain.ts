/**
 * Child-process side of test/helpers/serverChild.ts: a test server (startTestServer) that answers
 * "stats" requests over the IPC channel with its own memory (after a full GC), active handles and
 * object counts, so that a leak test measures the server alone, not the clients in the test process.
 * Started with --expose-gc.
 */
import { startTestServer } from './server.ts';
import type { ServerStats } from './serverChild.ts';

/**
 * SERVER_CHILD_TRACE_TIMERS=1: remember where each pending timer was created, so that stats() can say
 * whose timers pile up (where from: the first stack frames outside node:internal).
 */
const timerOrigins = new Map<unknown, string>();
if (process.env['SERVER_CHILD_TRACE_TIMERS'] === '1') {
  const where = (): string =>
    (new Error().stack ?? '').split('\n').slice(2).filter((l) => !l.includes('node:internal') && !l.includes('serverChildMain')).slice(0, 3).map((l) => l.trim().replace(/^at /, '').replace(/\(.*node_modules\//, '(')).join(' < ');
  const origSetTimeout = globalThis.setTimeout;
  const origSetInterval = globalThis.setInterval;
  const origClearTimeout = globalThis.clearTimeout;
  const origClearInterval = globalThis.clearInterval;
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const t = origSetTimeout((...a: unknown[]) => {
      timerOrigins.delete(t);
      fn(...a);
    }, ms, ...args);
    timerOrigins.set(t, `timeout ${ms ?? 0}ms ${where()}`);
    return t;
  }) as typeof setTimeout;
  globalThis.setInterval = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const t = origSetInterval(fn, ms, ...args);
    timerOrigins.set(t, `interval ${ms ?? 0}ms ${where()}`);
    return t;
  }) as typeof setInterval;
  globalThis.clearTimeout = ((t: Parameters<typeof clearTimeout>[0]) => {
    timerOrigins.delete(t);
    origClearTimeout(t);
  }) as typeof clearTimeout;
  globalThis.clearInterval = ((t: Parameters<typeof clearInterval>[0]) => {
    timerOrigins.delete(t);
    origClearInterval(t);
  }) as typeof clearInterval;
}

const env = JSON.parse(process.env['SERVER_CHILD_ENV'] ?? '{}') as Record<string, string>;
const server = await startTestServer({}, env);

async function gauge(name: string): Promise<number> {
  const metric = server.metrics.registry.getSingleMetric(name);
  if (!metric) return Number.NaN;
  const { values } = await metric.get();
  return values.reduce((a, v) => a + v.value, 0);
}

async function stats(): Promise<ServerStats> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the server child needs --expose-gc');
  // Closed objects' finalizers (werift's, socket.io's) may need a turn of the loop between collections.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  const mem = process.memoryUsage();
  const resources: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
  const timers: Record<string, number> = {};
  for (const [t, origin] of timerOrigins) {
    if (typeof t === 'object' && t !== null && 'hasRef' in t && (t as NodeJS.Timeout)['_destroyed' as never]) continue;
    timers[origin] = (timers[origin] ?? 0) + 1;
  }
  let peers = 0;
  let producers = 0;
  let consumers = 0;
  let dataProducers = 0;
  let dataConsumers = 0;
  for (const room of server.rooms.rooms.values()) {
    for (const peer of room.peers.values()) {
      peers++;
      producers += peer.sendTransport.producers.size;
      dataProducers += peer.sendTransport.dataProducers.size;
      consumers += peer.recvTransport.consumers.size;
      dataConsumers += peer.recvTransport.dataConsumers.size;
    }
  }
  return {
    rssMb: mem.rss / 2 ** 20,
    heapMb: mem.heapUsed / 2 ** 20,
    externalMb: mem.external / 2 ** 20,
    resources,
    rooms: server.rooms.rooms.size,
    peers,
    producers,
    consumers,
    dataProducers,
    dataConsumers,
    gauges: {
      rooms: await gauge('avatar_sfu_rooms'),
      peers: await gauge('avatar_sfu_peers'),
      transports: await gauge('avatar_sfu_transports'),
      producers: await gauge('avatar_sfu_producers'),
      consumers: await gauge('avatar_sfu_consumers'),
    },
    timers,
    signaling: server.signalingStats(),
    avatarSessions: server.avatars.sessions.size,
  };
}

process.on('message', (msg: { id: number; type: string }) => {
  if (msg.type === 'stats') {
    stats().then(
      (s) => process.send!({ id: msg.id, stats: s }),
      (err: unknown) => process.send!({ id: msg.id, error: String((err as Error)?.stack ?? err) }),
    );
  } else if (msg.type === 'stop') {
    server.close().finally(() => process.exit(0));
  }
});
// The test process went away without stopping us.
process.on('disconnect', () => void server.close().finally(() => process.exit(0)));
process.send!({ type: 'ready', url: server.httpUrl, pid: process.pid });
