/**
 * The one place that reads process.env. Everything else receives a typed {@link Config}.
 * Every variable is documented in README.md ("Configuration").
 */
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DEFAULT_GENERATOR, GENERATOR_KINDS, type GeneratorKind } from '../../protocol/src/generators.ts';
import { CHAT_DEFAULT_HISTORY } from '../../protocol/src/chat.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Config {
  /** Interface the HTTP(S) servers listen on. */
  host: string;
  /** Plain HTTP port (0 = pick a free one). */
  httpPort: number;
  /** HTTPS port with the development certificate; null disables HTTPS. */
  httpsPort: number | null;
  tls: { certFile: string; keyFile: string; generateIfMissing: boolean };
  rtc: {
    /** Local IPv4 address werift binds ICE to (undefined: all interfaces). */
    listenIp: string | undefined;
    /** Extra address announced as a host candidate (public/LAN IP behind NAT, or 127.0.0.1). */
    announcedIp: string | undefined;
    /** UDP port range for ICE; undefined lets the OS pick. */
    portRange: [number, number] | undefined;
    /** UDP socket send/receive buffer size requested for media sockets (0 = kernel default). */
    socketBufferBytes: number;
    /**
     * Audio packet time (ms) asked of voice-avatar owners and of the workers that republish their
     * voice (10: less mic-to-lips latency; 20: the WebRTC default, half the packets).
     */
    voiceAudioPtimeMs: 10 | 20 | 40 | 60;
    /**
     * A connected transport that receives nothing (no RTP, RTCP, DTLS/SCTP or STUN consent) for this
     * long is declared dead (mediasoup's iceConsentTimeout); 0 disables the check.
     */
    iceConsentTimeoutMs: number;
    /**
     * A connected transport silent this long is reported inactive (its peer looks "reconnecting" to
     * the others until packets arrive again); 0 disables. Browsers send RTCP about every second and
     * STUN consent every 2.5 s.
     */
    iceInactiveMs: number;
  };
  limits: {
    maxPeersPerRoom: number;
    maxRooms: number;
    /** Sustained signaling messages per second per socket, and the burst allowed above it. */
    messagesPerSecond: number;
    messageBurst: number;
    /** Rejected messages within 10 s after which the socket is disconnected. */
    abuseDisconnectThreshold: number;
    /** Pacer: bytes per second per receive transport, and the queue bound (packets) before dropping. */
    pacerBitrateBps: number;
    pacerMaxQueuePackets: number;
    /**
     * How long a participant whose signaling socket dropped, or whose transports died, stays in its
     * room as "reconnecting" and can resume with its resume key; 0: it leaves at once.
     */
    reconnectGraceMs: number;
  };
  /** Active-speaker detection (server/src/speaker/ActiveSpeaker.ts, from RFC 6464 audio levels). */
  activeSpeaker: {
    intervalMs: number;
    /** dBov at or below which a microphone is silent. */
    thresholdDbov: number;
  };
  /** Room chat (server/src/chat/RoomChat.ts): per-peer rate and the history kept for late joiners. */
  chat: {
    messagesPerSecond: number;
    burst: number;
    historySize: number;
  };
  /** Avatar worker processes (renderers) and avatar sessions. */
  workers: {
    /** Local worker processes the server starts and supervises (0: only remote workers). */
    count: number;
    /**
     * Shared secret of avatar workers: presented in the socket.io handshake and as
     * `Authorization: Bearer` on the worker asset API. Random per start unless set.
     */
    token: string;
    /** Whether AVATAR_WORKER_TOKEN was set (else `token` is this process's random one). */
    tokenConfigured: boolean;
    /** Avatar sessions one worker renders at once. */
    sessionsPerWorker: number;
    /** Rendered video size (square) and frame rate. */
    size: number;
    fps: number;
    /** Personal free views rendered per avatar (beyond the shared default view). */
    maxPersonalViews: number;
    /**
     * Preferred generator (one of GENERATOR_KINDS, protocol/src/generators.ts): a session renders
     * with it when its identity has that generator's asset and a worker that registered it has room;
     * otherwise with another generator the identity has an asset for. 'mesh' (the enrolled photo) is
     * the default, which every enrolled identity can use.
     */
    generator: GeneratorKind;
    /**
     * A session that is not live this long after it started (or lost its worker) fails, and the
     * owner's tile says why, instead of waiting forever for a worker.
     */
    startTimeoutMs: number;
    /**
     * A session whose runner died (its avatar peer closed while its worker stayed connected) is
     * released and assigned again, with a new session token; after this many runner deaths in a row
     * (without going live in between) it fails and the owner's tile says why.
     */
    maxRunnerRestarts: number;
    /**
     * A worker whose control socket drops keeps its sessions this long: reconnecting (and
     * re-registering) within it, the sessions it still runs stay with it; after it, they move.
     */
    reconnectGraceMs: number;
    /**
     * How a voice avatar's worker receives the owner's microphone: 'tap' = the Opus packets on a data
     * channel, decoded by the worker without a playout jitter buffer (lower mic-to-lips latency);
     * 'track' = an ordinary WebRTC audio track (the worker's libwebrtc jitter buffer, 25–40 ms more).
     */
    voiceInput: 'tap' | 'track';
  };
  /** Avatar source photos: enrollment limits and the identity store. */
  avatar: {
    /** Root of persisted avatar data; identities live in `<dataDir>/identities/<id>/`. */
    dataDir: string;
    /** Largest accepted photo upload (bytes); larger bodies get 413. */
    maxPhotoBytes: number;
    /** Largest accepted photo (width × height, read from the image header before decoding); 413 above. */
    maxPhotoPixels: number;
    /** Time one enrollment may run in the worker before it is abandoned (504) and the worker replaced. */
    enrollTimeoutMs: number;
    /** Enrollments waiting behind the running one; more are refused with 503. */
    enrollQueueMax: number;
    /** Enrolled identities kept decoded in memory (LRU). */
    identityCacheSize: number;
    /** Start the enrollment worker (Human models, ~1-2 s) at startup instead of on the first upload. */
    preloadEnrollWorker: boolean;
    /**
     * Identities not used by an avatar session for this long are deleted (at start and every hour);
     * 0 keeps them forever.
     */
    identityMaxUnusedMs: number;
  };
  /** Training jobs of personal (Gaussian-head) avatars (avatar/training/TrainingJobs.ts). */
  training: {
    /** jobs running at once */
    concurrency: number;
    /** jobs waiting behind them; more get 503 BUSY */
    queueMax: number;
    /** a job running longer is killed and fails with TIMEOUT */
    timeLimitMs: number;
    /** optimisation wall-time budget of one job, minutes */
    minutes: number;
    /** exact iteration count instead of the time budget (tests); undefined = use minutes */
    iterations: number | undefined;
    /** Gaussians per head; undefined = the trainer's default */
    gaussians: number | undefined;
    /** crop side the head is trained at */
    size: number;
    /** trainer threads */
    threads: number;
    /** nice value of the job processes (19 = lowest priority) */
    nice: number;
  };
  /** Room access and admin credentials (issue 12). Without `secret`: development mode, open rooms. */
  auth: {
    /** HS256 secret of room access tokens (AUTH_SECRET, ≥ 32 characters); set = every browser join needs a token. */
    secret: string | undefined;
    /** Admin key (`Authorization: Bearer`): mints tokens (POST /api/admin/tokens), reads /api/rooms* and /metrics when auth is on. */
    adminKey: string | undefined;
    /** A token that only reads /metrics (for a Prometheus scraper), when auth is on. */
    metricsToken: string | undefined;
    /** The server pushes a refreshed token this long before the join's token expires (or at half its TTL when shorter). */
    refreshBeforeMs: number;
    /** Origins (scheme://host[:port]) whose pages may open signaling sockets; undefined = any. Sockets without an Origin header (workers, Node clients) are not browsers and pass. */
    allowedOrigins: string[] | undefined;
  };
  /** Upload limits of identity photos and training-clip uploads, per client IP and per owner (identity). */
  uploads: {
    /** uploads within one hour */
    maxPerHour: number;
    /** bytes uploaded within one hour */
    maxBytesPerHour: number;
    /** uploads within one minute (the rate) */
    maxPerMinute: number;
  };
  clientDir: string;
  /**
   * On SIGTERM the server drains (refuses joins with SHUTTING_DOWN, tells clients `server:shutdown`,
   * lets workers release their sessions, closes rooms) and exits within this bound.
   */
  shutdownTimeoutMs: number;
  /**
   * Within that bound, how long the draining server keeps its sockets open after telling the clients
   * (and releasing the avatar sessions) before it closes the rooms (SHUTDOWN_DRAIN_MS).
   */
  shutdownDrainMs: number;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function int(env: Env, key: string, def: number, min: number, max: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(`${key}=${raw} must be an integer in [${min}, ${max}]`);
  return v;
}

