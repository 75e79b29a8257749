/**
 * Versioned binary container for trained per-identity models (issue 8).
 *
 * Generic on purpose: it stores a `kind` string, a JSON metadata object and named typed tensors,
 * and knows nothing about Gaussians. Pure TypeScript over Uint8Array/DataView (browser + Node);
 * file I/O lives in ./assetFile.ts.
 *
 * ## Byte layout (version 1, all integers little-endian)
 *
 * ```
 * offset             size  field
 * 0                  4     magic, ASCII 'AVGS'
 * 4                  2     version u16 (= 1)
 * 6                  2     flags u16 (no flags are defined in v1: must be 0)
 * 8                  4     total length u32: the whole file, CRC included
 * 12                 4     header length u32: H, the byte length of the JSON header
 * 16                 H     header, UTF-8 JSON:
 *                            { "kind": string, "metadata": {…},
 *                              "tensors": [{ "name", "shape": [d0, …], "quant",
 *                                            "offset", "byteLength" }, …] }
 *                          `offset` is relative to the payload start P and a multiple of 8
 * 16+H               pad   zero bytes up to P = align8(16 + H)
 * P                  …     payload: each tensor's block at P + offset, blocks 8-byte aligned,
 *                          zero padding between blocks and after the last one (to a multiple of 8)
 * total − 4          4     CRC-32 (IEEE 802.3, as zlib's crc32) of bytes [0, total − 4)
 * ```
 *
 * A tensor block holds n = product(shape) elements in row-major order:
 * - `f32`: n × f32 (exact).
 * - `f16`: n × IEEE-754 binary16 bit patterns (u16), round-to-nearest-even. Finite values beyond
 *   the half range are clamped to ±65504 instead of becoming ±Inf, so a slightly out-of-range
 *   weight stays a usable number rather than poisoning the render; magnitudes below 2^-24 flush
 *   towards zero through the subnormals.
 * - `q16` / `q8`: linear quantisation per channel, where the channels are the entries of the
 *   LAST axis (C = shape[rank − 1]; each column of a [rows, C] matrix gets its own range). The
 *   block starts with C × f32 minima, then C × f32 maxima, then n × u16 / u8 codes
 *   q = round((v − min) / (max − min) · L), L = 65535 / 255; decoded as min + q · (max − min) / L.
 *   A constant column (min == max) stores q = 0 and decodes exactly. A 1-D tensor [n] therefore
 *   has n channels (exact but 8 bytes of range per value): use shape [n, 1] for one shared range.
 * - `u8` / `u16` / `u32`: n raw unsigned integers.
 *
 * ## Why the checks run in this order
 * Each stage may only trust what the earlier stages verified, so the error code names the first
 * thing that is actually wrong: length ≥ fixed header + CRC (TRUNCATED) → magic (BAD_MAGIC) →
 * version (UNSUPPORTED_VERSION) → stated total length vs actual (shorter: TRUNCATED, longer:
 * CORRUPT) → CRC (CORRUPT) → flags, header length, UTF-8, JSON, schema (BAD_LAYOUT) → tensor
 * layout: names unique, shapes positive, element budget, alignment, bounds, overlap, exact byte
 * lengths (BAD_LAYOUT) → caller's expectations (WRONG_KIND / MISSING_TENSOR / BAD_LAYOUT) →
 * payload values: finite floats, finite ordered ranges (BAD_LAYOUT). Only then is anything
 * returned; nothing is allocated from a length that has not been checked against the real size.
 */
import { z } from 'zod';
import { crc32 } from '../../protocol/src/crc32.ts';

export { crc32 };

export const ASSET_MAGIC = 'AVGS';
export const ASSET_VERSION = 1;
/** versions this build can read (the UNSUPPORTED_VERSION message lists them) */
export const SUPPORTED_ASSET_VERSIONS: readonly number[] = [1];

/** magic(4) + version(2) + flags(2) + total length(4) + header length(4) */
export const ASSET_FIXED_HEADER_BYTES = 16;
const CRC_BYTES = 4;
/** the smallest well-formed file would still need the fixed header and the CRC */
const MIN_FILE_BYTES = ASSET_FIXED_HEADER_BYTES + CRC_BYTES;
const ALIGN = 8;

