/**
 * A test server (startTestServer) in a child process, for leak tests: the server's memory, handles
 * and object counts are measured apart from the clients that load it (thousands of client-side
 * RTCPeerConnections and sockets would drown its numbers if both shared one process). The child runs
 * with --expose-gc, so `stats()` reports the heap after a full collection.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SignalingStats } from '../../server/src/signaling/SignalingServer.ts';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'serverChildMain.ts');

export interface ServerStats {
  rssMb: number;
  /** V8 heap in use after a full GC. */
  heapMb: number;
  externalMb: number;
  /** process.getActiveResourcesInfo() by type (Timeout, TCPSocketWrap, UDPWRAP, …). */
  resources: Record<string, number>;
  /** Live objects reachable from the room manager. */
  rooms: number;
  peers: number;
  producers: number;
  consumers: number;
  dataProducers: number;
  dataConsumers: number;
  /** The server's own gauges (created minus closed): they also count objects nothing references any more. */
  gauges: { rooms: number; peers: number; transports: number; producers: number; consumers: number };
  /** Pending timers by where they were created (only with SERVER_CHILD_TRACE_TIMERS=1 in the child's env). */
  timers: Record<string, number>;
  signaling: SignalingStats;
  avatarSessions: number;
}

export interface ServerChild {
  url: string;
  pid: number;
  stats(): Promise<ServerStats>;
  stop(): Promise<void>;
}

export async function startServerChild(env: Record<string, string> = {}): Promise<ServerChild> {
  const child: ChildProcess = fork(MAIN, [], {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    env: { ...process.env, SERVER_CHILD_ENV: JSON.stringify(env), ...(env['SERVER_CHILD_TRACE_TIMERS'] ? { SERVER_CHILD_TRACE_TIMERS: env['SERVER_CHILD_TRACE_TIMERS'] } : {}) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (s: ServerStats) => void; reject: (e: Error) => void }>();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<{ url: string; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server child did not start within 60 s')), 60_000);
    child.on('message', (msg: { type?: string; url?: string; pid?: number; id?: number; stats?: ServerStats; error?: string }) => {
      if (msg.type === 'ready') {
        clearTimeout(timer);
        resolve({ url: msg.url!, pid: msg.pid! });
        return;
      }
      const p = msg.id !== undefined ? pending.get(msg.id) : undefined;
      if (!p) return;
      pending.delete(msg.id!);
      if (msg.error) p.reject(new Error(msg.error));
      else p.resolve(msg.stats!);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const err = new Error(`server child exited (${code ?? signal})`);
      reject(err);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    });
  });
  const { url, pid } = await ready;
  return {
    url,
    pid,
    stats: () =>
      new Promise<ServerStats>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject });
        child.send({ id, type: 'stats' });
      }),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.send({ type: 'stop' });
      await exited;
      clearTimeout(kill);
    },
  };
}
