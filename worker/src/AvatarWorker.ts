/**
 * An avatar worker: connects to the signaling server with the worker token, registers the
 * generators it runs and its capacity, and runs the avatar sessions the server assigns (one
 * {@link AvatarSessionRunner} each). It can run on another machine: all it needs is the server URL
 * and the token (identities and assets come over HTTP, see assets/AssetClient.ts).
 */
import { io, type Socket } from 'socket.io-client';
import { workerNotificationSchemas } from '../../protocol/src/signaling.ts';
import type { Logger } from './logger.ts';
import type { GeneratorOffer } from '../../protocol/src/generators.ts';
import { generatorModule as registryModule, type GeneratorModule } from './generator/registry.ts';
import { RenderThreadPool } from './render/RenderThreadPool.ts';
import { AvatarSessionRunner, type AssetSource } from './AvatarSessionRunner.ts';
import { AssetUnusableError } from './errors.ts';
import type { AudioToExpression } from './VoiceDriver.ts';

const STATS_INTERVAL_MS = 2000;

export interface AvatarWorkerOptions {
  serverUrl: string;
  token: string;
  workerId: string;
  capacity: number;
  /**
   * How long its runners go on after the control socket drops (default 10 s; 0: they stop at once).
   * Re-registering in time reports them to the server, which keeps the ones that are still its.
   */
  reconnectGraceMs?: number;
  /** what this worker renders, registered with the server (worker:register) */
  generators: (string | GeneratorOffer)[];
  assets: AssetSource;
  /** the generator module of a kind (default: the registry's) */
  generatorModule?: (kind: string) => GeneratorModule;
  /** Voice sessions' audio-to-motion model (absent: this worker refuses voice sessions). */
  createAudioModel?: () => Promise<AudioToExpression>;
  logger: Logger;
}

export class AvatarWorker {
  readonly #runners = new Map<string, AvatarSessionRunner>();
  /** Sessions whose runner is starting: the assignment (its token) each start is for. */
  readonly #starting = new Map<string, string>();
  #graceTimer: NodeJS.Timeout | undefined;
  readonly #socket: Socket;
  readonly #statsTimer: NodeJS.Timeout;
  /** one booted render thread per generator this worker offers, so a session start does not wait for a thread */
  readonly #renderThreads = new RenderThreadPool();
  #closed = false;

