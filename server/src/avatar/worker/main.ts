/** Entry point of an avatar worker process (started by WorkerSupervisor, or by hand on another host). */

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

async function main(): Promise<void> {
  const { ConfigError, loadWorkerConfig } = await import('../../config.ts');
  const { configureLogger } = await import('../../logger.ts');
  const { IdentityStore } = await import('../identity/IdentityStore.ts');
  const { loadGeneratorFactory } = await import('../generator/registry.ts');
  const { AvatarWorker } = await import('./AvatarWorker.ts');
  const { StreamingAudio2Motion } = await import('../../../../models/audio2motion/Audio2Motion.ts');
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
  const logger = configureLogger(config.logLevel).child({ workerId: config.workerId });
  const identities = await IdentityStore.create({ dataDir: config.dataDir, logger });
  const createGenerator = await loadGeneratorFactory(config.generator);
  const worker = await AvatarWorker.start({
    serverUrl: config.serverUrl,
    token: config.token,
    workerId: config.workerId,
    capacity: config.capacity,
    // What this worker renders: the configured kind (the server assigns sessions by it).
    generators: [config.generator],
    identities,
    createGenerator,
    createAudioModel: () => StreamingAudio2Motion.create(),
    logger,
  });
  const stop = (): void => {
    worker.close();
    identities.close();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  onServerGone = stop;
  if (typeof process.send === 'function' && !process.connected) stop();
}

main().catch((err: unknown) => {
  process.stderr.write(`avatar worker fatal: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
