/**
 * Avatar generator interface: one per-identity asset + a stream of motion → video frames.
 *
 * In the avatar worker a generator runs in a render thread (worker/src/render/), never on the event
 * loop that carries wrtc and signaling, so render() may be synchronous and as slow as it needs.
 *
 * The default implementation is the CPU mesh warper (mesh-generator.ts). The interface is kept
 * free of mesh specifics so that an ONNX neural generator (e.g. a LivePortrait-style warper with
 * user-supplied weights) or a radiance-field renderer can implement it later: they receive the
 * same EnrolledIdentity (photo crop + landmarks + embedding) and the same Motion, and say what
 * they can do through `capabilities`.
 */
import type { HeadPose } from '../../../models/face/expression-code.ts';
import type { EnrolledIdentity } from '../../../models/face/enrolledIdentity.ts';

export type { EnrolledIdentity } from '../../../models/face/enrolledIdentity.ts';

/** Driving motion for one frame (decoded from the wire, see protocol/src/motion.ts). */
export interface AvatarMotion {
  pose: HeadPose;
  /** EXPRESSION_NAMES order, each in [−1, 1] */
  expression: ArrayLike<number>;
  /** a personal avatar's clip-specific detail code (motion protocol version 2); others ignore it */
  detail?: ArrayLike<number>;
}

/** Free-view offset chosen by the viewer, radians, added to the driving pose. */
export interface ViewOffset {
  yaw: number;
  pitch: number;
  roll: number;
}

export const NO_VIEW_OFFSET: ViewOffset = Object.freeze({ yaw: 0, pitch: 0, roll: 0 });

export type PixelFormat = 'rgba' | 'i420' | 'rgba+i420';

export interface RenderOptions {
  /** output is square: size × size; default 256 */
  size?: number;
  format?: PixelFormat;
  /** reuse buffers from a previous frame of the same size and format (no allocation per frame) */
  reuse?: RenderedFrame;
}

export interface RenderedFrame {
  width: number;
  height: number;
  rgba?: Uint8ClampedArray;
  /** Y plane, then U, then V (width/2 × height/2 each) */
  i420?: Uint8Array;
  /** where the 478 landmarks ended up, output pixels (x, y pairs); generators may omit it */
  landmarks2d?: Float32Array;
  /** milliseconds spent in render() */
  renderMs: number;
}

export interface GeneratorCapabilities {
  /** 'mesh' (this repo's CPU warper), 'onnx', 'radiance-field', ... */
  kind: string;
  /** square output sizes it renders efficiently */
  sizes: readonly number[];
  formats: readonly PixelFormat[];
  /** largest free-view offsets it renders without visible breakage, radians */
  maxViewOffset: ViewOffset;
  /** whether render() is synchronous and cheap enough to run per frame on a CPU core */
  realtimeCpu: boolean;
  /** weights it needs beyond Human's face models (empty for the mesh generator) */
  requiredWeights: readonly string[];
  /** expression coefficients it understands (prefix of EXPRESSION_NAMES) */
  expressionSize: number;
  /**
   * Typical cost of one 256² frame, milliseconds of one CPU core (or of the GPU): the worker derives
   * how many sessions of this kind it takes from it, and registers it for placement.
   */
  frameCostMs: number;
}

/**
 * What a generator is initialised from: the mesh generator takes an enrolled photo; asset-based
 * generators take their own per-identity asset (the Gaussian head: the file `npm run train --
 * gaussian` writes). A generator given a source it cannot use throws a TypeError.
 */
export interface GeneratorAsset {
  kind: string;
  bytes: Uint8Array;
}
export type GeneratorSource = EnrolledIdentity | GeneratorAsset;

export function isGeneratorAsset(s: GeneratorSource): s is GeneratorAsset {
  return typeof (s as GeneratorAsset).kind === 'string' && (s as GeneratorAsset).bytes instanceof Uint8Array;
}

export interface AvatarGenerator {
  readonly kind: string;
  readonly capabilities: GeneratorCapabilities;
  initialize(source: GeneratorSource): Promise<void>;
  render(motion: AvatarMotion, view?: ViewOffset, out?: RenderOptions): RenderedFrame;
  /**
   * Several views of one motion in one call (a generator that shares the per-motion work between
   * views implements it); `reuse[i]` is view i's previous frame. Without it, the render thread calls
   * render() once per view.
   */
  renderViews?(motion: AvatarMotion, views: readonly ViewOffset[], out: Omit<RenderOptions, 'reuse'> & { reuse?: readonly (RenderedFrame | undefined)[] }): RenderedFrame[];
  close(): void;
}

/** Free-view limits of the product: yaw ±30°, pitch ±20°, roll ±20°. */
export const VIEW_LIMITS: ViewOffset = Object.freeze({ yaw: (30 * Math.PI) / 180, pitch: (20 * Math.PI) / 180, roll: (20 * Math.PI) / 180 });

export function clampView(v: ViewOffset | undefined, limits: ViewOffset = VIEW_LIMITS): ViewOffset {
  if (!v) return NO_VIEW_OFFSET;
  const c = (x: number, l: number) => (Number.isFinite(x) ? Math.max(-l, Math.min(l, x)) : 0);
  return { yaw: c(v.yaw, limits.yaw), pitch: c(v.pitch, limits.pitch), roll: c(v.roll, limits.roll) };
}
