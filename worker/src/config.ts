/**
 * The avatar worker's settings: the one place in the worker package that reads process.env.
 * Every variable is documented in worker/README.md. Bad values stop the worker with a clear message.
 */
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { GENERATOR_KINDS, isGeneratorKind, type GeneratorKind } from '../../protocol/src/generators.ts';

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface WorkerConfig {
  /** Server the worker connects to (signaling and the asset API), e.g. http://127.0.0.1:3000 or https://sfu.example:3443 */
  serverUrl: string;
  /** The server's worker token: socket.io handshake and `Authorization: Bearer` on asset fetches. */
  token: string;
  workerId: string;
  /** Avatar sessions this worker renders at once (all generators together). */
  capacity: number;
  /**
   * Its control socket to the server dropped: the runners go on this long (they have their own
   * connections) and are reported when it re-registers; then they stop (WORKER_RECONNECT_GRACE_MS).
   */
  reconnectGraceMs: number;
  /** Generators this worker runs and registers (default: every kind in worker/src/generator/registry.ts). */
  generators: GeneratorKind[];
  /** Whether this host has a GPU for generators that need one (none of today's do). */
  gpu: boolean;
  /** Local cache of fetched identity assets, keyed by content hash. */
  cache: { dir: string; maxBytes: number };
  logLevel: LogLevel;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function str(env: Env, key: string): string | undefined {
  const raw = env[key];
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}

function int(env: Env, key: string, def: number, min: number, max: number): number {
  const raw = str(env, key);
  if (raw === undefined) return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(`${key}=${raw} must be an integer in [${min}, ${max}]`);
  return v;
}

function bool(env: Env, key: string, def: boolean): boolean {
  const raw = str(env, key);
  if (raw === undefined) return def;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(`${key}=${raw} must be true or false`);
}

function generatorKind(key: string, raw: string): GeneratorKind {
  if (!isGeneratorKind(raw)) throw new ConfigError(`${key}=${raw} must be one of ${GENERATOR_KINDS.join(', ')}`);
  return raw;
}

export function loadWorkerConfig(env: Env = process.env): WorkerConfig {
  const serverUrl = str(env, 'AVATAR_WORKER_SERVER_URL');
  const token = str(env, 'AVATAR_WORKER_TOKEN');
  if (!serverUrl) throw new ConfigError('AVATAR_WORKER_SERVER_URL is required (e.g. http://127.0.0.1:3000)');
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch {
    throw new ConfigError(`AVATAR_WORKER_SERVER_URL=${serverUrl} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`AVATAR_WORKER_SERVER_URL=${serverUrl} must be http:// or https://`);
  if (!token) throw new ConfigError('AVATAR_WORKER_TOKEN is required (the server\'s worker token)');
  // The server's preferred generator: a worker started from the same environment refuses a typo too.
  const preferred = str(env, 'AVATAR_GENERATOR');
  if (preferred !== undefined) generatorKind('AVATAR_GENERATOR', preferred);
  const list = str(env, 'AVATAR_WORKER_GENERATORS');
  const generators = list === undefined ? [...GENERATOR_KINDS] : [...new Set(list.split(',').map((k) => generatorKind('AVATAR_WORKER_GENERATORS', k.trim())))];
  if (generators.length === 0) throw new ConfigError('AVATAR_WORKER_GENERATORS names no generator');
  const logLevel = (str(env, 'LOG_LEVEL') ?? 'info') as LogLevel;
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) throw new ConfigError(`LOG_LEVEL=${logLevel} is not a log level`);
  return {
    serverUrl: serverUrl.replace(/\/+$/, ''),
    token,
    workerId: str(env, 'AVATAR_WORKER_ID') ?? `w-${os.hostname().replace(/[^A-Za-z0-9_-]/g, '').slice(0, 24)}-${randomBytes(3).toString('hex')}`,
    capacity: int(env, 'AVATAR_SESSIONS_PER_WORKER', 4, 1, 256),
    reconnectGraceMs: int(env, 'WORKER_RECONNECT_GRACE_MS', 10_000, 0, 600_000),
    generators,
    gpu: bool(env, 'AVATAR_WORKER_GPU', false),
    cache: {
      dir: path.resolve(PACKAGE_ROOT, str(env, 'AVATAR_WORKER_CACHE_DIR') ?? '.cache/assets'),
      maxBytes: int(env, 'AVATAR_WORKER_CACHE_MB', 512, 1, 1_000_000) * 1024 * 1024,
    },
    logLevel,
  };
}
