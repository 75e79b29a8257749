/** Entry point: `npm start`. */
import { loadConfig, ConfigError } from './config.ts';
import { configureLogger } from './logger.ts';
import { createAvatarServer } from './server.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = configureLogger(config.logLevel);
  const server = await createAvatarServer(config, logger);
  logger.info({ httpUrl: server.httpUrl, httpsUrl: server.httpsUrl }, 'avatar-sfu listening');
  process.stdout.write(`\n  avatar-sfu is running:\n    ${server.httpUrl}   (this machine)\n${server.httpsUrl ? `    ${server.httpsUrl}  (other devices on your LAN; accept the development certificate)\n` : ''}\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down: draining');
    const startedAt = performance.now();
    server.shutdown(signal === 'SIGTERM' ? 'server restarting' : 'server stopping').then(
      () => {
        logger.info({ ms: Math.round(performance.now() - startedAt) }, 'shut down');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
    setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
}

main().catch((err: unknown) => {
  process.stderr.write(`fatal: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
