/**
 * Face analysis in Node with @vladmandic/human on the tfjs wasm backend.
 *
 * Facts this relies on (see shared NOTES.md):
 * - `require('@vladmandic/human')` resolves to the tfjs-node build, which is not installable here, so
 *   the wasm build `dist/human.node-wasm.js` is loaded by absolute path (the package's `exports`
 *   map blocks the subpath).
 * - Node's fetch refuses `file://`; model files are read from disk by a fetch wrapper that only
 *   handles `file://` URLs below the package's models directory and delegates everything else.
 * - `wasmPath` must be a directory path ending in '/'.
 * All paths are resolved from this module (createRequire), never from the current directory.
 */
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import type { Human as HumanClass, Config, Tensor } from '@vladmandic/human';

const require = createRequire(import.meta.url);

export interface FaceAngles {
  /** radians; Human's convention: positive yaw = subject turns to their left (image right) */
  yaw: number;
  pitch: number;
  roll: number;
}

export interface FaceResult {
  /**
   * 478 points [x, y, z]: x, y in input pixels (continuous coordinates, pixel i spans [i, i+1));
   * z is Human's raw depth in facemesh model units (smaller = closer); see humanZScale().
   */
  landmarks: Float32Array;
  /** x, y, width, height in pixels */
  box: [number, number, number, number];
  score: number;
  angles: FaceAngles;
  /** faceres descriptor (1024 floats) when `embedding` was enabled */
  embedding?: Float32Array;
}

export interface FaceAnalyzerOptions {
  /** compute the faceres identity descriptor (adds ~10-20 ms per face); default true */
  embedding?: boolean;
  /** maximum faces returned; default 4 */
  maxFaces?: number;
  /** minimum detector confidence; default 0.3 */
  minConfidence?: number;
}

export interface FaceAnalyzer {
  /** Detect faces in an RGBA (or RGB when `channels` = 3) image. Results sorted by box area, largest first. */
  detect(pixels: Uint8Array | Uint8ClampedArray, width: number, height: number, channels?: 3 | 4): Promise<FaceResult[]>;
  /** Identity descriptor of the largest face, or null when no face is found. */
  embed(pixels: Uint8Array | Uint8ClampedArray, width: number, height: number, channels?: 3 | 4): Promise<Float32Array | null>;
  close(): void;
}

export interface DecodedImage {
  width: number;
  height: number;
  /** RGBA, 4 bytes per pixel */
  data: Uint8Array;
}

/** Decode PNG or JPEG bytes to RGBA. Throws an Error with `code` = 'BAD_IMAGE' on anything else. */
export function decodeImage(bytes: Uint8Array, maxPixels = 4096 * 4096): DecodedImage {
  const fail = (msg: string): never => {
    const err = new Error(msg) as Error & { code: string };
    err.code = 'BAD_IMAGE';
    throw err;
  };
  if (bytes.length < 8) fail('image too small to be PNG or JPEG');
  const isPng = bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const isJpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isPng) {
    let png: PNG;
    try {
      png = PNG.sync.read(buf);
    } catch (e) {
      return fail(`PNG decode failed: ${(e as Error).message}`);
    }
    if (png.width * png.height > maxPixels) fail(`image has ${png.width * png.height} pixels, limit ${maxPixels}`);
    return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
  }
  if (isJpeg) {
    try {
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: maxPixels / 1e6, maxMemoryUsageInMB: 1024 });
      return { width: img.width, height: img.height, data: img.data };
    } catch (e) {
      return fail(`JPEG decode failed: ${(e as Error).message}`);
    }
  }
  return fail('unsupported image format (PNG or JPEG expected)');
}

/** Encode RGBA to PNG bytes (previews, fixtures). */
export function encodePng(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, width * height * 4);
  return PNG.sync.write(png);
}

interface HumanModule {
  Human: new (config?: Partial<Config>) => HumanClass;
}

let humanModule: HumanModule | null = null;
let fetchPatched = false;

function humanPaths(): { wasmBuild: string; modelsDir: string; wasmDir: string } {
  const humanMain = require.resolve('@vladmandic/human'); // .../dist/human.node.js
  const distDir = path.dirname(humanMain);
  const wasmMain = require.resolve('@tensorflow/tfjs-backend-wasm'); // .../dist/tf-backend-wasm.node.js
  return {
    wasmBuild: path.join(distDir, 'human.node-wasm.js'),
    modelsDir: path.join(distDir, '..', 'models'),
    wasmDir: path.dirname(wasmMain),
  };
}

function patchFetch(modelsDir: string): void {
  if (fetchPatched) return;
  fetchPatched = true;
  const original = globalThis.fetch;
  const root = path.resolve(modelsDir) + path.sep;
  globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (url.startsWith('file://')) {
      const file = path.resolve(fileURLToPath(url));
      if (!file.startsWith(root)) throw new Error(`refusing to read ${file}: outside the model directory`);
      const data = await readFile(file);
      const type = file.endsWith('.json') ? 'application/json' : 'application/octet-stream';
      return new Response(data, { status: 200, headers: { 'content-type': type } });
    }
    return original(input, init);
  }) as typeof fetch;
}