  private constructor(private readonly opts: AvatarWorkerOptions) {
    const moduleOf = opts.generatorModule ?? registryModule;
    for (const g of opts.generators) {
      try {
        this.#renderThreads.prepare(moduleOf(typeof g === 'string' ? g : g.kind));
      } catch (err) {
        opts.logger.warn({ err, generator: g }, 'no spare render thread for this generator');
      }
    }
    this.#socket = io(opts.serverUrl, { transports: ['websocket'], auth: { workerToken: opts.token }, reconnectionDelay: 250, reconnectionDelayMax: 2000 });
    this.#socket.on('connect', () => {
      clearTimeout(this.#graceTimer);
      this.#graceTimer = undefined;
      this.#register();
    });
    this.#socket.on('server:error', (err: { code?: string; message?: string } | undefined) => {
      opts.logger.error({ code: err?.code, serverMessage: err?.message }, `the server refused this worker: ${err?.code ?? 'error'}: ${err?.message ?? ''}`);
    });
    this.#statsTimer = setInterval(() => {
      if (this.#socket.connected) this.#socket.emit('worker:stats', { sessions: [...this.#runners.values()].map((r) => ({ ...r.stats(), renderMs: r.takeRenderSamples() })) });
    }, STATS_INTERVAL_MS);
    this.#socket.on('disconnect', (reason) => {
      const graceMs = opts.reconnectGraceMs ?? 10_000;
      // the server dropping us on purpose (or a closed worker) does not come back: stop now
      if (graceMs <= 0 || this.#closed || reason === 'io server disconnect') {
        opts.logger.warn({ reason }, 'worker lost the server; dropping its sessions');
        this.#dropAll();
        return;
      }
      opts.logger.warn({ reason, graceMs, sessions: this.#runners.size }, 'worker lost the server; its sessions go on for the reconnection grace');
      clearTimeout(this.#graceTimer);
      this.#graceTimer = setTimeout(() => {
        this.#graceTimer = undefined;
        if (this.#socket.connected) return;
        opts.logger.warn({ graceMs }, 'the server did not come back within the grace; dropping the sessions');
        this.#dropAll();
      }, graceMs);
      this.#graceTimer.unref?.();
    });
    this.#socket.on('worker:assign', (payload: unknown, ack?: (r: unknown) => void) => {
      const parsed = workerNotificationSchemas['worker:assign'].safeParse(payload);
      if (!parsed.success) {
        ack?.({ ok: false });
        return;
      }
      const assign = parsed.data;
      const running = this.#runners.get(assign.sessionId);
      if (running?.assign.token === assign.token || this.#starting.get(assign.sessionId) === assign.token) {
        ack?.({ ok: true }); // the same assignment again
        return;
      }
      // A new assignment of a session this worker still runs (or is still starting) under an older
      // token: the old runner goes (its token is revoked) and the new one starts, never ignored.
      if (running) {
        opts.logger.info({ sessionId: assign.sessionId }, 'reassigned while its old runner still ran; replacing it');
        running.close();
        this.#runners.delete(assign.sessionId);
      }
      ack?.({ ok: true });
      this.#starting.set(assign.sessionId, assign.token);
      AvatarSessionRunner.start({
        assign,
        serverUrl: opts.serverUrl,
        assets: opts.assets,
        ...(opts.generatorModule ? { generatorModule: opts.generatorModule } : {}),
        ...(opts.createAudioModel ? { createAudioModel: opts.createAudioModel } : {}),
        logger: opts.logger,
        renderThreads: this.#renderThreads,
        onQualityChange: (change) => {
          const nominal = { nominalSize: assign.size, nominalFps: assign.fps };
          if (this.#socket.connected) this.#socket.emit('worker:session-quality', { sessionId: assign.sessionId, quality: { level: change.level, size: change.size, fps: change.fps, ...nominal, loadPct: change.loadPct } });
        },
      }).then(
        (runner) => {
          const current = this.#starting.get(assign.sessionId) === assign.token;
          if (current) this.#starting.delete(assign.sessionId);
          // released, or assigned again, while it started: this one is not wanted any more
          if (!current || this.#closed) return runner.close();
          this.#runners.get(assign.sessionId)?.close();
          this.#runners.set(assign.sessionId, runner);
        },
        (err: unknown) => {
          if (this.#starting.get(assign.sessionId) !== assign.token) return;
          this.#starting.delete(assign.sessionId);
          opts.logger.error({ err, sessionId: assign.sessionId }, 'avatar session failed to start');
          this.#socket.emit('worker:session-state', { sessionId: assign.sessionId, state: 'failed', message: String((err as Error)?.message ?? err).slice(0, 500), ...(err instanceof AssetUnusableError ? { code: err.code } : {}) });
        },
      );
    });
    this.#socket.on('worker:release', (payload: unknown) => {
      const parsed = workerNotificationSchemas['worker:release'].safeParse(payload);
      if (!parsed.success) return;
      this.#starting.delete(parsed.data.sessionId);
      this.#runners.get(parsed.data.sessionId)?.close();
      this.#runners.delete(parsed.data.sessionId);
    });
    this.#socket.on('worker:views', (payload: unknown) => {
      const parsed = workerNotificationSchemas['worker:views'].safeParse(payload);
      if (!parsed.success) return;
      this.#runners.get(parsed.data.sessionId)?.updateViews(parsed.data.views);
    });
  }

  static async start(opts: AvatarWorkerOptions): Promise<AvatarWorker> {
    if (!opts.serverUrl || !opts.token) throw new TypeError('serverUrl and token are required');
    if (!(opts.capacity >= 1)) throw new TypeError('capacity must be ≥ 1');
    return new AvatarWorker(opts);
  }

  get sessions(): ReadonlyMap<string, AvatarSessionRunner> {
    return this.#runners;
  }

  #register(): void {
    // the sessions it still runs (after a dropped control socket): the server keeps those that are still its own
    const sessions = [...new Set([...this.#runners.keys(), ...this.#starting.keys()])];
    this.#socket.timeout(5000).emit('worker:register', { workerId: this.opts.workerId, capacity: this.opts.capacity, generators: this.opts.generators, ...(sessions.length > 0 ? { sessions } : {}) }, (err: Error | null, res: { ok?: boolean } | undefined) => {
      if (err || !res?.ok) this.opts.logger.error({ err: err?.message, res }, 'worker registration refused');
      else this.opts.logger.info({ workerId: this.opts.workerId }, 'worker registered');
    });
  }

  #dropAll(): void {
    for (const r of this.#runners.values()) r.close();
    this.#runners.clear();
    this.#starting.clear();
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#graceTimer);
    this.#starting.clear();
    clearInterval(this.#statsTimer);
    this.#renderThreads.close();
    for (const r of this.#runners.values()) r.close();
    this.#runners.clear();
    this.#socket.close();
  }
}