/** Upper bounds that keep a hostile or corrupt file from making us allocate without limit. */
export const ASSET_LIMITS = {
  /** all tensors together (50 M elements ≈ 200 MB as f32 once decoded) */
  maxTotalElements: 50_000_000,
  maxTensors: 4096,
  maxRank: 8,
  maxNameLength: 256,
  maxKindLength: 256,
  maxHeaderBytes: 16 * 1024 * 1024,
  maxMetadataDepth: 64,
} as const;

export type Quant = 'f32' | 'f16' | 'q16' | 'q8' | 'u8' | 'u16' | 'u32';
export const QUANTS: readonly Quant[] = ['f32', 'f16', 'q16', 'q8', 'u8', 'u16', 'u32'];

export type AssetData = Float32Array | Uint8Array | Uint16Array | Uint32Array;

export interface AssetTensorInput {
  name: string;
  shape: number[];
  data: AssetData;
  quant: Quant;
}

/** Decoded tensor: float quant kinds → Float32Array (dequantised); u8/u16/u32 → their typed arrays. */
export interface AssetTensor {
  name: string;
  shape: number[];
  quant: Quant;
  data: AssetData;
}

export interface AssetContents {
  kind: string;
  metadata: Record<string, unknown>;
  tensors: Map<string, AssetTensor>;
}

/** What the caller requires of a file; checked after the structure is known to be sound. */
export interface AssetExpect {
  kind?: string;
  /** shape: null = any size in that axis (the rank must still match); quant: allowed kinds */
  tensors?: Record<string, { shape?: (number | null)[]; quant?: readonly Quant[] }>;
}

export type AssetErrorCode =
  | 'TRUNCATED'
  | 'BAD_MAGIC'
  | 'UNSUPPORTED_VERSION'
  | 'CORRUPT'
  | 'BAD_LAYOUT'
  | 'WRONG_KIND'
  | 'MISSING_TENSOR'
  /** readAssetFile: the file is above the size cap (checked before reading it) */
  | 'TOO_LARGE';

export class AssetFormatError extends Error {
  readonly code: AssetErrorCode;
  constructor(code: AssetErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'AssetFormatError';
    this.code = code;
  }
}

/** Header entry as stored in the JSON header. */
export interface AssetTensorEntry {
  name: string;
  shape: number[];
  quant: Quant;
  /** relative to the payload start, multiple of 8 */
  offset: number;
  byteLength: number;
}

/** Everything decodeAsset knows once structure and CRC are verified, before touching values. */
export interface AssetHeader {
  version: number;
  totalLength: number;
  payloadStart: number;
  payloadLength: number;
  kind: string;
  metadata: Record<string, unknown>;
  tensors: AssetTensorEntry[];
}

// ---------------------------------------------------------------------------------------------
// element sizes, quantisation error

const ELEMENT_BYTES: Record<Quant, number> = { f32: 4, f16: 2, q16: 2, q8: 1, u8: 1, u16: 2, u32: 4 };
const LEVELS = { q8: 255, q16: 65535 } as const;
const UINT_MAX = { u8: 0xff, u16: 0xffff, u32: 0xffffffff } as const;
const F16_MAX = 65504;

function isFloatQuant(q: Quant): q is 'f32' | 'f16' | 'q16' | 'q8' {
  return q === 'f32' || q === 'f16' || q === 'q16' || q === 'q8';
}

function isRangeQuant(q: Quant): q is 'q16' | 'q8' {
  return q === 'q16' || q === 'q8';
}

/** channels of a q8/q16 tensor: the size of the last axis */
function channelsOf(shape: readonly number[]): number {
  return shape[shape.length - 1]!;
}

/** bytes a tensor block occupies (without the alignment padding after it) */
export function tensorByteLength(quant: Quant, shape: readonly number[]): number {
  const n = shape.reduce((a, b) => a * b, 1);
  return n * ELEMENT_BYTES[quant] + (isRangeQuant(quant) ? channelsOf(shape) * 8 : 0);
}

