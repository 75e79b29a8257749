/**
 * GaussianHead: one identity's fitted model (scaffold from its source frame, the Gaussians, the
 * background plate of its crop) and a per-size renderer that allocates nothing per frame.
 */
import { EXPRESSION_SIZE, type HeadPose } from '../face/expression-code.ts';
import { allocParams, allocSplats, deform, DeformScratch, FrozenShape, layoutGaussians, restAngles, TriangleFrames, type GaussianParams } from './gaussians.ts';
import { bin, compositeBand, project, RasterState, renderSplats, sortByDepth, type SplatInput } from './rasterize.ts';
import { WasmCompositor } from './wasmCompositor.ts';
import { Scaffold } from './scaffold.ts';
import { detailCode, detailResidual, type DetailBasis } from './detail.ts';

export interface HeadMotion {
  pose: HeadPose;
  expression: ArrayLike<number>;
  /** clip-specific detail code (detail.ts) */
  detail?: ArrayLike<number>;
}

export interface ViewAngles {
  yaw: number;
  pitch: number;
  roll: number;
}

export class GaussianHead {
  readonly scaffold: Scaffold;
  readonly params: GaussianParams;
  /** RGB float, baseSize² */
  readonly background: Float32Array;
  private renderers = new Map<number, HeadRenderer>();
  #frozen: FrozenShape | undefined;

  constructor(readonly baseSize: number, sourceLandmarks: Float32Array, params: GaussianParams, background: Float32Array) {
    if (background.length !== baseSize * baseSize * 3) throw new TypeError(`background must be ${baseSize}²×3 floats`);
    this.scaffold = new Scaffold(sourceLandmarks, baseSize);
    for (let i = 0; i < params.count; i++) if (params.tri[i]! >= this.scaffold.triangleCount) throw new TypeError(`Gaussian ${i} bound to triangle ${params.tri[i]} of ${this.scaffold.triangleCount}`);
    this.params = params;
    this.background = background;
  }

  /**
   * A fresh model: Gaussians laid out on the scaffold of `sourceLandmarks` (budget ≈ count),
   * coloured from `sourceRgba` (the source frame's crop, baseSize² RGBA) where they project,
   * background initialised to `background` (or the source frame).
   */
  static initialize(baseSize: number, sourceLandmarks: Float32Array, sourceRgba: Uint8Array, budget: number, background?: Float32Array): GaussianHead {
    const sc = new Scaffold(sourceLandmarks, baseSize);
    const { tri, bary, n } = layoutGaussians(sc, budget);
    const gp = allocParams(tri.length);
    gp.tri.set(tri);
    gp.bary.set(bary);
    const rest = restAngles(sc);
    const V = sc.pose({ pose: { ...rest, tx: 0, ty: 0, scale: 1 }, expression: new Float32Array(EXPRESSION_SIZE) }, baseSize);
    const frames = new TriangleFrames(sc.triangleCount);
    frames.compute(sc.triangles, V);
    const tris = sc.triangles;
    for (let i = 0; i < gp.count; i++) {
      const t = tri[i]!;
      const a = tris[t * 3]! * 3, b = tris[t * 3 + 1]! * 3, c = tris[t * 3 + 2]! * 3;
      // σ ≈ half a grid cell in the plane (rendering cost follows covered pixels: σ = 0.55 cell put
      // ~30 Gaussians over each pixel), thin along the normal
      const spacing = 0.35 / n[t]!;
      gp.p.logScale.set([Math.log(spacing), Math.log(spacing), Math.log(spacing * 0.35)], i * 3);
      gp.p.quat[i * 4] = 1;
      gp.p.opacity[i] = 2.2; // sigmoid → 0.9
      const x = bary[i * 3]! * V[a]! + bary[i * 3 + 1]! * V[b]! + bary[i * 3 + 2]! * V[c]!;
      const y = bary[i * 3]! * V[a + 1]! + bary[i * 3 + 1]! * V[b + 1]! + bary[i * 3 + 2]! * V[c + 1]!;
      const px = Math.max(0, Math.min(baseSize - 1, Math.floor(x))), py = Math.max(0, Math.min(baseSize - 1, Math.floor(y)));
      const q = (py * baseSize + px) * 4;
      if (sc.triangleRegion[t] === 2) {
        gp.p.color.set([0.25, 0.12, 0.12], i * 3); // mouth interior starts dark
      } else {
        gp.p.color.set([sourceRgba[q]! / 255, sourceRgba[q + 1]! / 255, sourceRgba[q + 2]! / 255], i * 3);
      }
    }
    let bg = background;
    if (!bg) {
      bg = new Float32Array(baseSize * baseSize * 3);
      for (let p = 0; p < baseSize * baseSize; p++) for (let c = 0; c < 3; c++) bg[p * 3 + c] = sourceRgba[p * 4 + c]! / 255;
    }
    return new GaussianHead(baseSize, sourceLandmarks, gp, bg);
  }

