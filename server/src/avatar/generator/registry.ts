/**
 * The avatar generators that exist: the one list configuration is validated against, what a worker
 * advertises, and the factory it builds its generators with. Adding a kind: one entry in
 * {@link GENERATOR_MODULES} (the key is the `AVATAR_GENERATOR` value). Modules are imported only when
 * a worker uses that kind, so validating the configuration loads no renderer.
 */
import type { AvatarGenerator } from './generator.ts';

export type GeneratorFactory = () => AvatarGenerator;

const GENERATOR_MODULES = {
  /** The embedded one-shot mesh warper (CPU, no downloaded weights). */
  mesh: async (): Promise<GeneratorFactory> => {
    const { MeshAvatarGenerator } = await import('./mesh-generator.ts');
    return () => new MeshAvatarGenerator();
  },
} as const satisfies Record<string, () => Promise<GeneratorFactory>>;

export type GeneratorKind = keyof typeof GENERATOR_MODULES;

/** Every generator kind a worker can run; `AVATAR_GENERATOR` must be one of them. */
export const GENERATOR_KINDS: readonly GeneratorKind[] = Object.freeze(Object.keys(GENERATOR_MODULES) as GeneratorKind[]);

export const DEFAULT_GENERATOR: GeneratorKind = 'mesh';

export function isGeneratorKind(kind: string): kind is GeneratorKind {
  return Object.hasOwn(GENERATOR_MODULES, kind);
}

/** The factory of `kind` (imports its module); TypeError for a kind that does not exist. */
export async function loadGeneratorFactory(kind: string): Promise<GeneratorFactory> {
  if (!isGeneratorKind(kind)) throw new TypeError(`unknown avatar generator "${kind}" (available: ${GENERATOR_KINDS.join(', ')})`);
  return GENERATOR_MODULES[kind]();
}
