import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
/** Starts a real avatar-sfu server on loopback with an ephemeral port, for tests and benchmarks. */
import { loadConfig, type Config } from '../../server/src/config.ts';
import { configureLogger } from '../../server/src/logger.ts';
import { createAvatarServer, type AvatarServer } from '../../server/src/server.ts';

/**
 * Avatar workers are off unless `env.AVATAR_WORKERS` says otherwise; identities go to a fresh temp dir
 * unless `env.AVATAR_DATA_DIR` is given.
 */
export async function startTestServer(overrides: Partial<Config> = {}, env: Record<string, string> = {}): Promise<AvatarServer> {
  const dataDir = env['AVATAR_DATA_DIR'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-data-'));
  const base = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    HTTPS_PORT: 'off',
    RTC_LISTEN_IP: '127.0.0.1',
    RTC_ANNOUNCED_IP: '127.0.0.1',
    LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'warn',
    AVATAR_WORKERS: '0',
    AVATAR_DATA_DIR: dataDir,
    // A dropped socket leaves at once unless a test asks for a reconnect grace period (reconnect tests do).
    RECONNECT_GRACE_MS: '0',
    ...env,
  });
  const config = { ...base, ...overrides };
  const logger = configureLogger(config.logLevel);
  return createAvatarServer(config, logger);
}
