/**
 * Clip upload (browser → server): the frames of a short clip of one person plus the face tracking
 * the browser already did on each, for training a personal avatar (issue: radiance-field avatar,
 * part 2). The browser decodes (camera or a video element) and tracks (FaceTracker), so the server
 * needs no ffmpeg and no face detector on this path.
 *
 * Layout, little endian, version 1:
 *   offset  bytes
 *   0       4     magic "AVCU"
 *   4       2     version u16 (1)
 *   6       2     flags u16 (0)
 *   8       4     total length u32: the whole upload, CRC included
 *   12      4     header length H u32
 *   16      H     header: UTF-8 JSON, `clipUploadHeaderSchema`
 *   …             per frame, in time order: image length L u32, L bytes of JPEG, 478 × 3 f32
 *                 landmarks (x, y in the frame's pixels, z in Human's units: what FaceTracker gives)
 *   total − 4 4   CRC-32 of bytes [0, total − 4)
 *
 * Checked in this order, each with its own error code: size (TOO_LARGE before anything is read) →
 * fixed header (TRUNCATED) → magic (BAD_MAGIC) → version (BAD_VERSION) → total length (TRUNCATED /
 * CORRUPT) → CRC (CORRUPT) → header JSON and schema (BAD_LAYOUT) → frame records (BAD_LAYOUT). The
 * decoder never allocates from a length it has not checked against the real size; frames are views
 * into the input.
 *
 * Pure TypeScript, for browsers and Node.
 */
import { z } from 'zod';
import { crc32 } from './crc32.ts';

export const CLIP_UPLOAD_MAGIC = 'AVCU';
export const CLIP_UPLOAD_VERSION = 1;
export const CLIP_UPLOAD_LANDMARKS = 478;
const FIXED_HEADER_BYTES = 16;
const CRC_BYTES = 4;
const LANDMARK_BYTES = CLIP_UPLOAD_LANDMARKS * 3 * 4;

/** What one upload may hold. The browser checks them before it uploads; the server again. */
export const CLIP_UPLOAD_LIMITS = Object.freeze({
  /** the clip's length, seconds (first to last frame) */
  maxSeconds: 15,
  /** frames in the upload (15 s at 30 fps) */
  maxFrames: 450,
  /** fewest frames a personal avatar can be trained from */
  minFrames: 30,
  /** the whole upload, bytes */
  maxBytes: 48 * 2 ** 20,
  /** one frame's JPEG, bytes */
  maxImageBytes: 512 * 1024,
  /** frame width × height */
  maxPixels: 1280 * 720,
  /** frame width and height, each */
  minSide: 64,
  maxSide: 1920,
  maxHeaderBytes: 64 * 1024,
});

export type ClipUploadErrorCode = 'TOO_LARGE' | 'TRUNCATED' | 'BAD_MAGIC' | 'BAD_VERSION' | 'CORRUPT' | 'BAD_LAYOUT';

export class ClipUploadError extends Error {
  override name = 'ClipUploadError';
  constructor(readonly code: ClipUploadErrorCode, message: string) {
    super(message);
  }
}

const L = CLIP_UPLOAD_LIMITS;
export const clipUploadHeaderSchema = z
  .object({
    /** where the frames come from: the camera (recorded in the page) or a file the user chose */
    source: z.enum(['camera', 'file']),
    width: z.number().int().min(L.minSide).max(L.maxSide),
    height: z.number().int().min(L.minSide).max(L.maxSide),
    /** the frames' nominal rate */
    fps: z.number().min(1).max(60),
    /** one entry per frame: its time (seconds from the first frame) and how many faces were found */
    frames: z
      .array(z.object({ t: z.number().min(0).max(L.maxSeconds), faces: z.number().int().min(1).max(8) }).strict())
      .min(1)
      .max(L.maxFrames),
  })
  .strict()
  .superRefine((h, ctx) => {
    if (h.width * h.height > L.maxPixels) ctx.addIssue({ code: 'custom', message: `frames of ${h.width}×${h.height} exceed ${L.maxPixels} pixels` });
    for (let i = 1; i < h.frames.length; i++) {
      if (!(h.frames[i]!.t > h.frames[i - 1]!.t)) {
        ctx.addIssue({ code: 'custom', message: `frame times must increase (frame ${i}: ${h.frames[i]!.t} after ${h.frames[i - 1]!.t})` });
        break;
      }
    }
  });
export type ClipUploadHeader = z.infer<typeof clipUploadHeaderSchema>;

export interface ClipUploadFrame {
  /** JPEG bytes */
  image: Uint8Array;
  /** 478 × 3: x, y in frame pixels, z in Human's units */
  landmarks: Float32Array;
}

export interface ClipUpload {
  header: ClipUploadHeader;
  frames: ClipUploadFrame[];
}

const text = new TextEncoder();