/**
 * Upper bound on |decoded − original| for any f32 value in [min, max] stored with `quant`
 * (for q8/q16: [min, max] is the channel's range). f32 and the integer kinds are exact (0).
 * q8/q16: half a quantisation step, plus the rounding of the dequantised value back to f32
 * (≤ 2^-24·max|v|; doubled to cover the double-precision arithmetic, plus the f32 subnormal
 * spacing). f16: half an ulp of binary16 at the largest magnitude, or the clamp distance for
 * magnitudes above 65504.
 */
export function quantError(quant: Quant, min: number, max: number): number {
  if (!QUANTS.includes(quant)) throw new TypeError(`quantError: unknown quant ${String(quant)}`);
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) {
    throw new TypeError(`quantError: need finite min <= max, got [${min}, ${max}]`);
  }
  const m = Math.max(Math.abs(min), Math.abs(max));
  switch (quant) {
    case 'q8':
    case 'q16':
      return max === min ? 0 : (max - min) / (2 * LEVELS[quant]) + m * 2 ** -23 + 2 ** -149;
    case 'f16': {
      if (m > F16_MAX) return Math.max(m - F16_MAX, 16);
      if (m < 2 ** -14) return 2 ** -25; // subnormal spacing is 2^-24
      let e = Math.floor(Math.log2(m));
      if (2 ** e > m) e--;
      if (2 ** (e + 1) <= m) e++;
      return 2 ** (e - 11); // binade [2^e, 2^(e+1)) has ulp 2^(e-10)
    }
    default:
      return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// CRC-32: protocol/src/crc32.ts (shared with the clip upload)

// ---------------------------------------------------------------------------------------------
// binary16

/** f32 → f16 bits, round-to-nearest-even, overflow clamped to ±65504 (input must be finite). */
function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  // 0x477ff000 = 65520, the midpoint between 65504 and 2^16: from here on rounding would give Inf
  if (abs >= 0x477ff000) return sign | 0x7bff;
  if (abs >= 0x38800000) {
    // normal half: rebias the exponent (127 → 15), keep 10 mantissa bits, round on the other 13;
    // a carry out of the mantissa correctly bumps the exponent
    let h = (((abs >>> 23) - 112) << 10) | ((abs >>> 13) & 0x3ff);
    const rest = abs & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
    return sign | h;
  }
  if (abs < 0x33000000) return sign; // below 2^-25: rounds to (signed) zero
  // subnormal half: value / 2^-24, computed from the f32 fields (implicit bit restored)
  const e = abs >>> 23; // 102..112
  const mant = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - e; // value = mant · 2^(e-150) = (mant >> (126 - e)) · 2^-24
  let h = mant >>> shift;
  const rest = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && h & 1)) h++; // h may become 0x400, the smallest normal
  return sign | h;
}

let F16_TABLE: Float32Array | null = null;
/** all 65536 binary16 values as f32 (256 KB, built on first use): decode is one lookup per value */
function f16Table(): Float32Array {
  if (F16_TABLE) return F16_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  F16_TABLE = t;
  return t;
}

// ---------------------------------------------------------------------------------------------
// little-endian typed-array I/O (direct memcpy on little-endian hosts, DataView elsewhere)

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function writeTyped(out: Uint8Array, pos: number, a: Float32Array | Uint16Array | Uint32Array | Uint8Array): void {
  if (LITTLE_ENDIAN || a.BYTES_PER_ELEMENT === 1) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), pos);
    return;
  }
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (a instanceof Float32Array) for (let i = 0; i < a.length; i++) dv.setFloat32(pos + 4 * i, a[i]!, true);
  else if (a instanceof Uint16Array) for (let i = 0; i < a.length; i++) dv.setUint16(pos + 2 * i, a[i]!, true);
  else for (let i = 0; i < a.length; i++) dv.setUint32(pos + 4 * i, a[i]!, true);
}

/**
 * A copy of bytes[pos, pos + len) in its own ArrayBuffer (offset 0, so any typed view is aligned).
 * Not bytes.slice(): on a Node Buffer that is a view into the shared pool, not a copy.
 */
function copyBytes(bytes: Uint8Array, pos: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  out.set(bytes.subarray(pos, pos + len));
  return out;
}

