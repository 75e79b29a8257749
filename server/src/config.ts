/**
 * The one place that reads process.env. Everything else receives a typed {@link Config}.
 * Every variable is documented in README.md ("Configuration").
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
  };
  clientDir: string;
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

function str(env: Env, key: string): string | undefined {
  const raw = env[key];
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
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
    },
    limits: {
      maxPeersPerRoom: int(env, 'MAX_PEERS_PER_ROOM', 16, 1, 1000),
      maxRooms: int(env, 'MAX_ROOMS', 100, 1, 100000),
      messagesPerSecond: int(env, 'SIGNALING_MSGS_PER_S', 50, 1, 100000),
      messageBurst: int(env, 'SIGNALING_BURST', 100, 1, 100000),
      abuseDisconnectThreshold: int(env, 'SIGNALING_ABUSE_DISCONNECT', 500, 1, 1000000),
      pacerBitrateBps: int(env, 'PACER_BITRATE_BPS', 50_000_000, 100_000, 10_000_000_000),
      pacerMaxQueuePackets: int(env, 'PACER_MAX_QUEUE', 2000, 10, 1_000_000),
    },
    clientDir: path.resolve(PROJECT_ROOT, str(env, 'CLIENT_DIR') ?? 'dist/client'),
    logLevel,
  };
  return { ...config, ...overrides };
}
