/**
 * The enrolled identity (what photo enrollment produces and what the mesh generator is initialised
 * from) and its versioned file format, identity.bin. The server's IdentityStore writes it; the avatar
 * worker fetches the same bytes over HTTP (content-addressed by their SHA-256) and decodes them here:
 * one definition for both.
 *
 * identity.bin: "AVID", u32 format version, u32 header length, JSON header, then the
 * deflate-compressed payload: texture (RGBA size², u8), landmarks and humanLandmarks (478×3 f32),
 * embedding (f32, optional), each section's offset/length listed in the header. Floats are stored
 * little-endian. Decoding costs one inflate on libuv's thread pool: no face detection.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { FACE_TRIANGLES } from './topology.ts';

const deflate = promisify(zlib.deflate);
const inflate = promisify(zlib.inflate);

const MAGIC = 0x44495641; // "AVID" read as little-endian u32
export const IDENTITY_FORMAT_VERSION = 1;
export const LANDMARK_FLOATS = 478 * 3;

export interface EnrolledIdentity {
  /** side of the square texture (pixels) */
  size: number;
  /** RGBA size × size: the cropped photo; also the background plate the generator warps */
  texture: Uint8ClampedArray;
  /** alias of `texture` (the background is the photo itself, warped around the head) */
  background: Uint8ClampedArray;
  /** 478 × [x, y, z] in texture pixels; z converted to pixel units (see humanZScale) */
  landmarks: Float32Array;
  /** Human's raw landmarks on the texture (z in model units) */
  humanLandmarks: Float32Array;
  mesh: { triangles: Uint16Array; vertexCount: number };
  /** faceres descriptor of the face on the crop (identity checks), if computed */
  embedding?: Float32Array;
  /** number of faces found in the photo (the largest is enrolled) */
  faceCount: number;
  /** crop square in the original photo's pixels */
  crop: { x: number; y: number; size: number };
  sourceWidth: number;
  sourceHeight: number;
  /** Human's head angles on the crop, radians */
  angles: { yaw: number; pitch: number; roll: number };
}

interface Section {
  name: 'texture' | 'landmarks' | 'humanLandmarks' | 'embedding';
  offset: number;
  length: number;
}

interface BinHeader {
  size: number;
  faceCount: number;
  crop: { x: number; y: number; size: number };
  sourceWidth: number;
  sourceHeight: number;
  angles: { yaw: number; pitch: number; roll: number };
  sections: Section[];
}




/** Little-endian bytes of a float array (copy only on big-endian machines). */
function f32Bytes(a: Float32Array): Uint8Array {
  const out = new Uint8Array(a.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) dv.setFloat32(i * 4, a[i], true);
  return out;
}

function readF32(buf: Uint8Array, s: Section): Float32Array {
  if (s.offset + s.length > buf.length || s.length % 4 !== 0) throw new Error(`identity.bin: section ${s.name} out of range`);
  const out = new Float32Array(s.length / 4);
  const dv = new DataView(buf.buffer, buf.byteOffset + s.offset, s.length);
  for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
  return out;
}

export function serializeIdentity(id: EnrolledIdentity): Promise<Buffer> {
  const parts: { name: Section['name']; bytes: Uint8Array }[] = [
    { name: 'texture', bytes: new Uint8Array(id.texture.buffer, id.texture.byteOffset, id.texture.byteLength) },
    { name: 'landmarks', bytes: f32Bytes(id.landmarks) },
    { name: 'humanLandmarks', bytes: f32Bytes(id.humanLandmarks) },
  ];
  if (id.embedding) parts.push({ name: 'embedding', bytes: f32Bytes(id.embedding) });
  const sections: Section[] = [];
  let offset = 0;
  for (const p of parts) {
    sections.push({ name: p.name, offset, length: p.bytes.length });
    offset += p.bytes.length;
  }
  const payload = Buffer.concat(parts.map((p) => p.bytes));
  const header: BinHeader = {
    size: id.size, faceCount: id.faceCount, crop: id.crop, sourceWidth: id.sourceWidth, sourceHeight: id.sourceHeight, angles: id.angles, sections,
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(12);
  pre.writeUInt32LE(MAGIC, 0);
  pre.writeUInt32LE(IDENTITY_FORMAT_VERSION, 4);
  pre.writeUInt32LE(json.length, 8);
  // level 6: the texture is most of the payload (photo content, ~2:1); runs on the thread pool
  return deflate(payload, { level: 6 }).then((z) => Buffer.concat([pre, json, z]));
}

export async function deserializeIdentity(file: Uint8Array): Promise<EnrolledIdentity> {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buf.length < 12 || buf.readUInt32LE(0) !== MAGIC) throw new Error('identity.bin: bad magic');
  const version = buf.readUInt32LE(4);
  if (version !== IDENTITY_FORMAT_VERSION) throw new Error(`identity.bin: unsupported format version ${version}`);
  const hlen = buf.readUInt32LE(8);
  if (12 + hlen > buf.length) throw new Error('identity.bin: truncated header');
  const h = JSON.parse(buf.subarray(12, 12 + hlen).toString('utf8')) as BinHeader;
  const payload = await inflate(buf.subarray(12 + hlen));
  const sec = (name: Section['name']) => h.sections.find((s) => s.name === name);
  const tex = sec('texture'), lm = sec('landmarks'), hl = sec('humanLandmarks'), emb = sec('embedding');
  if (!tex || !lm || !hl) throw new Error('identity.bin: missing sections');
  if (tex.length !== h.size * h.size * 4 || tex.offset + tex.length > payload.length) throw new Error('identity.bin: bad texture section');
  const texture = new Uint8ClampedArray(tex.length);
  texture.set(payload.subarray(tex.offset, tex.offset + tex.length));
  const landmarks = readF32(payload, lm);
  const humanLandmarks = readF32(payload, hl);
  if (landmarks.length !== LANDMARK_FLOATS || humanLandmarks.length !== LANDMARK_FLOATS) throw new Error('identity.bin: bad landmark sections');
  return {
    size: h.size,
    texture,
    background: texture,
    landmarks,
    humanLandmarks,
    mesh: { triangles: FACE_TRIANGLES, vertexCount: 468 },
    embedding: emb ? readF32(payload, emb) : undefined,
    faceCount: h.faceCount,
    crop: h.crop,
    sourceWidth: h.sourceWidth,
    sourceHeight: h.sourceHeight,
    angles: h.angles,
  };
}