/** a fresh (never aliasing the input) typed array read from bytes[pos …] */
function readF32(bytes: Uint8Array, pos: number, n: number): Float32Array {
  if (LITTLE_ENDIAN) return new Float32Array(copyBytes(bytes, pos, 4 * n).buffer);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = dv.getFloat32(pos + 4 * i, true);
  return a;
}
function readU16(bytes: Uint8Array, pos: number, n: number): Uint16Array {
  if (LITTLE_ENDIAN) return new Uint16Array(copyBytes(bytes, pos, 2 * n).buffer);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const a = new Uint16Array(n);
  for (let i = 0; i < n; i++) a[i] = dv.getUint16(pos + 2 * i, true);
  return a;
}
function readU32(bytes: Uint8Array, pos: number, n: number): Uint32Array {
  if (LITTLE_ENDIAN) return new Uint32Array(copyBytes(bytes, pos, 4 * n).buffer);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = dv.getUint32(pos + 4 * i, true);
  return a;
}

const align8 = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

// ---------------------------------------------------------------------------------------------
// encode

/** metadata must survive JSON unchanged: what you save is what you load */
function checkJsonValue(v: unknown, where: string, depth: number): void {
  if (depth > ASSET_LIMITS.maxMetadataDepth) throw new TypeError(`encodeAsset: metadata nested deeper than ${ASSET_LIMITS.maxMetadataDepth} at ${where}`);
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`encodeAsset: metadata ${where} is ${v} (JSON would turn it into null)`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkJsonValue(x, `${where}[${i}]`, depth + 1));
    return;
  }
  if (typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) checkJsonValue(x, `${where}.${k}`, depth + 1);
    return;
  }
  throw new TypeError(`encodeAsset: metadata ${where} is not a JSON value (${typeof v})`);
}

function checkShape(shape: unknown, what: string): number {
  if (!Array.isArray(shape) || shape.length < 1 || shape.length > ASSET_LIMITS.maxRank) {
    throw new TypeError(`${what}: shape must be an array of 1..${ASSET_LIMITS.maxRank} dimensions`);
  }
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || (d as number) < 1) throw new TypeError(`${what}: shape ${JSON.stringify(shape)} must hold positive integers`);
    n *= d as number;
    if (n > ASSET_LIMITS.maxTotalElements) throw new TypeError(`${what}: more than ${ASSET_LIMITS.maxTotalElements} elements`);
  }
  return n;
}

/** round-to-nearest codes; a constant column has inv = 0, so all its codes are 0 */
function quantise<T extends Uint8Array | Uint16Array>(data: Float32Array, C: number, mins: Float32Array, inv: Float64Array, q: T, L: number): T {
  const n = data.length;
  for (let i = 0; i < n; i += C) {
    for (let c = 0; c < C; c++) {
      // the argument is ≥ 0 (v ≥ min), so truncating x + 0.5 is round-half-up, faster than Math.round
      const k = ((data[i + c]! - mins[c]!) * inv[c]! + 0.5) | 0;
      q[i + c] = k > L ? L : k;
    }
  }
  return q;
}

function dequantise(q: ArrayLike<number>, C: number, mins: Float64Array, steps: Float64Array): Float32Array {
  const n = q.length;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i += C) {
    for (let c = 0; c < C; c++) a[i + c] = mins[c]! + q[i + c]! * steps[c]!;
  }
  return a;
}

