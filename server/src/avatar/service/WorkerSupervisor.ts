/**
 * Starts the local avatar worker processes (the worker package's entry point, worker/src/main.ts)
 * and restarts any that exit (quickly at first, backing off when one keeps crashing). Workers connect
 * back over signaling and fetch their assets over HTTP like remote ones would: they share no disk
 * and no code with the server beyond protocol/ and models/.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../config.ts';
import type { Logger } from '../../logger.ts';
import { mintWorkerCredential } from '../../auth/workerCredentials.ts';

const WORKER_MAIN = fileURLToPath(new URL('../../../../worker/src/main.ts', import.meta.url));

interface Slot {
  id: string;
  child: ChildProcess | undefined;
  restarts: number;
  lastStart: number;
  timer: NodeJS.Timeout | undefined;
}

export class WorkerSupervisor {
  readonly #slots: Slot[] = [];
  #closed = false;

  private constructor(
    private readonly config: Config,
    private readonly serverUrl: string,
    private readonly logger: Logger,
    private readonly onExit: ((workerId: string) => void) | undefined,
  ) {}

  /** `onExit`: a worker process exited (its sessions need not wait for it to reconnect). */
  static async create(config: Config, serverUrl: string, logger: Logger, onExit?: (workerId: string) => void): Promise<WorkerSupervisor> {
    const s = new WorkerSupervisor(config, serverUrl, logger.child({ component: 'worker-supervisor' }), onExit);
    for (let i = 0; i < config.workers.count; i++) {
      const slot: Slot = { id: `local-${i}`, child: undefined, restarts: 0, lastStart: 0, timer: undefined };
      s.#slots.push(slot);
      s.#spawn(slot);
    }
    return s;
  }

  /** Pids of the running workers (tests kill them to check failover). */
  get pids(): number[] {
    return this.#slots.map((s) => s.child?.pid).filter((p): p is number => typeof p === 'number');
  }

  /** Pid of the local worker registered as `workerId`, if running. */
  pidOf(workerId: string): number | undefined {
    return this.#slots.find((s) => s.id === workerId)?.child?.pid;
  }

  #spawn(slot: Slot): void {
    if (this.#closed) return;
    slot.lastStart = performance.now();
    const child = fork(WORKER_MAIN, [], {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        AVATAR_WORKER_SERVER_URL: this.serverUrl,
        // its own credential: it can register only as slot.id
        AVATAR_WORKER_TOKEN: mintWorkerCredential(this.config.workers.token, slot.id),
        AVATAR_WORKER_ID: slot.id,
        // the workers' own asset cache (content-addressed copies they fetched over HTTP), kept with the server's data
        AVATAR_WORKER_CACHE_DIR: path.join(this.config.avatar.dataDir, 'worker-cache'),
        AVATAR_SESSIONS_PER_WORKER: String(this.config.workers.sessionsPerWorker),
        LOG_LEVEL: this.config.logLevel,
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    slot.child = child;
    child.on('exit', (code, signal) => {
      if (slot.child !== child) return;
      slot.child = undefined;
      if (this.#closed) return;
      this.onExit?.(slot.id);
      const ranMs = performance.now() - slot.lastStart;
      slot.restarts = ranMs > 30_000 ? 0 : slot.restarts + 1;
      const delay = slot.restarts <= 1 ? 0 : Math.min(5000, 250 * 2 ** (slot.restarts - 2));
      this.logger.warn({ workerId: slot.id, code, signal, restartInMs: delay }, 'avatar worker exited; restarting');
      slot.timer = setTimeout(() => this.#spawn(slot), delay);
    });
    child.on('error', (err) => this.logger.error({ err, workerId: slot.id }, 'avatar worker process error'));
  }

  /** Idempotent; stops every worker (SIGTERM, then SIGKILL after 2 s). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(
      this.#slots.map(async (slot) => {
        if (slot.timer) clearTimeout(slot.timer);
        const child = slot.child;
        if (!child || child.exitCode !== null) return;
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const kill = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(kill);
      }),
    );
  }
}
