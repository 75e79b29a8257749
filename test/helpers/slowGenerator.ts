/**
 * A test double of an avatar generator that takes `SLOW_FRAME_MS` (200 ms) of CPU per frame (busy
 * wait, like a heavy renderer) and draws a flat grey picture. Loaded by a render thread through its
 * module URL (worker/src/generator/registry.ts GeneratorModule).
 */
import { NO_VIEW_OFFSET, type AvatarGenerator, type AvatarMotion, type GeneratorCapabilities, type GeneratorSource, type RenderOptions, type RenderedFrame, type ViewOffset } from '../../worker/src/generator/generator.ts';
import type { GeneratorModule } from '../../worker/src/generator/registry.ts';

export const SLOW_FRAME_MS = 200;

export const SLOW_GENERATOR_MODULE: GeneratorModule = { module: import.meta.url, exportName: 'SlowAvatarGenerator', needsGpu: false };

export class SlowAvatarGenerator implements AvatarGenerator {
  readonly kind = 'slow';
  readonly capabilities: GeneratorCapabilities = {
    kind: 'test-double',
    sizes: [256],
    formats: ['i420'],
    maxViewOffset: { yaw: 0.5, pitch: 0.3, roll: 0.3 },
    realtimeCpu: false,
    requiredWeights: [],
    expressionSize: 12,
    frameCostMs: SLOW_FRAME_MS,
  };

  async initialize(_source: GeneratorSource): Promise<void> {}

  render(_motion: AvatarMotion, _view: ViewOffset = NO_VIEW_OFFSET, out: RenderOptions = {}): RenderedFrame {
    const t0 = performance.now();
    while (performance.now() - t0 < SLOW_FRAME_MS) {
      // a frame's worth of work
    }
    const size = out.size ?? 256;
    const need = size * size * 1.5;
    const i420 = out.reuse?.i420 && out.reuse.i420.length === need ? out.reuse.i420 : new Uint8Array(need);
    i420.fill(128);
    return { width: size, height: size, i420, renderMs: performance.now() - t0 };
  }

  close(): void {}
}

/** The pixel-cost double's time per frame at 256² (twice the 40 ms interval of 25 fps). */
export const PIXEL_COST_MS_AT_256 = 80;

export const PIXEL_COST_GENERATOR_MODULE: GeneratorModule = { module: import.meta.url, exportName: 'PixelCostAvatarGenerator', needsGpu: false };

/**
 * A test double whose CPU time per frame is proportional to its pixels, like a rasterizer:
 * {@link PIXEL_COST_MS_AT_256} ms at 256², 45 ms at 192², 20 ms at 128². It cannot hold 25 fps at
 * 256² or 192², and can at 128².
 */
export class PixelCostAvatarGenerator extends SlowAvatarGenerator {
  override render(_motion: AvatarMotion, _view: ViewOffset = NO_VIEW_OFFSET, out: RenderOptions = {}): RenderedFrame {
    const t0 = performance.now();
    const size = out.size ?? 256;
    const cost = PIXEL_COST_MS_AT_256 * (size / 256) ** 2;
    while (performance.now() - t0 < cost) {
      // a frame's worth of work
    }
    const need = size * size * 1.5;
    const i420 = out.reuse?.i420 && out.reuse.i420.length === need ? out.reuse.i420 : new Uint8Array(need);
    i420.fill(128);
    return { width: size, height: size, i420, renderMs: performance.now() - t0 };
  }
}

export const CHEAP_GENERATOR_MODULE: GeneratorModule = { module: import.meta.url, exportName: 'CheapAvatarGenerator', needsGpu: false };

/** A test double that draws a flat grey picture at once (a renderer far below any frame interval). */
export class CheapAvatarGenerator extends SlowAvatarGenerator {
  override render(_motion: AvatarMotion, _view: ViewOffset = NO_VIEW_OFFSET, out: RenderOptions = {}): RenderedFrame {
    const t0 = performance.now();
    const size = out.size ?? 256;
    const need = size * size * 1.5;
    const i420 = out.reuse?.i420 && out.reuse.i420.length === need ? out.reuse.i420 : new Uint8Array(need);
    i420.fill(128);
    return { width: size, height: size, i420, renderMs: performance.now() - t0 };
  }
}