function loadHumanModule(): HumanModule {
  if (humanModule) return humanModule;
  const { wasmBuild } = humanPaths();
  humanModule = require(wasmBuild) as HumanModule;
  return humanModule;
}

/**
 * Create a face analyzer (loads models from the installed package; first call ~1-2 s).
 * Caching between frames is disabled: every call analyses its image from scratch.
 */
export async function createFaceAnalyzer(options: FaceAnalyzerOptions = {}): Promise<FaceAnalyzer> {
  const { modelsDir, wasmDir } = humanPaths();
  patchFetch(modelsDir);
  const { Human } = loadHumanModule();
  const withEmbedding = options.embedding ?? true;
  const config: Partial<Config> = {
    debug: false,
    backend: 'wasm',
    wasmPath: wasmDir.endsWith('/') ? wasmDir : wasmDir + '/',
    wasmPlatformFetch: false,
    modelBasePath: pathToFileURL(modelsDir).href + '/',
    cacheSensitivity: 0,
    filter: { enabled: false } as Config['filter'],
    face: {
      enabled: true,
      detector: { enabled: true, rotation: true, maxDetected: options.maxFaces ?? 4, minConfidence: options.minConfidence ?? 0.3, skipFrames: 0, skipTime: 0, return: false } as Config['face']['detector'],
      mesh: { enabled: true } as Config['face']['mesh'],
      iris: { enabled: true, skipFrames: 0, skipTime: 0 } as Config['face']['iris'],
      attention: { enabled: false } as Config['face']['attention'],
      emotion: { enabled: false } as Config['face']['emotion'],
      description: { enabled: withEmbedding, skipFrames: 0, skipTime: 0 } as Config['face']['description'],
      antispoof: { enabled: false } as Config['face']['antispoof'],
      liveness: { enabled: false } as Config['face']['liveness'],
    } as Config['face'],
    body: { enabled: false } as Config['body'],
    hand: { enabled: false } as Config['hand'],
    object: { enabled: false } as Config['object'],
    gesture: { enabled: false },
    segmentation: { enabled: false } as Config['segmentation'],
  };
  const human = new Human(config);
  await human.load();
  await human.warmup?.().catch(() => undefined);
  let closed = false;
  // Human is not re-entrant: serialise calls.
  let chain: Promise<unknown> = Promise.resolve();

  const run = async (pixels: Uint8Array | Uint8ClampedArray, width: number, height: number, channels: 3 | 4): Promise<FaceResult[]> => {
    if (closed) throw new Error('face analyzer is closed');
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) throw new Error(`bad image size ${width}x${height}`);
    if (pixels.length < width * height * channels) throw new Error(`pixel buffer too small for ${width}x${height}x${channels}`);
    const n = width * height;
    const rgb = new Int32Array(n * 3);
    for (let i = 0, j = 0; i < n; i++, j += channels) {
      rgb[i * 3] = pixels[j];
      rgb[i * 3 + 1] = pixels[j + 1];
      rgb[i * 3 + 2] = pixels[j + 2];
    }
    const tensor: Tensor = human.tf.tensor(rgb, [1, height, width, 3], 'int32') as Tensor;
    try {
      const res = await human.detect(tensor);
      if (res.error) throw new Error(`human.detect failed: ${res.error}`);
      const faces: FaceResult[] = [];
      for (const f of res.face) {
        if (!f.mesh || f.mesh.length < 478) continue;
        const lm = new Float32Array(478 * 3);
        for (let i = 0; i < 478; i++) {
          const p = f.mesh[i];
          // Human truncates pixel coordinates to integers: +0.5 removes the bias
          lm[i * 3] = p[0] + 0.5;
          lm[i * 3 + 1] = p[1] + 0.5;
          lm[i * 3 + 2] = p[2] ?? 0;
        }
        faces.push({
          landmarks: lm,
          box: [f.box[0], f.box[1], f.box[2], f.box[3]],
          score: f.score,
          angles: { yaw: f.rotation?.angle.yaw ?? 0, pitch: f.rotation?.angle.pitch ?? 0, roll: f.rotation?.angle.roll ?? 0 },
          embedding: f.embedding && f.embedding.length > 0 ? Float32Array.from(f.embedding) : undefined,
        });
      }
      faces.sort((a, b) => b.box[2] * b.box[3] - a.box[2] * a.box[3]);
      return faces;
    } finally {
      human.tf.dispose(tensor);
    }
  };

  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => undefined);
    return p;
  };

  return {
    detect: (pixels, width, height, channels = 4) => serial(() => run(pixels, width, height, channels)),
    embed: (pixels, width, height, channels = 4) => serial(async () => {
      const faces = await run(pixels, width, height, channels);
      return faces[0]?.embedding ?? null;
    }),
    close: () => {
      closed = true;
    },
  };
}

/** Cosine similarity of two descriptors (faceres descriptors are compared this way; same person ≳ 0.6). */
export function embeddingSimilarity(a: Float32Array, b: Float32Array): number {
  let dot = 0, na = 0, nb = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}
