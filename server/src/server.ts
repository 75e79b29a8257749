/** Assembles one avatar-sfu server: HTTP(S), signaling, rooms and metrics. Used by main.ts and tests. */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Server as IoServer } from 'socket.io';
import type { Config } from './config.ts';
import { getLogger, type Logger } from './logger.ts';
import { Metrics } from './metrics.ts';
import { RoomManager } from './rooms/RoomManager.ts';
import { SignalingServer, type SignalingStats } from './signaling/SignalingServer.ts';
import { createApp } from './http/app.ts';
import { loadOrCreateDevCertificate } from './certs.ts';
import { AvatarService } from './avatar/service/AvatarService.ts';
import { AvatarMetrics } from './avatar/service/AvatarMetrics.ts';
import { WorkerSupervisor } from './avatar/service/WorkerSupervisor.ts';
import { IdentityStore } from './avatar/identity/IdentityStore.ts';
import { EnrollmentService } from './avatar/identity/EnrollmentService.ts';
import { createIdentityRouter } from './http/identities.ts';
import { createWorkerAssetRouter } from './http/workerAssets.ts';
import { createVendorRouter } from './http/vendorAssets.ts';
import { createTrainingJobRouter } from './http/trainingJobs.ts';
import { TrainingJobs } from './avatar/training/TrainingJobs.ts';
import { ACTIVE_JOB_STATES } from '../../protocol/src/trainingJobs.ts';
import { decodeHeadAsset } from '../../models/gaussian/headAsset.ts';
import { AccessTokens } from './auth/AccessTokens.ts';
import { createAdminAccess } from './http/adminAccess.ts';
import { createTokenRouter } from './http/tokens.ts';
import { UploadQuota } from './http/uploadQuota.ts';
import { originAllowed } from './signaling/originCheck.ts';

export interface AvatarServer {
  readonly config: Config;
  readonly rooms: RoomManager;
  readonly metrics: Metrics;
  readonly avatars: AvatarService;
  readonly identities: IdentityStore;
  /** Personal-avatar training jobs. */
  readonly training: TrainingJobs;
  /** Local avatar worker processes (empty when AVATAR_WORKERS=0). */
  readonly workers: WorkerSupervisor | undefined;
  /** e.g. http://127.0.0.1:3000 */
  readonly httpUrl: string;
  readonly httpsUrl: string | null;
  /** Read-only signaling counts (bound sockets, resumable participants, grace timers) for leak checks. */
  signalingStats(): SignalingStats;
  close(): Promise<void>;
  /**
   * Graceful shutdown (SIGTERM): joins are refused (SHUTTING_DOWN), every client is told
   * (`server:shutdown`), the avatar sessions are released by their workers, and after
   * config.shutdownDrainMs everything closes. The caller bounds it (config.shutdownTimeoutMs).
   */
  shutdown(reason: string): Promise<void>;
}

/** How often unused identities are looked for (config.avatar.identityMaxUnusedMs) after the start. */
export const IDENTITY_CLEANUP_INTERVAL_MS = 60 * 60 * 1000;

/** Room for protocol overhead above MAX_MESSAGE_BYTES: bigger frames are refused by engine.io itself. */
const MAX_HTTP_BUFFER = 2 * 1024 * 1024;

function listen(server: http.Server | https.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function urlHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
}

