/**
 * The avatar generators this worker package implements: one entry per kind of
 * protocol/src/generators.ts (the shared list the server places sessions by; the `satisfies` below
 * fails the typecheck when a kind has no implementation). Each entry names the module and export a
 * render thread loads (worker/src/render/renderThreadMain.ts), so choosing or validating a kind loads no
 * renderer on the worker's event loop.
 */
import { GENERATOR_KINDS, isGeneratorKind, type GeneratorKind } from '../../../protocol/src/generators.ts';
import type { AvatarGenerator } from './generator.ts';

export type GeneratorFactory = () => AvatarGenerator;

/** Where a render thread finds a generator: `new (await import(module))[exportName]()`. */
export interface GeneratorModule {
  /** file: URL of the module */
  module: string;
  exportName: string;
  /** whether it only runs on a GPU host (AVATAR_WORKER_GPU) */
  needsGpu: boolean;
}

const GENERATOR_MODULES = {
  /** The embedded one-shot mesh warper (CPU, no downloaded weights). */
  mesh: { module: new URL('./mesh-generator.ts', import.meta.url).href, exportName: 'MeshAvatarGenerator', needsGpu: false },
  /** The per-identity 3D Gaussian head (CPU splatting), from the identity's gaussian-head asset. */
  gaussian: { module: new URL('./gaussian-generator.ts', import.meta.url).href, exportName: 'GaussianAvatarGenerator', needsGpu: false },
} as const satisfies Record<GeneratorKind, GeneratorModule>;

export type { GeneratorKind };
export { GENERATOR_KINDS, isGeneratorKind };
export { DEFAULT_GENERATOR } from '../../../protocol/src/generators.ts';

/** The module of `kind`; TypeError for a kind that does not exist. */
export function generatorModule(kind: string): GeneratorModule {
  if (!isGeneratorKind(kind)) throw new TypeError(`unknown avatar generator "${kind}" (available: ${GENERATOR_KINDS.join(', ')})`);
  return GENERATOR_MODULES[kind];
}

/** Imports a generator module and returns its factory (in whatever thread calls it). */
export async function loadGeneratorFactory(source: string | GeneratorModule): Promise<GeneratorFactory> {
  const m = typeof source === 'string' ? generatorModule(source) : source;
  const mod = (await import(m.module)) as Record<string, unknown>;
  const Ctor = mod[m.exportName] as (new () => AvatarGenerator) | undefined;
  if (typeof Ctor !== 'function') throw new TypeError(`${m.module} has no generator export "${m.exportName}"`);
  return () => new Ctor();
}