function oneOf<T extends number>(env: Env, key: string, allowed: readonly T[], def: T): T {
  const raw = env[key];
  if (raw === undefined || raw === '') return def;
  const v = allowed.find((a) => String(a) === raw.trim());
  if (v === undefined) throw new ConfigError(`${key}=${raw} must be one of ${allowed.join(', ')}`);
  return v;
}

function oneOfString<T extends string>(env: Env, key: string, allowed: readonly T[], def: T): T {
  const raw = str(env, key);
  if (raw === undefined) return def;
  const v = allowed.find((a) => a === raw);
  if (v === undefined) throw new ConfigError(`${key}=${raw} must be one of ${allowed.join(', ')}`);
  return v;
}

function str(env: Env, key: string): string | undefined {
  const raw = env[key];
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}

function bool(env: Env, key: string, def: boolean): boolean {
  const raw = str(env, key);
  if (raw === undefined) return def;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(`${key}=${raw} must be true or false`);
}

/** A credential: at least 32 characters (random 192 bits or more is the intent). */
function secret(env: Env, key: string): string | undefined {
  const raw = str(env, key);
  if (raw !== undefined && raw.length < 32) throw new ConfigError(`${key} must have at least 32 characters (e.g. openssl rand -base64 32)`);
  return raw;
}

