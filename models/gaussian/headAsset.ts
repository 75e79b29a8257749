/**
 * The Gaussian head's asset: one AVGS container (asset.ts) of kind `gaussian-head`.
 *
 * Tensors (N Gaussians, S = baseSize):
 *   sourceLandmarks f32 [478, 3]   the scaffold's source frame (crop px at S, pixel-unit z)
 *   tri             u16 [N]         triangle of each Gaussian (checked against the scaffold)
 *   bary, offset, logScale, quat, opacity, color   q16 [N, k]
 *   dPos, dColor    q8  [N, 36]     expression deltas (12 coefficients × xyz / rgb)
 *   background      q8  [S², 3]
 *   detailMean      f32 [1434, 1]   clip-specific detail basis (detail.ts): mean correction of the rig
 *   detailComps     f32 [k, 1434]   and its k PCA components (absent when k = 0)
 * Metadata (validated with zod): format version of this layout, baseSize, count, the code version
 * that wrote it, and what training recorded (clip hash, frame ranges, iterations, seconds,
 * held-out scores, seed).
 */
import { z } from 'zod';
import { decodeAsset, encodeAsset, AssetFormatError, type AssetTensorInput } from './asset.ts';
import { readAssetFile, writeAssetFile } from './assetFile.ts';
import { allocParams, E, PARAM_LAYOUT, PARAM_NAMES, type ParamName } from './gaussians.ts';
import { GaussianHead } from './head.ts';

export const HEAD_ASSET_KIND = 'gaussian-head';
/** bump when the scaffold, the parameterisation or the tensor set changes meaning */
export const HEAD_FORMAT = 1;
export const HEAD_CODE_VERSION = 'gaussian-head/1';

const QUANT: Record<ParamName, 'q16' | 'q8'> = { offset: 'q16', logScale: 'q16', quat: 'q16', opacity: 'q16', color: 'q16', dPos: 'q8', dColor: 'q8' };

export const HeadTrainingInfo = z.object({
  clipSha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  clipName: z.string().max(500).optional(),
  trainRange: z.tuple([z.number(), z.number()]).optional(),
  testRange: z.tuple([z.number(), z.number()]).nullable().optional(),
  trainFrames: z.number().int().nonnegative().optional(),
  heldOutFrames: z.number().int().nonnegative().optional(),
  iterations: z.number().int().nonnegative(),
  /** iteration of the saved snapshot (best on the validation frames) */
  bestIteration: z.number().int().nonnegative().optional(),
  trainSeconds: z.number().nonnegative(),
  threads: z.number().int().positive().optional(),
  seed: z.number().int().optional(),
  heldOut: z.object({ psnr: z.number().nullable(), ssim: z.number().nullable().optional(), facePsnr: z.number().nullable().optional() }).optional(),
  createdAt: z.string().optional(),
}).strict();
export type HeadTrainingInfo = z.infer<typeof HeadTrainingInfo>;

const HeadMetadata = z.object({
  format: z.literal(HEAD_FORMAT),
  codeVersion: z.string(),
  baseSize: z.number().int().min(64).max(1024).refine((v) => v % 16 === 0, 'baseSize must be a multiple of 16'),
  count: z.number().int().positive().max(1_000_000),
  detailSize: z.number().int().min(0).max(16),
  expressionSize: z.literal(E),
  training: HeadTrainingInfo,
}).strict();
export type HeadMetadata = z.infer<typeof HeadMetadata>;

