/**
 * GaussianAvatarGenerator: renders a per-identity 3D Gaussian head (models/gaussian, fitted by
 * `npm run train -- gaussian`) behind the AvatarGenerator interface. Same motion input as the
 * mesh generator (keypoint and voice drivers), free view up to ±45° yaw / ±20° pitch, any even
 * size (256² and 512² tested). Initialised from the asset bytes; a truncated, corrupted or
 * wrong-version asset fails initialize() with the container's error and leaves the generator
 * uninitialised. Buffers are allocated once per output size.
 */
import { decodeHeadAsset, HEAD_ASSET_KIND, type HeadMetadata } from '../../../models/gaussian/headAsset.ts';
import type { GaussianHead } from '../../../models/gaussian/head.ts';
import { restAngles } from '../../../models/gaussian/gaussians.ts';
import { EXPRESSION_SIZE } from '../../../models/face/expression-code.ts';
import {
  clampView, isGeneratorAsset, NO_VIEW_OFFSET,
  type AvatarGenerator, type AvatarMotion, type GeneratorCapabilities, type GeneratorSource, type RenderOptions, type RenderedFrame, type ViewOffset,
} from './generator.ts';
import { rgbaToI420 } from './raster.ts';

const D = Math.PI / 180;
export const GAUSSIAN_VIEW_LIMITS: ViewOffset = Object.freeze({ yaw: 45 * D, pitch: 20 * D, roll: 20 * D });

export interface GaussianGeneratorOptions {
  /** share of the driver's head translation applied; default 1 */
  translationGain?: number;
  /** compositing stage: WebAssembly SIMD where available ('auto', default) or JavaScript ('js') */
  compositor?: 'auto' | 'js';
}

export class GaussianAvatarGenerator implements AvatarGenerator {
  readonly kind = 'gaussian';
  readonly capabilities: GeneratorCapabilities = {
    kind: 'radiance-field',
    sizes: [256, 512],
    formats: ['rgba', 'i420', 'rgba+i420'],
    maxViewOffset: GAUSSIAN_VIEW_LIMITS,
    realtimeCpu: true,
    requiredWeights: [],
    expressionSize: EXPRESSION_SIZE,
    /** measured by bench/gaussian.ts on one core at 256² (WebAssembly compositor, frozen head: 17–20 ms) */
    frameCostMs: 20,
  };
  private head: GaussianHead | null = null;
  private meta: HeadMetadata | null = null;
  private readonly gain: number;
  private readonly compositor: 'auto' | 'js';

  constructor(opts: GaussianGeneratorOptions = {}) {
    this.gain = opts.translationGain ?? 1;
    this.compositor = opts.compositor ?? 'auto';
  }

  async initialize(source: GeneratorSource): Promise<void> {
    if (!source || !isGeneratorAsset(source)) throw new TypeError('the Gaussian generator needs a gaussian-head asset ({ kind, bytes })');
    if (source.kind !== HEAD_ASSET_KIND) throw new TypeError(`the Gaussian generator renders ${HEAD_ASSET_KIND} assets, not ${source.kind}`);
    const { head, metadata } = decodeHeadAsset(source.bytes);
    head.freeze(); // only rendered from now on
    this.head = head;
    this.meta = metadata;
  }

  get metadata(): HeadMetadata | null {
    return this.meta;
  }

  get gaussianCount(): number {
    return this.head?.count ?? 0;
  }

  render(motion: AvatarMotion, view: ViewOffset = NO_VIEW_OFFSET, out: RenderOptions = {}): RenderedFrame {
    const t0 = performance.now();
    const head = this.head;
    if (!head) throw new Error('render: generator not initialized');
    const size = out.size ?? 256;
    if (!Number.isInteger(size) || size < 32 || size > 2048 || size % 2 !== 0) throw new Error(`render: unsupported size ${size}`);
    const format = out.format ?? 'rgba';
    const v = clampView(view, GAUSSIAN_VIEW_LIMITS);
    const n = size * size;
    const reuse = out.reuse;
    const rgba = head.renderRgba(motion, v, size, this.gain, reuse?.rgba && reuse.rgba.length === n * 4 ? reuse.rgba : new Uint8ClampedArray(n * 4), this.compositor);
    let i420: Uint8Array | undefined;
    if (format !== 'rgba') {
      const need = n + 2 * (n >> 2);
      i420 = rgbaToI420(rgba, size, size, reuse?.i420 && reuse.i420.length === need ? reuse.i420 : undefined);
    }
    const V = head.lastVertices(size)!;
    const landmarks2d = reuse?.landmarks2d && reuse.landmarks2d.length === 478 * 2 ? reuse.landmarks2d : new Float32Array(478 * 2);
    for (let i = 0; i < 478; i++) { landmarks2d[i * 2] = V[i * 3]!; landmarks2d[i * 2 + 1] = V[i * 3 + 1]!; }
    return { width: size, height: size, rgba: format === 'i420' ? undefined : rgba, i420, landmarks2d, renderMs: performance.now() - t0 };
  }

  /** Motion that reproduces the source frame (its own pose, neutral expression). */
  restMotion(): AvatarMotion {
    if (!this.head) throw new Error('restMotion: generator not initialized');
    return { pose: { ...restAngles(this.head.scaffold), tx: 0, ty: 0, scale: 1 }, expression: new Float32Array(EXPRESSION_SIZE) };
  }

  close(): void {
    this.head = null;
    this.meta = null;
  }
}
