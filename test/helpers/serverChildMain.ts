/**
 * Child-process side of test/helpers/serverChild.ts: a test server (startTestServer) that answers
 * "stats" requests over the IPC channel with its own memory (after a full GC), active handles and
 * object counts, so that a leak test measures the server alone, not the clients in the test process.
 * Started with --expose-gc.
 */
import { startTestServer } from './server.ts';
import type { ServerStats } from './serverChild.ts';

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
