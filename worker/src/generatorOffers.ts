/**
 * What this worker registers per generator (protocol `worker:register`): from the generator's own
 * capabilities, the host (GPU or not) and the worker's capacity. A generator that needs a GPU is not
 * offered on a host without one; a costly one takes fewer sessions (its frames must fit in one core
 * at the nominal frame rate).
 */
import type { GeneratorOffer } from '../../protocol/src/generators.ts';
import { generatorModule, loadGeneratorFactory } from './generator/registry.ts';
import type { WorkerConfig } from './config.ts';

/** Frame rate the per-generator session limit is sized for (AVATAR_FPS default). */
const NOMINAL_FPS = 25;
const DEG = 180 / Math.PI;

export async function generatorOffers(config: Pick<WorkerConfig, 'generators' | 'gpu' | 'capacity'>): Promise<GeneratorOffer[]> {
  const offers: GeneratorOffer[] = [];
  for (const kind of config.generators) {
    const module = generatorModule(kind);
    if (module.needsGpu && !config.gpu) continue;
    // a fresh instance only describes itself; it is initialised in a render thread per session
    const caps = (await loadGeneratorFactory(module))().capabilities;
    const perCore = caps.frameCostMs > 0 ? Math.floor(1000 / (caps.frameCostMs * NOMINAL_FPS)) : config.capacity;
    offers.push({
      kind,
      sessions: Math.max(1, Math.min(config.capacity, perCore)),
      frameCostMs: caps.frameCostMs,
      gpu: module.needsGpu,
      sizes: [...caps.sizes],
      maxViewDeg: { yaw: caps.maxViewOffset.yaw * DEG, pitch: caps.maxViewOffset.pitch * DEG, roll: caps.maxViewOffset.roll * DEG },
    });
  }
  return offers;
}
