/**
 * Enrollment: photo bytes → EnrolledIdentity (square crop around the largest face, its 478
 * landmarks measured on that crop, the face mesh topology, the identity embedding).
 */
import { createFaceAnalyzer, decodeImage, type FaceAnalyzer, type FaceResult } from '../face/human-node.ts';
import { FACE_TRIANGLES } from '../../../../models/face/topology.ts';
import { humanZScale } from '../../../../models/face/expression-code.ts';
import { resampleRegion } from '../../../../models/image/resampleRegion.ts';
import type { EnrolledIdentity } from '../../../../models/face/enrolledIdentity.ts';

export type { EnrolledIdentity };

export type EnrollErrorCode = 'NO_FACE' | 'TOO_LARGE' | 'BAD_IMAGE' | 'FACE_TOO_SMALL';

export class EnrollError extends Error {
  constructor(readonly code: EnrollErrorCode, message: string) {
    super(message);
    this.name = 'EnrollError';
  }
}

export interface EnrollOptions {
  /** reuse an analyzer (otherwise one is created and closed) */
  analyzer?: FaceAnalyzer;
  /** default 10 MiB */
  maxBytes?: number;
  /** default 25 megapixels */
  maxPixels?: number;
  /** texture side, default 512 */
  textureSize?: number;
  /** crop side / face landmark box size, default 3.0 (head and shoulders) */
  cropFactor?: number;
  /** smallest accepted face (landmark box height in source pixels), default 48 */
  minFacePx?: number;
  /**
   * Faces are first searched on a copy of the photo downscaled to at most this side (default 1280);
   * the crop is still cut from the full-resolution photo and measured again. Keeps a 12-Mpx phone
   * photo from needing a 150 MB input tensor (and Human's wasm heap from growing to ~1 GB).
   */
  analysisMaxSide?: number;
}

/** Box-filter downscale of RGBA (each output pixel averages the source pixels it covers). */
function downscaleRgba(src: Uint8Array, sw: number, sh: number, dw: number, dh: number): Uint8Array {
  const out = new Uint8Array(dw * dh * 4);
  const fx = sw / dw, fy = sh / dh;
  for (let y = 0; y < dh; y++) {
    const y0 = Math.floor(y * fy), y1 = Math.max(y0 + 1, Math.min(sh, Math.floor((y + 1) * fy)));
    for (let x = 0; x < dw; x++) {
      const x0 = Math.floor(x * fx), x1 = Math.max(x0 + 1, Math.min(sw, Math.floor((x + 1) * fx)));
      let r = 0, g = 0, b = 0;
      for (let yy = y0; yy < y1; yy++) {
        let q = (yy * sw + x0) * 4;
        for (let xx = x0; xx < x1; xx++, q += 4) { r += src[q]; g += src[q + 1]; b += src[q + 2]; }
      }
      const n = (y1 - y0) * (x1 - x0), o = (y * dw + x) * 4;
      out[o] = r / n; out[o + 1] = g / n; out[o + 2] = b / n; out[o + 3] = 255;
    }
  }
  return out;
}

function landmarkBox(lm: Float32Array): { x0: number; y0: number; x1: number; y1: number } {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < 468; i++) {
    const x = lm[i * 3], y = lm[i * 3 + 1];
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  return { x0, y0, x1, y1 };
}

/** Photo bytes (PNG/JPEG) → the EnrolledIdentity of its largest face (Human detection, crop, landmarks on the crop). */
export async function enrollIdentityFromPhoto(bytes: Uint8Array, opts: EnrollOptions = {}): Promise<EnrolledIdentity> {
  const maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
  const maxPixels = opts.maxPixels ?? 25e6;
  const size = opts.textureSize ?? 512;
  const cropFactor = opts.cropFactor ?? 3.0;
  if (!(bytes instanceof Uint8Array)) throw new EnrollError('BAD_IMAGE', 'photo must be bytes');
  if (bytes.length > maxBytes) throw new EnrollError('TOO_LARGE', `photo is ${bytes.length} bytes, limit ${maxBytes}`);
  let img;
  try {
    img = decodeImage(bytes, maxPixels);
  } catch (e) {
    const msg = (e as Error).message;
    throw new EnrollError(/pixels, limit/.test(msg) ? 'TOO_LARGE' : 'BAD_IMAGE', msg);
  }
  if (img.width * img.height > maxPixels) throw new EnrollError('TOO_LARGE', `photo has ${img.width * img.height} pixels, limit ${maxPixels}`);
  const analyzer = opts.analyzer ?? (await createFaceAnalyzer());
  try {
    const maxSide = opts.analysisMaxSide ?? 1280;
    let faces: FaceResult[];
    if (Math.max(img.width, img.height) > maxSide) {
      const k = maxSide / Math.max(img.width, img.height);
      const dw = Math.max(1, Math.round(img.width * k)), dh = Math.max(1, Math.round(img.height * k));
      const sx = img.width / dw, sy = img.height / dh;
      faces = await analyzer.detect(downscaleRgba(img.data, img.width, img.height, dw, dh), dw, dh);
      for (const f of faces) {
        // back to source pixels (z stays in model units)
        for (let i = 0; i < 478; i++) { f.landmarks[i * 3] *= sx; f.landmarks[i * 3 + 1] *= sy; }
        f.box = [f.box[0] * sx, f.box[1] * sy, f.box[2] * sx, f.box[3] * sy];
      }
    } else {
      faces = await analyzer.detect(img.data, img.width, img.height);
    }
    if (faces.length === 0) throw new EnrollError('NO_FACE', 'no face found in the photo');
    const face = faces[0];
    const b = landmarkBox(face.landmarks);
    const fh = Math.max(b.x1 - b.x0, b.y1 - b.y0);
    if (fh < (opts.minFacePx ?? 48)) throw new EnrollError('FACE_TOO_SMALL', `face is ${Math.round(fh)} px tall, need ${opts.minFacePx ?? 48}`);
    let side = Math.min(cropFactor * fh, img.width, img.height);
    side = Math.max(1, Math.floor(side));
    const cx = (b.x0 + b.x1) / 2, cy = (b.y0 + b.y1) / 2 + 0.1 * fh;
    const x = Math.round(Math.max(0, Math.min(img.width - side, cx - side / 2)));
    const y = Math.round(Math.max(0, Math.min(img.height - side, cy - side / 2)));
    const texture = resampleRegion(img.data, img.width, img.height, x, y, side, size);
    // landmarks measured again on the crop: they must match the texture the mesh samples from
    let onCrop: FaceResult | undefined = (await analyzer.detect(texture, size, size))[0];
    let human: Float32Array;
    if (onCrop) {
      human = onCrop.landmarks;
    } else {
      const k = size / side;
      human = face.landmarks.slice();
      for (let i = 0; i < 478; i++) {
        human[i * 3] = (human[i * 3] - x) * k;
        human[i * 3 + 1] = (human[i * 3 + 1] - y) * k;
      }
      onCrop = undefined;
    }
    const zs = humanZScale(human);
    const landmarks = human.slice();
    for (let i = 0; i < 478; i++) landmarks[i * 3 + 2] *= zs;
    return {
      size,
      texture,
      background: texture,
      landmarks,
      humanLandmarks: human,
      mesh: { triangles: FACE_TRIANGLES, vertexCount: 468 },
      embedding: onCrop?.embedding ?? face.embedding,
      faceCount: faces.length,
      crop: { x, y, size: side },
      sourceWidth: img.width,
      sourceHeight: img.height,
      angles: (onCrop ?? face).angles,
    };
  } finally {
    if (!opts.analyzer) analyzer.close();
  }
}
