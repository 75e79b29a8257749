/**
 * Entry point of the avatar worker package: `node --import tsx worker/src/main.ts` (started by the
 * server's WorkerSupervisor for local workers, or by hand on another host: see worker/README.md).
 */

/**
 * Started by the WorkerSupervisor, the worker has an IPC channel to the server; the channel closing
 * means the server is gone, even when it was SIGKILLed. Watched before anything else, and checked for
 * having closed already, so a server that dies while its worker starts up does not leave the worker
 * running (it would retry connecting forever). The heavy modules (wrtc, onnxruntime, the renderer) are
 * imported dynamically below, after the watch: static imports would load and run for seconds before
 * this module's first line, with nothing able to notice the server's end meanwhile.
 */
let onServerGone: () => void = () => process.exit(0);
if (typeof process.send === 'function') {
  if (!process.connected) process.exit(0);
  process.on('disconnect', () => onServerGone());
}

/** Exit status when the server refuses the worker token (restarting would not help). */
const EXIT_CREDENTIAL_REFUSED = 3;

async function main(): Promise<void> {
  const { ConfigError, loadWorkerConfig } = await import('./config.ts');
  const { createLogger } = await import('./logger.ts');
  let config;
  try {
    config = loadWorkerConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`avatar worker: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel).child({ workerId: config.workerId });
  const { AssetCache } = await import('./assets/AssetCache.ts');
  const { AssetClient, AssetFetchError } = await import('./assets/AssetClient.ts');
  const { generatorOffers } = await import('./generatorOffers.ts');
  const { AvatarWorker } = await import('./AvatarWorker.ts');
  const { StreamingAudio2Motion } = await import('../../models/audio2motion/Audio2Motion.ts');
  const cache = await AssetCache.create({ dir: config.cache.dir, maxBytes: config.cache.maxBytes, logger });
  const assets = new AssetClient({ serverUrl: config.serverUrl, token: config.token, cache, logger });
  const generators = await generatorOffers(config);
  if (generators.length === 0) {
    process.stderr.write(`avatar worker: none of the generators ${config.generators.join(', ')} can run here (AVATAR_WORKER_GPU=${config.gpu})\n`);
    process.exit(2);
  }
  const worker = await AvatarWorker.start({
    serverUrl: config.serverUrl,
    token: config.token,
    workerId: config.workerId,
    capacity: config.capacity,
    reconnectGraceMs: config.reconnectGraceMs,
    generators,
    assets,
    createAudioModel: () => StreamingAudio2Motion.create(),
    logger,
  });
  logger.info({ serverUrl: config.serverUrl, generators: generators.map((g) => `${g.kind}×${g.sessions}`), cacheDir: config.cache.dir }, 'avatar worker started');
  // Stops every session (each runner leaves its room) and exits; bounded, whatever hangs.
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ sessions: worker.sessions.size }, 'avatar worker stopping');
    worker.close();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  onServerGone = stop;
  if (typeof process.send === 'function' && !process.connected) stop();
  // A wrong token is reported at once and ends the worker; an unreachable server is retried by the
  // signaling connection (the server may just be starting).
  assets.checkCredential().catch((err: unknown) => {
    if (err instanceof AssetFetchError && err.credentialRefused) {
      logger.fatal({ status: err.status, code: err.code }, err.message);
      process.stderr.write(`avatar worker: ${err.message}\n`);
      process.exitCode = EXIT_CREDENTIAL_REFUSED;
      worker.close();
      setTimeout(() => process.exit(EXIT_CREDENTIAL_REFUSED), 100);
    } else {
      logger.warn({ err: (err as Error)?.message }, 'could not check the worker token yet');
    }
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`avatar worker fatal: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
