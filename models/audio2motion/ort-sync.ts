/**
 * Synchronous onnxruntime-node sessions (Node only).
 *
 * onnxruntime-node's public `InferenceSession.run` returns a Promise but only wraps the native
 * binding's synchronous `run` in `setImmediate`. Streaming audio wants a synchronous call per 10 ms
 * (no event-loop hop, no reordering), so this module uses the native binding directly
 * (`onnxruntime-node/dist/binding.js`, present in 1.x; checked at load time) with the public
 * `Tensor` class. Tensors in and out are ordinary onnxruntime-common tensors.
 */
import { createRequire } from 'node:module';
import ort from 'onnxruntime-node';

const require = createRequire(import.meta.url);

interface NativeSession {
  loadModel(path: string, options: object): void;
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  readonly inputMetadata: Array<{ name: string }>;
  readonly outputMetadata: Array<{ name: string }>;
  run(feeds: Record<string, ort.Tensor>, fetches: Record<string, null>, options: object): Record<string, ort.Tensor>;
  dispose(): void;
}

interface BindingModule {
  binding: { InferenceSession: new () => NativeSession };
  initOrt: () => void;
}

let mod: BindingModule | null = null;
function binding(): BindingModule {
  if (mod) return mod;
  const m = require('onnxruntime-node/dist/binding.js') as BindingModule;
  if (typeof m?.initOrt !== 'function' || typeof m?.binding?.InferenceSession !== 'function') {
    throw new Error('onnxruntime-node: native binding not found (dist/binding.js layout changed)');
  }
  m.initOrt();
  mod = m;
  return m;
}

export const SINGLE_THREAD_OPTIONS = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  enableCpuMemArena: true,
  enableMemPattern: true,
  executionProviders: ['cpu'],
} as const;

export class SyncSession {
  readonly inputNames: string[];
  readonly outputNames: string[];
  private s: NativeSession | null;
  private readonly fetches: Record<string, null>;

  constructor(model: string | Uint8Array, options: object = SINGLE_THREAD_OPTIONS) {
    const b = binding();
    const s = new b.binding.InferenceSession();
    if (typeof model === 'string') s.loadModel(model, options);
    else s.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, options);
    this.s = s;
    this.inputNames = s.inputMetadata.map((m) => m.name);
    this.outputNames = s.outputMetadata.map((m) => m.name);
    this.fetches = Object.fromEntries(this.outputNames.map((n) => [n, null]));
  }

  run(feeds: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
    if (!this.s) throw new Error('session closed');
    return this.s.run(feeds, this.fetches, {});
  }

  close(): void {
    this.s?.dispose();
    this.s = null;
  }
}

export { ort };