/** values → the exact bytes of one tensor block (ranges first for q8/q16) */
function encodeBlock(t: AssetTensorInput, out: Uint8Array, pos: number): void {
  const { data, quant, name } = t;
  const n = data.length;
  if (quant === 'u8' || quant === 'u16' || quant === 'u32') {
    const Ctor = quant === 'u8' ? Uint8Array : quant === 'u16' ? Uint16Array : Uint32Array;
    let ints: Uint8Array | Uint16Array | Uint32Array;
    if (data instanceof Ctor) ints = data;
    else if (data instanceof Float32Array) {
      const max = UINT_MAX[quant];
      ints = new Ctor(n);
      for (let i = 0; i < n; i++) {
        const v = data[i]!;
        if (!Number.isInteger(v) || v < 0 || v > max) throw new TypeError(`encodeAsset: tensor '${name}' [${i}] = ${v} is not an integer in 0..${max} (${quant})`);
        ints[i] = v;
      }
    } else throw new TypeError(`encodeAsset: tensor '${name}' (${quant}) needs a ${Ctor.name} or a Float32Array of integers`);
    writeTyped(out, pos, ints);
    return;
  }
  if (!(data instanceof Float32Array)) throw new TypeError(`encodeAsset: tensor '${name}' (${quant}) needs a Float32Array`);
  // a model with NaN/Inf must never be saved: it would load "successfully" and render garbage
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(data[i]!)) throw new TypeError(`encodeAsset: tensor '${name}' [${i}] is ${data[i]} (non-finite values cannot be saved)`);
  }
  if (quant === 'f32') {
    writeTyped(out, pos, data);
    return;
  }
  if (quant === 'f16') {
    const bits = new Uint32Array(data.buffer, data.byteOffset, n);
    const h = new Uint16Array(n);
    for (let i = 0; i < n; i++) h[i] = f32BitsToF16(bits[i]!);
    writeTyped(out, pos, h);
    return;
  }
  // q8 / q16: per-channel (last axis) range
  const C = channelsOf(t.shape);
  const rows = n / C;
  const L = LEVELS[quant];
  const mins = new Float32Array(C).fill(Infinity);
  const maxs = new Float32Array(C).fill(-Infinity);
  for (let r = 0, i = 0; r < rows; r++) {
    for (let c = 0; c < C; c++, i++) {
      const v = data[i]!;
      if (v < mins[c]!) mins[c] = v;
      if (v > maxs[c]!) maxs[c] = v;
    }
  }
  const inv = new Float64Array(C);
  for (let c = 0; c < C; c++) inv[c] = maxs[c]! > mins[c]! ? L / (maxs[c]! - mins[c]!) : 0;
  // separate monomorphic loops per code width: a Uint8Array|Uint16Array union here is ~3× slower
  const q = quant === 'q8' ? quantise(data, C, mins, inv, new Uint8Array(n), L) : quantise(data, C, mins, inv, new Uint16Array(n), L);
  writeTyped(out, pos, mins);
  writeTyped(out, pos + 4 * C, maxs);
  writeTyped(out, pos + 8 * C, q);
}