export function encodeHeadAsset(head: GaussianHead, training: HeadTrainingInfo): Uint8Array {
  const N = head.count, S = head.baseSize;
  const meta: HeadMetadata = { format: HEAD_FORMAT, codeVersion: HEAD_CODE_VERSION, baseSize: S, count: N, detailSize: head.detail.k, expressionSize: E, training: HeadTrainingInfo.parse(training) };
  const tensors: AssetTensorInput[] = [
    { name: 'sourceLandmarks', shape: [478, 3], data: head.scaffold.source, quant: 'f32' },
    { name: 'tri', shape: [N], data: Uint16Array.from(head.params.tri), quant: 'u16' },
    { name: 'bary', shape: [N, 3], data: head.params.bary, quant: 'q16' },
    ...PARAM_NAMES.map((k): AssetTensorInput => ({ name: k, shape: [N, PARAM_LAYOUT[k]], data: head.params.p[k], quant: QUANT[k] })),
    { name: 'background', shape: [S * S, 3], data: head.background, quant: 'q8' },
    { name: 'detailMean', shape: [478 * 3, 1], data: head.detail.mean, quant: 'f32' },
    ...(head.detail.k > 0 ? [{ name: 'detailComps', shape: [head.detail.k, 478 * 3], data: head.detail.comps, quant: 'f32' as const }] : []),
  ];
  return encodeAsset(HEAD_ASSET_KIND, meta as unknown as Record<string, unknown>, tensors);
}

/** Decode and validate a head asset; throws AssetFormatError (never returns a partial model). */
export function decodeHeadAsset(bytes: Uint8Array): { head: GaussianHead; metadata: HeadMetadata } {
  const contents = decodeAsset(bytes, { kind: HEAD_ASSET_KIND });
  return headFromContents(contents);
}

export async function readHeadAsset(file: string): Promise<{ head: GaussianHead; metadata: HeadMetadata }> {
  return headFromContents(await readAssetFile(file, { kind: HEAD_ASSET_KIND }));
}

export async function writeHeadAsset(file: string, head: GaussianHead, training: HeadTrainingInfo): Promise<number> {
  const bytes = encodeHeadAsset(head, training);
  await writeAssetFile(file, bytes);
  return bytes.length;
}

function headFromContents(contents: ReturnType<typeof decodeAsset>): { head: GaussianHead; metadata: HeadMetadata } {
  const parsed = HeadMetadata.safeParse(contents.metadata);
  if (!parsed.success) {
    const f = contents.metadata['format'];
    if (typeof f === 'number' && f !== HEAD_FORMAT) throw new AssetFormatError('UNSUPPORTED_VERSION', `gaussian-head format ${f}; this build reads format ${HEAD_FORMAT}`);
    throw new AssetFormatError('BAD_LAYOUT', `gaussian-head metadata: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const meta = parsed.data;
  const N = meta.count, S = meta.baseSize;
  const get = (name: string, shape: number[]): Float32Array | Uint16Array => {
    const t = contents.tensors.get(name);
    if (!t) throw new AssetFormatError('MISSING_TENSOR', `gaussian-head: tensor ${name} missing`);
    if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) throw new AssetFormatError('BAD_LAYOUT', `gaussian-head: tensor ${name} has shape [${t.shape}], expected [${shape}]`);
    return t.data as Float32Array | Uint16Array;
  };
  const gp = allocParams(N);
  const tri = get('tri', [N]);
  if (!(tri instanceof Uint16Array)) throw new AssetFormatError('BAD_LAYOUT', 'gaussian-head: tri must be u16');
  gp.tri.set(tri);
  gp.bary.set(get('bary', [N, 3]));
  for (const k of PARAM_NAMES) gp.p[k].set(get(k, [N, PARAM_LAYOUT[k]]));
  const lm = get('sourceLandmarks', [478, 3]) as Float32Array;
  const bg = get('background', [S * S, 3]) as Float32Array;
  let head: GaussianHead;
  try {
    head = new GaussianHead(S, Float32Array.from(lm), gp, Float32Array.from(bg));
  } catch (err) {
    throw new AssetFormatError('BAD_LAYOUT', `gaussian-head: ${(err as Error).message}`);
  }
  const K = meta.detailSize;
  const mean = get('detailMean', [478 * 3, 1]) as Float32Array;
  const comps = K > 0 ? (get('detailComps', [K, 478 * 3]) as Float32Array) : new Float32Array(0);
  head.detail = { k: K, mean: Float32Array.from(mean), comps: Float32Array.from(comps) };
  return { head, metadata: meta };
}
