/** Messages between an avatar session and its render thread (structured clone; frame buffers are transferred). */
import type { AvatarMotion, GeneratorCapabilities, GeneratorSource, PixelFormat, ViewOffset } from '../generator/generator.ts';
import type { GeneratorModule } from '../generator/registry.ts';

export type ToRenderThread =
  /** import the generator's module now (a booted spare thread: see RenderThreadPool.ts) */
  | { type: 'load'; generator: GeneratorModule }
  | { type: 'init'; generator: GeneratorModule; source: GeneratorSource }
  /** `reuse[i]`: view i's previous buffers, handed back for the thread to render into */
  | { type: 'render'; id: number; motion: AvatarMotion; views: ViewOffset[]; size: number; format: PixelFormat; reuse: ({ i420?: Uint8Array; rgba?: Uint8ClampedArray } | undefined)[] }
  | { type: 'close' };

export interface ThreadFrame {
  width: number;
  height: number;
  i420?: Uint8Array;
  rgba?: Uint8ClampedArray;
  renderMs: number;
}

export type FromRenderThread =
  | { type: 'loaded' }
  | { type: 'ready'; capabilities: GeneratorCapabilities; batch: boolean }
  | { type: 'frames'; id: number; frames: ThreadFrame[]; batchMs: number }
  | { type: 'error'; id: number | null; message: string };