/** Serialise a model. Throws TypeError for bad arguments (including NaN/Inf in float data). */
export function encodeAsset(kind: string, metadata: Record<string, unknown>, tensors: AssetTensorInput[]): Uint8Array {
  if (typeof kind !== 'string' || kind.length < 1 || kind.length > ASSET_LIMITS.maxKindLength) {
    throw new TypeError(`encodeAsset: kind must be a string of 1..${ASSET_LIMITS.maxKindLength} characters`);
  }
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) throw new TypeError('encodeAsset: metadata must be a plain object');
  checkJsonValue(metadata, 'metadata', 0);
  if (!Array.isArray(tensors)) throw new TypeError('encodeAsset: tensors must be an array');
  if (tensors.length > ASSET_LIMITS.maxTensors) throw new TypeError(`encodeAsset: more than ${ASSET_LIMITS.maxTensors} tensors`);

  const names = new Set<string>();
  const entries: AssetTensorEntry[] = [];
  let totalElements = 0;
  let offset = 0;
  for (const t of tensors) {
    if (t === null || typeof t !== 'object') throw new TypeError('encodeAsset: each tensor must be an object');
    const { name, quant } = t;
    if (typeof name !== 'string' || name.length < 1 || name.length > ASSET_LIMITS.maxNameLength) {
      throw new TypeError(`encodeAsset: tensor name must be a string of 1..${ASSET_LIMITS.maxNameLength} characters`);
    }
    if (names.has(name)) throw new TypeError(`encodeAsset: duplicate tensor name '${name}'`);
    names.add(name);
    if (!QUANTS.includes(quant)) throw new TypeError(`encodeAsset: tensor '${name}' has unknown quant ${String(quant)}`);
    const n = checkShape(t.shape, `encodeAsset: tensor '${name}'`);
    if (!(t.data instanceof Float32Array || t.data instanceof Uint8Array || t.data instanceof Uint16Array || t.data instanceof Uint32Array)) {
      throw new TypeError(`encodeAsset: tensor '${name}' data must be a Float32Array, Uint8Array, Uint16Array or Uint32Array`);
    }
    if (t.data.length !== n) throw new TypeError(`encodeAsset: tensor '${name}' has ${t.data.length} values for shape ${JSON.stringify(t.shape)} (${n})`);
    totalElements += n;
    if (totalElements > ASSET_LIMITS.maxTotalElements) throw new TypeError(`encodeAsset: more than ${ASSET_LIMITS.maxTotalElements} elements in all`);
    const byteLength = tensorByteLength(quant, t.shape);
    entries.push({ name, shape: [...t.shape], quant, offset, byteLength });
    offset = align8(offset + byteLength);
  }
  const payloadLength = offset;
  const header = new TextEncoder().encode(JSON.stringify({ kind, metadata, tensors: entries }));
  if (header.length > ASSET_LIMITS.maxHeaderBytes) throw new TypeError(`encodeAsset: JSON header is ${header.length} bytes (limit ${ASSET_LIMITS.maxHeaderBytes})`);
  const payloadStart = align8(ASSET_FIXED_HEADER_BYTES + header.length);
  const total = payloadStart + payloadLength + CRC_BYTES;
  if (total > 0xffffffff) throw new TypeError(`encodeAsset: asset would be ${total} bytes (limit 4 GiB)`);

  const out = new Uint8Array(total); // zero-filled: all padding is 0
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = ASSET_MAGIC.charCodeAt(i);
  dv.setUint16(4, ASSET_VERSION, true);
  dv.setUint16(6, 0, true);
  dv.setUint32(8, total, true);
  dv.setUint32(12, header.length, true);
  out.set(header, ASSET_FIXED_HEADER_BYTES);
  tensors.forEach((t, i) => encodeBlock(t, out, payloadStart + entries[i]!.offset));
  dv.setUint32(total - CRC_BYTES, crc32(out, 0, total - CRC_BYTES), true);
  return out;
}

// ---------------------------------------------------------------------------------------------
// decode

const HeaderSchema = z
  .object({
    kind: z.string().min(1).max(ASSET_LIMITS.maxKindLength),
    metadata: z.record(z.string(), z.unknown()),
    tensors: z
      .array(
        z
          .object({
            name: z.string().min(1).max(ASSET_LIMITS.maxNameLength),
            shape: z.array(z.number().int().min(1).max(ASSET_LIMITS.maxTotalElements)).min(1).max(ASSET_LIMITS.maxRank),
            quant: z.enum(['f32', 'f16', 'q16', 'q8', 'u8', 'u16', 'u32']),
            offset: z.number().int().min(0),
            byteLength: z.number().int().min(0),
          })
          .strict(),
      )
      .max(ASSET_LIMITS.maxTensors),
  })
  .strict();

const fail = (code: AssetErrorCode, message: string): never => {
  throw new AssetFormatError(code, message);
};

/**
 * Verify everything except the tensor values (size, magic, version, length, CRC, header schema,
 * layout) and return the parsed header. Cheap: no tensor is decoded.
 */