  get count(): number {
    return this.params.count;
  }

  /**
   * Declares the parameters final (a loaded asset that is only rendered): renders from now on
   * reuse their frame-independent terms (FrozenShape). Training never freezes its head.
   */
  freeze(): void {
    this.#frozen ??= new FrozenShape(this.params);
  }

  /** the precomputed terms after freeze() */
  get frozen(): FrozenShape | undefined {
    return this.#frozen;
  }

  get detail(): DetailBasis {
    return this.scaffold.detail;
  }

  set detail(b: DetailBasis) {
    if (b.mean.length !== 478 * 3 || b.comps.length !== b.k * 478 * 3 || b.k < 0 || b.k > 16) throw new TypeError('detail basis: bad shape');
    this.scaffold.detail = b;
  }

  /**
   * The detail code a tracker measures for tracked landmarks (478×3, crop pixels at baseSize
   * framing, pixel-unit z) with their 12-coefficient expression; undefined without a basis.
   */
  detailCode(landmarks: Float32Array, expression: ArrayLike<number>): Float32Array | undefined {
    const b = this.scaffold.detail;
    if (b.k === 0) return undefined;
    return detailCode(b, detailResidual(this.scaffold.rig, landmarks, expression));
  }

  /** Render one frame at `size` (multiple of 16). Returns the renderer's RGB float image (reused). */
  render(m: HeadMotion, view: ViewAngles | undefined, size: number, translationGain = 1): Float32Array {
    return this.#renderer(size).render(m, view, translationGain);
  }

  #renderer(size: number): HeadRenderer {
    let r = this.renderers.get(size);
    if (!r) {
      r = new HeadRenderer(this, size);
      this.renderers.set(size, r);
    }
    return r;
  }

  /**
   * Render one frame at `size` as RGBA bytes into `out` (the live path: compositing in
   * WebAssembly SIMD where available, see wasmCompositor.ts; `compositor: 'js'` forces the
   * JavaScript stage).
   */
  renderRgba(m: HeadMotion, view: ViewAngles | undefined, size: number, translationGain: number, out: Uint8ClampedArray, compositor: 'auto' | 'js' = 'auto'): Uint8ClampedArray {
    return this.#renderer(size).renderRgba(m, view, translationGain, out, compositor);
  }

  /** the compositing stage of renderRgba at `size` ('wasm', or 'js' without WebAssembly SIMD) */
  compositorAt(size: number): 'wasm' | 'js' {
    return this.#renderer(size).compositor;
  }

  /** landmarks (478 × x, y) of the last render at `size`, output pixels */
  lastVertices(size: number): Float32Array | undefined {
    return this.renderers.get(size)?.V;
  }

  /** Invalidate cached per-size state (after parameters or the background changed). */
  invalidate(): void {
    for (const r of this.renderers.values()) r.resetBackground();
  }
}

/** Per-size render state. */
export class HeadRenderer {
  readonly V: Float32Array;
  private readonly frames: TriangleFrames;
  readonly world: SplatInput;
  readonly st: RasterState;
  private readonly scratch = new DeformScratch();
  private bg: Float32Array;
  /** created on the first RGBA render; null where WebAssembly SIMD is unavailable */
  private wasm: WasmCompositor | null | undefined;