/** The upload's bytes; TypeError (with what is wrong) for input that breaks the limits. */
export function encodeClipUpload(clip: ClipUpload): Uint8Array {
  const parsed = clipUploadHeaderSchema.safeParse(clip.header);
  if (!parsed.success) throw new TypeError(`clip upload header: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(header)'}: ${i.message}`).join('; ')}`);
  if (clip.frames.length !== clip.header.frames.length) throw new TypeError(`clip upload: ${clip.frames.length} frames but the header lists ${clip.header.frames.length}`);
  const header = text.encode(JSON.stringify(parsed.data));
  if (header.length > L.maxHeaderBytes) throw new TypeError(`clip upload header of ${header.length} bytes exceeds ${L.maxHeaderBytes}`);
  let total = FIXED_HEADER_BYTES + header.length + CRC_BYTES;
  clip.frames.forEach((f, i) => {
    if (!(f.image instanceof Uint8Array) || f.image.length === 0 || f.image.length > L.maxImageBytes) throw new TypeError(`clip upload frame ${i}: the image must be 1..${L.maxImageBytes} bytes`);
    if (!(f.landmarks instanceof Float32Array) || f.landmarks.length !== CLIP_UPLOAD_LANDMARKS * 3) throw new TypeError(`clip upload frame ${i}: landmarks must be a Float32Array of ${CLIP_UPLOAD_LANDMARKS * 3}`);
    if (!f.landmarks.every(Number.isFinite)) throw new TypeError(`clip upload frame ${i}: landmarks must be finite`);
    total += 4 + f.image.length + LANDMARK_BYTES;
  });
  if (total > L.maxBytes) throw new TypeError(`clip upload of ${total} bytes exceeds ${L.maxBytes} (fewer frames or a lower JPEG quality)`);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = CLIP_UPLOAD_MAGIC.charCodeAt(i);
  dv.setUint16(4, CLIP_UPLOAD_VERSION, true);
  dv.setUint16(6, 0, true);
  dv.setUint32(8, total, true);
  dv.setUint32(12, header.length, true);
  out.set(header, FIXED_HEADER_BYTES);
  let o = FIXED_HEADER_BYTES + header.length;
  for (const f of clip.frames) {
    dv.setUint32(o, f.image.length, true);
    out.set(f.image, o + 4);
    o += 4 + f.image.length;
    for (let k = 0; k < f.landmarks.length; k++) dv.setFloat32(o + 4 * k, f.landmarks[k]!, true);
    o += LANDMARK_BYTES;
  }
  dv.setUint32(total - CRC_BYTES, crc32(out, 0, total - CRC_BYTES), true);
  return out;
}

/** Parse and verify an upload; ClipUploadError (with its code) for anything that is not a valid one. */
export function decodeClipUpload(bytes: Uint8Array): ClipUpload {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('decodeClipUpload takes a Uint8Array');
  if (bytes.length > L.maxBytes) throw new ClipUploadError('TOO_LARGE', `upload of ${bytes.length} bytes exceeds ${L.maxBytes}`);
  if (bytes.length < FIXED_HEADER_BYTES + CRC_BYTES) throw new ClipUploadError('TRUNCATED', `upload of ${bytes.length} bytes is shorter than its fixed header`);
  const magic = String.fromCharCode(bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!);
  if (magic !== CLIP_UPLOAD_MAGIC) throw new ClipUploadError('BAD_MAGIC', `not a clip upload (magic ${JSON.stringify(magic)}, expected "${CLIP_UPLOAD_MAGIC}")`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint16(4, true);
  if (version !== CLIP_UPLOAD_VERSION) throw new ClipUploadError('BAD_VERSION', `clip upload version ${version} is not supported (this server reads version ${CLIP_UPLOAD_VERSION})`);
  const total = dv.getUint32(8, true);
  if (total > bytes.length) throw new ClipUploadError('TRUNCATED', `upload is ${bytes.length} bytes, its header says ${total}`);
  if (total !== bytes.length) throw new ClipUploadError('CORRUPT', `upload is ${bytes.length} bytes, its header says ${total}`);
  const expected = dv.getUint32(total - CRC_BYTES, true);
  if (crc32(bytes, 0, total - CRC_BYTES) !== expected) throw new ClipUploadError('CORRUPT', 'clip upload CRC mismatch: the bytes were damaged');
  if (dv.getUint16(6, true) !== 0) throw new ClipUploadError('BAD_LAYOUT', 'unknown clip upload flags');
  const hLen = dv.getUint32(12, true);
  if (hLen > L.maxHeaderBytes || FIXED_HEADER_BYTES + hLen > total - CRC_BYTES) throw new ClipUploadError('BAD_LAYOUT', `header length ${hLen} does not fit`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(FIXED_HEADER_BYTES, FIXED_HEADER_BYTES + hLen)));
  } catch (e) {
    throw new ClipUploadError('BAD_LAYOUT', `header is not UTF-8 JSON: ${(e as Error).message}`);
  }
  const parsed = clipUploadHeaderSchema.safeParse(json);
  if (!parsed.success) throw new ClipUploadError('BAD_LAYOUT', `header: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(header)'}: ${i.message}`).join('; ')}`);
  const header = parsed.data;
  const end = total - CRC_BYTES;
  let o = FIXED_HEADER_BYTES + hLen;
  const frames: ClipUploadFrame[] = [];
  for (let i = 0; i < header.frames.length; i++) {
    if (o + 4 > end) throw new ClipUploadError('BAD_LAYOUT', `frame ${i} of ${header.frames.length} is missing`);
    const len = dv.getUint32(o, true);
    if (len === 0 || len > L.maxImageBytes || o + 4 + len + LANDMARK_BYTES > end) throw new ClipUploadError('BAD_LAYOUT', `frame ${i}: image length ${len} does not fit`);
    const image = bytes.subarray(o + 4, o + 4 + len);
    o += 4 + len;
    const landmarks = new Float32Array(CLIP_UPLOAD_LANDMARKS * 3);
    for (let k = 0; k < landmarks.length; k++) {
      const v = dv.getFloat32(o + 4 * k, true);
      if (!Number.isFinite(v)) throw new ClipUploadError('BAD_LAYOUT', `frame ${i}: landmark ${Math.floor(k / 3)} is not finite`);
      landmarks[k] = v;
    }
    o += LANDMARK_BYTES;
    frames.push({ image, landmarks });
  }
  if (o !== end) throw new ClipUploadError('BAD_LAYOUT', `${end - o} bytes after the last frame`);
  return { header, frames };
}
