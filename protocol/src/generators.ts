/**
 * The vocabulary the server and avatar workers share about renderers: which generator kinds exist,
 * which per-identity asset each one is initialised from, and how a worker describes what it can
 * render (`worker:register`). The server places a session from these alone (identity → the assets
 * it has → the generators that render them → a worker that registered one); the generators
 * themselves live in the worker package (worker/src/generator/registry.ts implements every kind).
 */
import { z } from 'zod';

/**
 * Asset kinds an identity can carry. `enrolled-photo`: identity.bin, the photo enrollment's result
 * (models/face/enrolledIdentity.ts); `gaussian-head`: the AVGS file `npm run train -- gaussian`
 * writes (models/gaussian/headAsset.ts).
 */
export const ASSET_KINDS = ['enrolled-photo', 'gaussian-head'] as const;
export type AssetKind = (typeof ASSET_KINDS)[number];

/** Every generator kind, and the asset it is initialised from. */
export const GENERATOR_ASSET = {
  /** The embedded one-shot mesh warper of the enrolled photo (CPU, no downloaded weights). */
  mesh: 'enrolled-photo',
  /** The per-identity 3D Gaussian head (models/gaussian). */
  gaussian: 'gaussian-head',
} as const satisfies Record<string, AssetKind>;
export type GeneratorKind = keyof typeof GENERATOR_ASSET;

export const GENERATOR_KINDS: readonly GeneratorKind[] = Object.freeze(Object.keys(GENERATOR_ASSET) as GeneratorKind[]);
export const DEFAULT_GENERATOR: GeneratorKind = 'mesh';

export function isGeneratorKind(kind: unknown): kind is GeneratorKind {
  return typeof kind === 'string' && Object.hasOwn(GENERATOR_ASSET, kind);
}

/** A generator kind on the wire (e.g. the generator a join asks for). */
export const generatorKindSchema = z.enum(Object.keys(GENERATOR_ASSET) as [GeneratorKind, ...GeneratorKind[]]);

export const assetKindSchema = z.enum(ASSET_KINDS);

/** One asset of an identity, as the server lists it to workers (content-addressed). */
/** (Each asset file carries its own format version in its header.) */
export const identityAssetSchema = z.object({
  kind: assetKindSchema,
  /** lowercase hex SHA-256 of the bytes: the worker's cache key and integrity check */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
}).strict();
export type IdentityAsset = z.infer<typeof identityAssetSchema>;

/** GET /api/worker/identities/:id/assets (worker token). */
export const identityAssetsResponseSchema = z.object({ identityId: z.string(), assets: z.array(identityAssetSchema).max(16) }).strict();
export type IdentityAssetsResponse = z.infer<typeof identityAssetsResponseSchema>;

/**
 * What a worker registers per generator it runs: sessions of that kind it takes at once, what one
 * frame costs it (ms of one core or GPU, for placement), whether it renders on a GPU, the sizes it
 * renders and its free-view limits (degrees).
 */
export const generatorOfferSchema = z.object({
  kind: z.string().max(32),
  sessions: z.number().int().min(1).max(1000),
  frameCostMs: z.number().nonnegative().max(10_000),
  gpu: z.boolean(),
  sizes: z.array(z.number().int().min(16).max(4096)).max(16),
  maxViewDeg: z.object({ yaw: z.number().min(0).max(180), pitch: z.number().min(0).max(90), roll: z.number().min(0).max(180) }).strict(),
}).strict();
export type GeneratorOffer = z.infer<typeof generatorOfferSchema>;