  constructor(private readonly head: GaussianHead, readonly size: number) {
    const sc = head.scaffold;
    this.V = new Float32Array(sc.vertexCount * 3);
    this.frames = new TriangleFrames(sc.triangleCount);
    this.world = allocSplats(head.count);
    this.st = new RasterState(size, head.count);
    this.st.tMin = 1 / 255; // live rendering: stop where the rest cannot change an 8-bit pixel
    this.bg = resizeRgb(head.background, head.baseSize, size);
  }

  resetBackground(): void {
    this.bg = resizeRgb(this.head.background, this.head.baseSize, this.size);
    this.wasm?.invalidateBackground();
  }

  /** the compositor the RGBA path uses: 'wasm', or 'js' where WebAssembly SIMD is unavailable */
  get compositor(): 'wasm' | 'js' {
    if (this.wasm === undefined) this.wasm = WasmCompositor.create() ?? null;
    return this.wasm ? 'wasm' : 'js';
  }

  #deform(m: HeadMotion, view: ViewAngles | undefined, translationGain: number): void {
    const sc = this.head.scaffold;
    sc.pose({ pose: m.pose, expression: m.expression, detail: m.detail, view, translationGain }, this.size, this.V);
    this.frames.compute(sc.triangles, this.V);
    deform(this.head.params, this.frames, sc.triangles, this.V, m.expression, this.world, this.scratch, 0, this.head.count, this.head.frozen);
  }

  render(m: HeadMotion, view: ViewAngles | undefined, translationGain: number): Float32Array {
    this.#deform(m, view, translationGain);
    return renderSplats(this.world, this.st, this.bg);
  }

  renderRgba(m: HeadMotion, view: ViewAngles | undefined, translationGain: number, out: Uint8ClampedArray, compositor: 'auto' | 'js'): Uint8ClampedArray {
    const n = this.size * this.size;
    if (out.length !== n * 4) throw new TypeError(`renderRgba: out must be ${this.size}²×4 bytes`);
    this.#deform(m, view, translationGain);
    const st = this.st;
    st.ensure(this.world.count);
    project(this.world, st);
    sortByDepth(this.world.count, st);
    bin(st);
    if (compositor === 'auto' && this.compositor === 'wasm') {
      this.wasm!.composite(this.world, st, this.bg, out);
      return out;
    }
    for (let b = 0; b < st.bands; b++) compositeBand(this.world, st, this.bg, b);
    return rgbToRgbaBytes(st.image, n, out);
  }
}

/** Bilinear resize of an RGB float image (identity when sizes match). */
export function resizeRgb(src: Float32Array, from: number, to: number): Float32Array {
  if (from === to) return src;
  const out = new Float32Array(to * to * 3);
  const k = from / to;
  for (let y = 0; y < to; y++) {
    const sy = Math.max(0, Math.min(from - 1, (y + 0.5) * k - 0.5));
    const y0 = Math.floor(sy), y1 = Math.min(from - 1, y0 + 1), fy = sy - y0;
    for (let x = 0; x < to; x++) {
      const sx = Math.max(0, Math.min(from - 1, (x + 0.5) * k - 0.5));
      const x0 = Math.floor(sx), x1 = Math.min(from - 1, x0 + 1), fx = sx - x0;
      for (let c = 0; c < 3; c++) {
        const a = src[(y0 * from + x0) * 3 + c]!, b = src[(y0 * from + x1) * 3 + c]!;
        const d = src[(y1 * from + x0) * 3 + c]!, e = src[(y1 * from + x1) * 3 + c]!;
        out[(y * to + x) * 3 + c] = (a + (b - a) * fx) * (1 - fy) + (d + (e - d) * fx) * fy;
      }
    }
  }
  return out;
}

/** RGB float [0, 1] → RGBA bytes (nearest level: a Uint8ClampedArray store rounds by itself). */
export function rgbToRgbaBytes(rgb: Float32Array, n: number, out: Uint8ClampedArray = new Uint8ClampedArray(n * 4)): Uint8ClampedArray {
  for (let p = 0; p < n; p++) {
    out[p * 4] = rgb[p * 3]! * 255;
    out[p * 4 + 1] = rgb[p * 3 + 1]! * 255;
    out[p * 4 + 2] = rgb[p * 3 + 2]! * 255;
    out[p * 4 + 3] = 255;
  }
  return out;
}