export function inspectAsset(bytes: Uint8Array): AssetHeader {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('decodeAsset: bytes must be a Uint8Array');
  const len = bytes.length;
  if (len < MIN_FILE_BYTES) fail('TRUNCATED', `asset is ${len} bytes, shorter than the ${MIN_FILE_BYTES}-byte minimum (fixed header + CRC)`);
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== ASSET_MAGIC.charCodeAt(i)) {
      const got = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
      fail('BAD_MAGIC', `not an avatar asset: magic bytes are ${got}, expected '${ASSET_MAGIC}'`);
    }
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, len);
  const version = dv.getUint16(4, true);
  if (!SUPPORTED_ASSET_VERSIONS.includes(version)) {
    fail('UNSUPPORTED_VERSION', `asset format version ${version}; this build reads version ${SUPPORTED_ASSET_VERSIONS.join(', ')}`);
  }
  const total = dv.getUint32(8, true);
  if (len < total) fail('TRUNCATED', `asset is ${len} bytes but its header says ${total}: the file was cut short`);
  if (len > total) fail('CORRUPT', `asset is ${len} bytes but its header says ${total}: trailing bytes or a damaged length field`);
  const stored = dv.getUint32(total - CRC_BYTES, true);
  const actual = crc32(bytes, 0, total - CRC_BYTES);
  if (stored !== actual) fail('CORRUPT', `checksum mismatch (stored ${hex(stored)}, computed ${hex(actual)}): the file is damaged`);

  // from here on the bytes are what the writer wrote: failures are writer bugs or tampering
  const flags = dv.getUint16(6, true);
  if (flags !== 0) fail('BAD_LAYOUT', `unknown flags ${hex(flags)} (version ${version} defines none)`);
  const headerLength = dv.getUint32(12, true);
  if (headerLength > ASSET_LIMITS.maxHeaderBytes || ASSET_FIXED_HEADER_BYTES + headerLength > total - CRC_BYTES) {
    fail('BAD_LAYOUT', `header length ${headerLength} does not fit in a ${total}-byte asset`);
  }
  const payloadStart = align8(ASSET_FIXED_HEADER_BYTES + headerLength);
  if (payloadStart > total - CRC_BYTES) fail('BAD_LAYOUT', `payload would start at ${payloadStart}, past the end of the asset`);
  const payloadLength = total - CRC_BYTES - payloadStart;

  let json: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(ASSET_FIXED_HEADER_BYTES, ASSET_FIXED_HEADER_BYTES + headerLength));
    json = JSON.parse(text);
  } catch (e) {
    fail('BAD_LAYOUT', `header is not UTF-8 JSON: ${(e as Error).message}`);
  }
  const parsed = HeaderSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    fail('BAD_LAYOUT', `header schema: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const header = parsed.data!;

  const seen = new Set<string>();
  let totalElements = 0;
  for (const t of header.tensors) {
    if (seen.has(t.name)) fail('BAD_LAYOUT', `duplicate tensor name '${t.name}'`);
    seen.add(t.name);
    let n = 1;
    for (const d of t.shape) {
      n *= d;
      if (n > ASSET_LIMITS.maxTotalElements) break;
    }
    totalElements += n;
    if (totalElements > ASSET_LIMITS.maxTotalElements) fail('BAD_LAYOUT', `more than ${ASSET_LIMITS.maxTotalElements} elements in all (tensor '${t.name}')`);
    if (t.offset % ALIGN !== 0) fail('BAD_LAYOUT', `tensor '${t.name}' offset ${t.offset} is not ${ALIGN}-byte aligned`);
    const want = tensorByteLength(t.quant, t.shape);
    if (t.byteLength !== want) fail('BAD_LAYOUT', `tensor '${t.name}' is ${t.byteLength} bytes, but ${t.quant} ${JSON.stringify(t.shape)} needs ${want}`);
    if (t.offset + t.byteLength > payloadLength) {
      fail('BAD_LAYOUT', `tensor '${t.name}' [${t.offset}, ${t.offset + t.byteLength}) lies outside the ${payloadLength}-byte payload`);
    }
  }
  const byOffset = [...header.tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const a = byOffset[i - 1]!;
    const b = byOffset[i]!;
    if (a.offset + a.byteLength > b.offset) fail('BAD_LAYOUT', `tensors '${a.name}' and '${b.name}' overlap`);
  }
  return {
    version,
    totalLength: total,
    payloadStart,
    payloadLength,
    kind: header.kind,
    // the object JSON.parse built, not zod's copy: a '__proto__' key stays an ordinary own key
    metadata: (json as { metadata: Record<string, unknown> }).metadata,
    tensors: header.tensors,
  };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function checkExpect(h: AssetHeader, expect: AssetExpect): void {
  if (expect === null || typeof expect !== 'object') throw new TypeError('decodeAsset: expect must be an object');
  if (expect.kind !== undefined) {
    if (typeof expect.kind !== 'string') throw new TypeError('decodeAsset: expect.kind must be a string');
    if (h.kind !== expect.kind) fail('WRONG_KIND', `asset kind is '${h.kind}', expected '${expect.kind}'`);
  }
  if (expect.tensors === undefined) return;
  if (expect.tensors === null || typeof expect.tensors !== 'object') throw new TypeError('decodeAsset: expect.tensors must be an object');
  const byName = new Map(h.tensors.map((t) => [t.name, t]));
  for (const [name, spec] of Object.entries(expect.tensors)) {
    const t = byName.get(name);
    if (!t) fail('MISSING_TENSOR', `asset '${h.kind}' has no tensor '${name}' (it has: ${[...byName.keys()].join(', ') || 'none'})`);
    if (spec?.shape !== undefined) {
      if (!Array.isArray(spec.shape) || spec.shape.some((d) => d !== null && !(Number.isSafeInteger(d) && d >= 1))) {
        throw new TypeError(`decodeAsset: expect.tensors.${name}.shape must hold positive integers or null`);
      }
      const ok = spec.shape.length === t!.shape.length && spec.shape.every((d, i) => d === null || d === t!.shape[i]);
      const want = JSON.stringify(spec.shape.map((d) => (d === null ? '*' : d)));
      if (!ok) fail('BAD_LAYOUT', `tensor '${name}' has shape ${JSON.stringify(t!.shape)}, expected ${want}`);
    }
    if (spec?.quant !== undefined && !spec.quant.includes(t!.quant)) {
      fail('BAD_LAYOUT', `tensor '${name}' is stored as ${t!.quant}, expected one of ${spec.quant.join(', ')}`);
    }
  }
}

function decodeBlock(bytes: Uint8Array, pos: number, t: AssetTensorEntry): AssetData {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const bad = (what: string): never => fail('BAD_LAYOUT', `tensor '${t.name}' holds ${what}`);
  switch (t.quant) {
    case 'u8':
      return copyBytes(bytes, pos, n);
    case 'u16':
      return readU16(bytes, pos, n);
    case 'u32':
      return readU32(bytes, pos, n);
    case 'f32': {
      const a = readF32(bytes, pos, n);
      for (let i = 0; i < n; i++) if (!Number.isFinite(a[i]!)) bad(`a non-finite value at [${i}]`);
      return a;
    }
    case 'f16': {
      const h = readU16(bytes, pos, n);
      const table = f16Table();
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = h[i]!;
        // exponent all ones = Inf/NaN: the encoder never writes them (it clamps), so it is tampering
        if ((v & 0x7c00) === 0x7c00) bad(`a non-finite f16 value at [${i}]`);
        a[i] = table[v]!;
      }
      return a;
    }
    case 'q8':
    case 'q16': {
      const C = channelsOf(t.shape);
      const ranges = readF32(bytes, pos, 2 * C);
      const L = LEVELS[t.quant];
      const mins = new Float64Array(C);
      const steps = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        const lo = ranges[c]!;
        const hi = ranges[C + c]!;
        if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) bad(`an invalid range [${lo}, ${hi}] for channel ${c}`);
        mins[c] = lo;
        steps[c] = (hi - lo) / L;
      }
      const codes = pos + 8 * C;
      return t.quant === 'q8' ? dequantise(bytes.subarray(codes, codes + n), C, mins, steps) : dequantise(readU16(bytes, codes, n), C, mins, steps);
    }
  }
}

/**
 * Parse and fully validate an asset. Nothing is returned unless every check passed; errors are
 * AssetFormatError with a code (see the order at the top of this file), bad arguments TypeError.
 * The returned arrays never alias `bytes`.
 */
export function decodeAsset(bytes: Uint8Array, expect?: AssetExpect): AssetContents {
  const h = inspectAsset(bytes);
  if (expect !== undefined) checkExpect(h, expect);
  const tensors = new Map<string, AssetTensor>();
  for (const t of h.tensors) {
    tensors.set(t.name, { name: t.name, shape: [...t.shape], quant: t.quant, data: decodeBlock(bytes, h.payloadStart + t.offset, t) });
  }
  return { kind: h.kind, metadata: h.metadata, tensors };
}
