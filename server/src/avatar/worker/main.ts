/** Entry point of an avatar worker process (started by WorkerSupervisor, or by hand on another host). */
import { ConfigError, loadWorkerConfig } from '../../config.ts';
import { configureLogger } from '../../logger.ts';
import { IdentityStore } from '../identity/IdentityStore.ts';
import { loadGeneratorFactory } from '../generator/registry.ts';
import { AvatarWorker } from './AvatarWorker.ts';
import { StreamingAudio2Motion } from '../../../../models/audio2motion/Audio2Motion.ts';

async function main(): Promise<void> {
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
  // The supervisor's IPC channel closing means the server is gone.
  process.on('disconnect', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`avatar worker fatal: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