/** A comma-separated list of origins (scheme://host[:port]); unset = undefined. */
function origins(env: Env, key: string): string[] | undefined {
  const raw = str(env, key);
  if (raw === undefined) return undefined;
  return raw.split(',').map((o) => o.trim()).filter(Boolean).map((o) => {
    let u: URL;
    try {
      u = new URL(o);
    } catch {
      throw new ConfigError(`${key}: "${o}" is not an origin (e.g. https://meet.example.com)`);
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.origin !== o.replace(/\/$/, '')) throw new ConfigError(`${key}: "${o}" is not an origin (scheme://host[:port], no path)`);
    return u.origin;
  });
}

/** Build the config from an environment (process.env by default); throws ConfigError on bad values. */
export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const httpsPortRaw = str(env, 'HTTPS_PORT');
  const minPort = str(env, 'RTC_MIN_PORT');
  const maxPort = str(env, 'RTC_MAX_PORT');
  let portRange: [number, number] | undefined;
  if (minPort !== undefined || maxPort !== undefined) {
    const lo = int(env, 'RTC_MIN_PORT', 40000, 1024, 65535);
    const hi = int(env, 'RTC_MAX_PORT', 49999, 1024, 65535);
    if (hi < lo) throw new ConfigError(`RTC_MAX_PORT (${hi}) < RTC_MIN_PORT (${lo})`);
    portRange = [lo, hi];
  }
  const logLevel = (str(env, 'LOG_LEVEL') ?? 'info') as Config['logLevel'];
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) throw new ConfigError(`LOG_LEVEL=${logLevel} is not a log level`);
  const config: Config = {
    host: str(env, 'HOST') ?? '0.0.0.0',
    httpPort: int(env, 'PORT', 3000, 0, 65535),
    httpsPort: httpsPortRaw === 'off' ? null : int(env, 'HTTPS_PORT', 3443, 0, 65535),
    tls: {
      certFile: path.resolve(PROJECT_ROOT, str(env, 'TLS_CERT') ?? 'certs/dev-cert.pem'),
      keyFile: path.resolve(PROJECT_ROOT, str(env, 'TLS_KEY') ?? 'certs/dev-key.pem'),
      generateIfMissing: (str(env, 'TLS_GENERATE') ?? 'true') !== 'false',
    },
    rtc: {
      listenIp: str(env, 'RTC_LISTEN_IP'),
      announcedIp: str(env, 'RTC_ANNOUNCED_IP'),
      portRange,
      socketBufferBytes: int(env, 'RTC_SOCKET_BUFFER_BYTES', 4 * 1024 * 1024, 0, 256 * 1024 * 1024),
      voiceAudioPtimeMs: oneOf(env, 'RTC_VOICE_PTIME_MS', [10, 20, 40, 60] as const, 10),
      iceConsentTimeoutMs: int(env, 'RTC_ICE_CONSENT_TIMEOUT_MS', 30_000, 0, 3_600_000),
      iceInactiveMs: int(env, 'RTC_ICE_INACTIVE_MS', 4000, 0, 3_600_000),
    },
    limits: {
      maxPeersPerRoom: int(env, 'MAX_PEERS_PER_ROOM', 16, 1, 1000),
      maxRooms: int(env, 'MAX_ROOMS', 100, 1, 100000),
      messagesPerSecond: int(env, 'SIGNALING_MSGS_PER_S', 50, 1, 100000),
      messageBurst: int(env, 'SIGNALING_BURST', 100, 1, 100000),
      abuseDisconnectThreshold: int(env, 'SIGNALING_ABUSE_DISCONNECT', 500, 1, 1000000),
      pacerBitrateBps: int(env, 'PACER_BITRATE_BPS', 50_000_000, 100_000, 10_000_000_000),
      pacerMaxQueuePackets: int(env, 'PACER_MAX_QUEUE', 2000, 10, 1_000_000),
      reconnectGraceMs: int(env, 'RECONNECT_GRACE_MS', 20_000, 0, 3_600_000),
    },
    activeSpeaker: {
      intervalMs: int(env, 'ACTIVE_SPEAKER_INTERVAL_MS', 300, 50, 10_000),
      thresholdDbov: int(env, 'ACTIVE_SPEAKER_THRESHOLD_DBOV', -60, -127, 0),
    },
    chat: {
      messagesPerSecond: int(env, 'CHAT_MSGS_PER_S', 2, 1, 1000),
      burst: int(env, 'CHAT_BURST', 8, 1, 10_000),
      historySize: int(env, 'CHAT_HISTORY', CHAT_DEFAULT_HISTORY, 0, 1000),
    },
    workers: {
      count: int(env, 'AVATAR_WORKERS', 2, 0, 64),
      token: str(env, 'AVATAR_WORKER_TOKEN') ?? randomBytes(24).toString('base64url'),
      tokenConfigured: str(env, 'AVATAR_WORKER_TOKEN') !== undefined,
      sessionsPerWorker: int(env, 'AVATAR_SESSIONS_PER_WORKER', 4, 1, 256),
      size: int(env, 'AVATAR_SIZE', 256, 64, 1024),
      fps: int(env, 'AVATAR_FPS', 25, 1, 60),
      maxPersonalViews: int(env, 'AVATAR_MAX_PERSONAL_VIEWS', 3, 0, 32),
      generator: oneOfString(env, 'AVATAR_GENERATOR', GENERATOR_KINDS, DEFAULT_GENERATOR),
      startTimeoutMs: int(env, 'AVATAR_START_TIMEOUT_MS', 15_000, 100, 600_000),
      maxRunnerRestarts: int(env, 'AVATAR_MAX_RUNNER_RESTARTS', 3, 1, 100),
      reconnectGraceMs: int(env, 'WORKER_RECONNECT_GRACE_MS', 10_000, 0, 600_000),
      voiceInput: oneOfString(env, 'AVATAR_VOICE_INPUT', ['tap', 'track'] as const, 'tap'),
    },
    avatar: {
      dataDir: path.resolve(PROJECT_ROOT, str(env, 'AVATAR_DATA_DIR') ?? 'data'),
      maxPhotoBytes: int(env, 'AVATAR_MAX_PHOTO_BYTES', 10 * 1024 * 1024, 1024, 200 * 1024 * 1024),
      maxPhotoPixels: int(env, 'AVATAR_MAX_PHOTO_PIXELS', 16_777_216, 4096, 100_000_000),
      enrollTimeoutMs: int(env, 'AVATAR_ENROLL_TIMEOUT_MS', 20_000, 100, 600_000),
      enrollQueueMax: int(env, 'AVATAR_ENROLL_QUEUE', 8, 0, 1000),
      identityCacheSize: int(env, 'AVATAR_IDENTITY_CACHE', 32, 0, 10_000),
      preloadEnrollWorker: bool(env, 'AVATAR_PRELOAD_ENROLL', false),
      identityMaxUnusedMs: int(env, 'AVATAR_IDENTITY_EXPIRE_DAYS', 30, 0, 36_500) * 86_400_000,
    },
    training: {
      concurrency: int(env, 'AVATAR_TRAINING_CONCURRENCY', 1, 1, 64),
      queueMax: int(env, 'AVATAR_TRAINING_QUEUE', 4, 0, 1000),
      timeLimitMs: int(env, 'AVATAR_TRAINING_TIME_LIMIT_S', 1200, 10, 86_400) * 1000,
      minutes: int(env, 'AVATAR_TRAINING_MINUTES', 10, 1, 120),
      iterations: env.AVATAR_TRAINING_ITERATIONS === undefined || env.AVATAR_TRAINING_ITERATIONS === '' ? undefined : int(env, 'AVATAR_TRAINING_ITERATIONS', 1, 1, 1_000_000),
      gaussians: env.AVATAR_TRAINING_GAUSSIANS === undefined || env.AVATAR_TRAINING_GAUSSIANS === '' ? undefined : int(env, 'AVATAR_TRAINING_GAUSSIANS', 12_000, 2_000, 200_000),
      size: oneOf(env, 'AVATAR_TRAINING_SIZE', [128, 256, 512] as const, 256),
      threads: int(env, 'AVATAR_TRAINING_THREADS', Math.min(2, os.availableParallelism()), 1, 64),
      nice: int(env, 'AVATAR_TRAINING_NICE', 19, 0, 19),
    },
    auth: {
      secret: secret(env, 'AUTH_SECRET'),
      adminKey: secret(env, 'AUTH_ADMIN_KEY'),
      metricsToken: secret(env, 'AUTH_METRICS_TOKEN'),
      refreshBeforeMs: int(env, 'AUTH_TOKEN_REFRESH_BEFORE_S', 120, 1, 86_400) * 1000,
      allowedOrigins: origins(env, 'ALLOWED_ORIGINS'),
    },
    uploads: {
      maxPerHour: int(env, 'UPLOAD_MAX_PER_HOUR', 30, 1, 1_000_000),
      maxBytesPerHour: int(env, 'UPLOAD_MAX_BYTES_PER_HOUR', 512 * 1024 * 1024, 1024, 1024 ** 4),
      maxPerMinute: int(env, 'UPLOAD_MAX_PER_MINUTE', 10, 1, 100_000),
    },
    clientDir: path.resolve(PROJECT_ROOT, str(env, 'CLIENT_DIR') ?? 'dist/client'),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 100, 600_000),
    shutdownDrainMs: int(env, 'SHUTDOWN_DRAIN_MS', 1000, 0, 600_000),
    logLevel,
  };
  return { ...config, ...overrides };
}