export async function createAvatarServer(config: Config, logger: Logger = getLogger()): Promise<AvatarServer> {
  const accessTokens = config.auth.secret !== undefined ? await AccessTokens.create({ secret: config.auth.secret }) : undefined;
  if (!accessTokens) logger.warn('development mode: AUTH_SECRET is not set, so anyone who reaches this server can join any room and read /api/rooms and /metrics; set AUTH_SECRET (and AUTH_ADMIN_KEY) before exposing it');
  else {
    if (config.auth.adminKey === undefined) logger.warn('AUTH_ADMIN_KEY is not set: /api/rooms, /metrics and POST /api/admin/tokens refuse every request (mint tokens with npm run token)');
    if (config.auth.allowedOrigins === undefined) logger.warn('ALLOWED_ORIGINS is not set: pages of any origin may open signaling sockets (they still need a token)');
  }
  const access = createAdminAccess({ tokens: accessTokens, adminKey: config.auth.adminKey, metricsToken: config.auth.metricsToken });
  const metrics = new Metrics();
  const rooms = new RoomManager(config, logger, metrics);
  const identities = await IdentityStore.create({ dataDir: config.avatar.dataDir, cacheSize: config.avatar.identityCacheSize, logger });
  const enrollment = await EnrollmentService.create({
    maxPhotoBytes: config.avatar.maxPhotoBytes,
    maxPhotoPixels: config.avatar.maxPhotoPixels,
    timeoutMs: config.avatar.enrollTimeoutMs,
    maxQueue: config.avatar.enrollQueueMax,
    preload: config.avatar.preloadEnrollWorker,
    logger,
  });
  const training = await TrainingJobs.create({
    dir: path.join(config.avatar.dataDir, 'training-jobs'),
    logger,
    registry: metrics.registry,
    concurrency: config.training.concurrency,
    queueMax: config.training.queueMax,
    timeLimitMs: config.training.timeLimitMs,
    nice: config.training.nice,
    settings: {
      size: config.training.size,
      minutes: config.training.minutes,
      ...(config.training.iterations !== undefined ? { iterations: config.training.iterations } : {}),
      ...(config.training.gaussians !== undefined ? { gaussians: config.training.gaussians } : {}),
      threads: config.training.threads,
      seed: 1,
      evaluations: 40,
    },
    // the child wrote the file atomically and said it is complete; it is checked once more before
    // the identity gets it (a worker will load it)
    onAssetReady: async (job, file) => {
      const bytes = new Uint8Array(await fs.promises.readFile(file));
      decodeHeadAsset(bytes);
      await identities.putAsset(job.identityId, 'gaussian-head', bytes);
    },
  });
  const avatars = new AvatarService(config, logger.child({ component: 'avatars' }), new AvatarMetrics(metrics.registry), (id) => identities.assetKinds(id));
  const app = createApp({
    clientDir: config.clientDir,
    rooms,
    metrics,
    logger,
    startedAt: Date.now(),
    guards: { rooms: access.admin, room: access.roomAdmin((req) => String(req.params['roomId'])), metrics: access.metrics },
    routers: {
      '/api/admin': createTokenRouter({ tokens: accessTokens, access, logger }),
      // before /api/identities, whose router answers 404 for any path it does not know
      '/api': createTrainingJobRouter({ jobs: training, authorizeOwner: (id, key) => identities.verifyOwner(id, key), quota: new UploadQuota(config.uploads), logger }),
      '/api/identities': createIdentityRouter({ service: enrollment, store: identities, config, logger, quota: new UploadQuota(config.uploads), onDeleted: async (id) => void (await training.deleteForIdentity(id)) }),
      '/api/worker': createWorkerAssetRouter({ store: identities, token: config.workers.token, logger }),
      '/': createVendorRouter(),
    },
  });

  const httpServer = http.createServer(app);
  const servers: (http.Server | https.Server)[] = [httpServer];
  let httpsServer: https.Server | undefined;
  if (config.httpsPort !== null) {
    const tls = await loadOrCreateDevCertificate(config.tls, logger);
    if (tls) {
      httpsServer = https.createServer({ cert: tls.cert, key: tls.key }, app);
      servers.push(httpsServer);
    }
  }
  const ios = servers.map((s) => new IoServer(s, {
    maxHttpBufferSize: MAX_HTTP_BUFFER,
    serveClient: false,
    pingInterval: 10_000,
    pingTimeout: 8_000,
    // pages of other origins may not open signaling sockets (ALLOWED_ORIGINS; this server's own pages may)
    allowRequest: (req, callback) => {
      const allowed = originAllowed(req.headers.origin, config.auth.allowedOrigins, { host: req.headers.host, secure: s instanceof https.Server });
      if (!allowed) logger.warn({ origin: req.headers.origin }, 'signaling socket from an origin that is not allowed refused');
      callback(allowed ? null : 'origin not allowed', allowed);
    },
  }));
  const signaling = new SignalingServer(ios, rooms, config, logger, metrics, {
    service: avatars,
    identityExists: (id) => identities.has(id),
    verifyOwner: (id, key) => identities.verifyOwner(id, key),
    identityUsed: (id) => void identities.touch(id).catch((err: unknown) => logger.warn({ err, identityId: id }, 'could not mark identity as used')),
  }, accessTokens);
  // Unused identities expire: once at start, then every hour (never those a session runs with).
  const expireIdentities = async (): Promise<void> => {
    if (config.avatar.identityMaxUnusedMs <= 0 || identities.closed) return;
    const inUse = new Set([...avatars.sessions.values()].map((s) => s.identityId));
    // an identity whose personal avatar is being trained is in use too
    const isTraining = (id: string): boolean => training.list(id).some((j) => (ACTIVE_JOB_STATES as readonly string[]).includes(j.state));
    try {
      const expired = await identities.expireUnused(config.avatar.identityMaxUnusedMs, (id) => inUse.has(id) || isTraining(id));
      for (const id of expired) await training.deleteForIdentity(id);
    } catch (err) {
      logger.warn({ err }, 'identity expiry failed');
    }
  };
  await expireIdentities();
  const expiryTimer = setInterval(() => void expireIdentities(), IDENTITY_CLEANUP_INTERVAL_MS);
  expiryTimer.unref();

  const httpPort = await listen(httpServer, config.httpPort, config.host);
  const httpsPort = httpsServer ? await listen(httpsServer, config.httpsPort ?? 0, config.host) : null;
  const httpUrl = `http://${urlHost(config.host)}:${httpPort}`;
  const httpsUrl = httpsPort === null ? null : `https://${urlHost(config.host)}:${httpsPort}`;
  const loopback = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const workers = config.workers.count > 0 ? await WorkerSupervisor.create(config, `http://${urlHost(loopback)}:${httpPort}`, logger, (id) => avatars.workerExited(id)) : undefined;

  let closing: Promise<void> | undefined;
  let shuttingDown: Promise<void> | undefined;
  const server: AvatarServer = {
    config,
    rooms,
    metrics,
    avatars,
    identities,
    training,
    workers,
    httpUrl,
    httpsUrl,
    signalingStats: () => signaling.stats(),
    close() {
      closing ??= (async () => {
        clearInterval(expiryTimer);
        await workers?.close();
        avatars.close();
        signaling.close();
        rooms.close();
        enrollment.close();
        await training.close();
        identities.close();
        // Stop listening and end every HTTP connection first: socket.io's close() waits for its HTTP
        // server to close, which waits for open connections (a browser's keep-alive or preconnected
        // sockets), so ending them only afterwards made shutdown hang until a timeout or the hard exit.
        const stopped = servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r())));
        for (const s of servers) s.closeAllConnections?.();
        await Promise.all(ios.map((io) => new Promise<void>((r) => io.close(() => r()))));
        await Promise.all(stopped);
      })();
      return closing;
    },
    shutdown(reason) {
      shuttingDown ??= (async () => {
        signaling.drain(reason);
        // ends every session: each worker is told to release its own, then let go
        avatars.close();
        const drainMs = Math.min(config.shutdownDrainMs, Math.max(0, config.shutdownTimeoutMs - 2000));
        await new Promise((r) => setTimeout(r, drainMs));
        await server.close();
      })();
      return shuttingDown;
    },
  };
  return server;
}
