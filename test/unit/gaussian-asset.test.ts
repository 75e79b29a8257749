/** Versioned binary asset container for per-identity models (models/gaussian/asset.ts, assetFile.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  ASSET_MAGIC,
  ASSET_VERSION,
  ASSET_FIXED_HEADER_BYTES,
  AssetFormatError,
  QUANTS,
  crc32,
  decodeAsset,
  encodeAsset,
  inspectAsset,
  quantError,
  type AssetErrorCode,
  type AssetTensorInput,
  type Quant,
} from '../../models/gaussian/asset.ts';
import { readAssetFile, writeAssetFile } from '../../models/gaussian/assetFile.ts';

/** deterministic uniform [0, 1) */
function rng(seed = 1): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** rows × cols with a different scale and offset per column, like Gaussian parameters */
function matrix(rows: number, cols: number, seed = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < cols; c++) a[i * cols + c] = (r() - 0.5) * 2 ** ((c % 9) - 4) + c * 0.1;
  }
  return a;
}

function sampleAsset(): Uint8Array {
  return encodeAsset('gaussian-head', { identity: 'alice', gaussians: 50, trainedAt: '2026-12-01', nested: { a: [1, 2, null, true] } }, [
    { name: 'position', shape: [50, 3], data: matrix(50, 3, 2), quant: 'q16' },
    { name: 'scale', shape: [50, 3], data: matrix(50, 3, 3), quant: 'f16' },
    { name: 'opacity', shape: [50, 1], data: matrix(50, 1, 4), quant: 'q8' },
    { name: 'rotation', shape: [50, 4], data: matrix(50, 4, 5), quant: 'f32' },
    { name: 'parent', shape: [50], data: new Uint16Array(50).map((_, i) => i * 7), quant: 'u16' },
  ]);
}

/** assert that decoding throws an AssetFormatError (never returns contents) and give its code */
function decodeError(bytes: Uint8Array, expect?: Parameters<typeof decodeAsset>[1], what = ''): AssetFormatError {
  let result: unknown;
  try {
    result = decodeAsset(bytes, expect);
  } catch (e) {
    assert.ok(e instanceof AssetFormatError, `expected AssetFormatError, got ${String(e)}`);
    return e;
  }
  assert.fail(`${what ? what + ': ' : ''}decodeAsset returned contents (${typeof result}) instead of throwing`);
}

/** split an asset into its JSON header and payload, let `edit` change them, and re-seal it (valid CRC) */
function reseal(
  bytes: Uint8Array,
  edit: (header: { kind: string; metadata: Record<string, unknown>; tensors: Record<string, unknown>[] }, payload: Uint8Array) => Uint8Array | void,
  headerText?: (json: string) => string | Uint8Array,
  flags = 0,
): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = dv.getUint32(12, true);
  const payloadStart = Math.ceil((16 + hlen) / 8) * 8;
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + hlen)));
  let payload: Uint8Array = bytes.slice(payloadStart, bytes.length - 4);
  payload = edit(header, payload) ?? payload;
  const json = JSON.stringify(header);
  const edited = headerText ? headerText(json) : json;
  const h = typeof edited === 'string' ? new TextEncoder().encode(edited) : edited;
  const start = Math.ceil((16 + h.length) / 8) * 8;
  const out = new Uint8Array(start + payload.length + 4);
  out.set(bytes.subarray(0, 16));
  const odv = new DataView(out.buffer);
  odv.setUint16(6, flags, true);
  odv.setUint32(8, out.length, true);
  odv.setUint32(12, h.length, true);
  out.set(h, 16);
  out.set(payload, start);
  odv.setUint32(out.length - 4, crc32(out, 0, out.length - 4), true);
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('every quant kind round-trips within quantError, keeping kind, shapes and metadata', () => {
  const rows = 400;
  const cols = 7;
  const data = matrix(rows, cols, 9);
  // one constant column: q8/q16 must reproduce it exactly (min == max)
  for (let i = 0; i < rows; i++) data[i * cols + 3] = 0.3;
  const ints = Float32Array.from({ length: rows * cols }, (_, i) => (i * 37) % 256);
  const metadata = { identity: 'bob', params: { sh: 0, channels: [3, 4] }, note: 'ünïcødé ✓', ok: true, none: null };
  const tensors: AssetTensorInput[] = [
    { name: 'f32', shape: [rows, cols], data, quant: 'f32' },
    { name: 'f16', shape: [rows, cols], data, quant: 'f16' },
    { name: 'q16', shape: [rows, cols], data, quant: 'q16' },
    { name: 'q8', shape: [rows, cols], data, quant: 'q8' },
    { name: 'q8-3d', shape: [20, 20, cols], data, quant: 'q8' },
    { name: 'u8', shape: [rows, cols], data: ints, quant: 'u8' },
    { name: 'u16', shape: [rows * cols], data: Uint16Array.from(ints, (v) => v * 250), quant: 'u16' },
    { name: 'u32', shape: [2, rows * cols / 2], data: Uint32Array.from(ints, (v) => v * 16_000_000 + 7), quant: 'u32' },
    { name: 'u32-from-f32', shape: [3], data: new Float32Array([0, 4294967040, 12]), quant: 'u32' },
  ];
  const out = decodeAsset(encodeAsset('test-kind', metadata, tensors));
  assert.equal(out.kind, 'test-kind');
  assert.deepEqual(out.metadata, metadata);
  assert.deepEqual([...out.tensors.keys()], tensors.map((t) => t.name));
  for (const t of tensors) {
    const got = out.tensors.get(t.name)!;
    assert.deepEqual(got.shape, t.shape);
    assert.equal(got.quant, t.quant);
    assert.equal(got.data.length, t.data.length);
    if (t.quant === 'f32' || t.quant.startsWith('u')) {
      assert.equal(got.data.constructor, t.quant === 'f32' ? Float32Array : { u8: Uint8Array, u16: Uint16Array, u32: Uint32Array }[t.quant as 'u8']);
      assert.deepEqual(Array.from(got.data), Array.from(t.data), `${t.name} is exact`);
      continue;
    }
    assert.ok(got.data instanceof Float32Array);
    const C = t.shape[t.shape.length - 1]!;
    const isRange = t.quant === 'q8' || t.quant === 'q16';
    for (let c = 0; c < C; c++) {
      let lo = Infinity;
      let hi = -Infinity;
      let err = 0;
      for (let i = c; i < t.data.length; i += C) {
        lo = Math.min(lo, t.data[i]!);
        hi = Math.max(hi, t.data[i]!);
      }
      for (let i = c; i < t.data.length; i += C) err = Math.max(err, Math.abs(got.data[i]! - t.data[i]!));
      const bound = quantError(t.quant, lo, hi);
      assert.ok(err <= bound, `${t.name} channel ${c}: error ${err} > bound ${bound}`);
      if (lo === hi && isRange) assert.equal(err, 0, `${t.name} constant channel ${c} is exact`);
    }
  }
  // the bound is tight enough to mean something: q8 is about half a step
  assert.ok(quantError('q8', 0, 1) < 0.0021 && quantError('q16', 0, 1) < 1e-5 && quantError('f16', -1, 1) === 2 ** -11);
  for (const q of ['f32', 'u8', 'u16', 'u32'] as Quant[]) assert.equal(quantError(q, -5, 5), 0);
});

test('f16 is exact for every finite half, rounds to nearest even, keeps subnormals and clamps overflow to ±65504', () => {
  // every finite binary16 value decodes to an f32 that encodes back to the same half
  const halves: number[] = [];
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00) continue;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    halves.push((h & 0x8000 ? -1 : 1) * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15)));
  }
  const all = Float32Array.from(halves);
  const back = decodeAsset(encodeAsset('k', {}, [{ name: 'h', shape: [all.length], data: all, quant: 'f16' }])).tensors.get('h')!.data;
  assert.equal(maxAbsDiff(back, all), 0);
  assert.ok(Object.is(back[halves.findIndex((x) => Object.is(x, -0))], -0), 'negative zero keeps its sign');

  const cases: [number, number][] = [
    [65504, 65504],
    [65519, 65504],
    [70000, 65504],
    [-1e30, -65504],
    [3.4e38, 65504],
    [2 ** -24, 2 ** -24], // smallest subnormal
    [2 ** -25, 0], // tie → even (0)
    [3 * 2 ** -26, 2 ** -24], // above the tie → up
    [1.5 * 2 ** -24, 2 * 2 ** -24], // tie between 1 and 2 subnormal steps → even (2)
    [2.5 * 2 ** -24, 2 * 2 ** -24], // tie between 2 and 3 → even (2)
    [2 ** -14 - 2 ** -26, 2 ** -14], // rounds up out of the subnormals into the smallest normal
    [1 + 2 ** -11, 1], // tie → even mantissa
    [1 + 3 * 2 ** -11, 1 + 2 ** -9], // tie → even (up)
    [1e-10, 0],
    [1 / 3, 0.333251953125],
  ];
  const input = Float32Array.from(cases, ([x]) => x);
  const got = decodeAsset(encodeAsset('k', {}, [{ name: 'v', shape: [cases.length, 1], data: input, quant: 'f16' }])).tensors.get('v')!.data;
  cases.forEach(([x, want], i) => assert.equal(got[i], want, `f16(${x})`));
  assert.equal(quantError('f16', 0, 70000), 70000 - 65504);
});

test('a 2 M-value f16 tensor encodes and decodes quickly', () => {
  const n = 2_000_000;
  const data = matrix(n / 50, 50, 11);
  const t0 = performance.now();
  const bytes = encodeAsset('k', {}, [{ name: 'big', shape: [n / 50, 50], data, quant: 'f16' }]);
  const t1 = performance.now();
  const out = decodeAsset(bytes).tensors.get('big')!.data;
  const t2 = performance.now();
  console.log(`f16 2M values: encode ${(t1 - t0).toFixed(1)} ms, decode ${(t2 - t1).toFixed(1)} ms, ${bytes.length} bytes`);
  assert.equal(out.length, n);
  assert.ok(t2 - t0 < 1000, `encode+decode took ${t2 - t0} ms`);
});

test('a file truncated anywhere (fixed header, JSON header, payload, CRC) is rejected as TRUNCATED', () => {
  const bytes = sampleAsset();
  const hlen = new DataView(bytes.buffer).getUint32(12, true);
  const cuts = new Set<number>([0, 1, 3, 4, 5, 7, 8, 11, 12, 15, 16, 17, 19, 20, 16 + hlen - 1, 16 + hlen, 16 + hlen + 1, bytes.length - 4, bytes.length - 3, bytes.length - 1]);
  const r = rng(7);
  while (cuts.size < 55) cuts.add(Math.floor(r() * bytes.length));
  for (const n of cuts) {
    const e = decodeError(bytes.slice(0, n));
    assert.equal(e.code, 'TRUNCATED', `cut at ${n}/${bytes.length}: ${e.message}`);
  }
  // also when the truncated bytes sit at an odd offset inside a larger buffer
  const big = new Uint8Array(bytes.length + 3);
  big.set(bytes, 3);
  assert.equal(decodeError(big.subarray(3, 3 + bytes.length - 10)).code, 'TRUNCATED');
  assert.equal(decodeAsset(big.subarray(3)).kind, 'gaussian-head');
});

test('decoding a Node Buffer at an odd pool offset gives owned, correct arrays that do not alias it', () => {
  const bytes = sampleAsset();
  const want = decodeAsset(bytes);
  const buf = Buffer.concat([Buffer.alloc(3, 0xaa), Buffer.from(bytes)]).subarray(3);
  assert.ok(buf.byteOffset % 4 !== 0 || buf.buffer.byteLength > buf.length);
  const got = decodeAsset(buf);
  for (const [name, t] of want.tensors) {
    const g = got.tensors.get(name)!;
    assert.deepEqual(Array.from(g.data), Array.from(t.data), name);
    assert.notEqual(g.data.buffer, buf.buffer, `${name} does not alias the input`);
    assert.equal(g.data.byteOffset, 0);
    assert.equal(g.data.buffer.byteLength, g.data.byteLength, `${name} owns exactly its data`);
  }
  assert.deepEqual(got.metadata, want.metadata);
  const proto = decodeAsset(encodeAsset('k', JSON.parse('{"__proto__": {"x": 1}, "y": 2}'), []));
  assert.deepEqual(Object.keys(proto.metadata).sort(), ['__proto__', 'y']);
  assert.equal(Object.getPrototypeOf(proto.metadata), Object.prototype);
});

test('a single flipped bit anywhere is rejected with the code for the field it hit', () => {
  const bytes = sampleAsset();
  const r = rng(13);
  const positions = new Set<number>([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, bytes.length - 1, bytes.length - 4]);
  while (positions.size < 200) positions.add(Math.floor(r() * bytes.length));
  const seen = new Set<AssetErrorCode>();
  for (const pos of positions) {
    const bit = Math.floor(r() * 8);
    const bad = bytes.slice();
    bad[pos]! ^= 1 << bit;
    const e = decodeError(bad);
    seen.add(e.code);
    const want: AssetErrorCode[] =
      pos < 4 ? ['BAD_MAGIC'] : pos < 6 ? ['UNSUPPORTED_VERSION'] : pos >= 8 && pos < 12 ? ['TRUNCATED', 'CORRUPT'] : ['CORRUPT'];
    assert.ok(want.includes(e.code), `bit ${bit} of byte ${pos}: ${e.code} (${e.message}), expected ${want.join('/')}`);
  }
  assert.deepEqual([...seen].sort(), ['BAD_MAGIC', 'CORRUPT', 'TRUNCATED', 'UNSUPPORTED_VERSION']);
  // trailing bytes after a valid asset are corruption too, not silently ignored
  const longer = new Uint8Array(bytes.length + 1);
  longer.set(bytes);
  assert.equal(decodeError(longer).code, 'CORRUPT');
});

test('wrong magic and wrong version are named in clear messages', () => {
  const bytes = sampleAsset();
  assert.equal(ASSET_MAGIC, 'AVGS');
  assert.equal(ASSET_VERSION, 1);
  const png = bytes.slice();
  png.set([0x89, 0x50, 0x4e, 0x47]);
  const m = decodeError(png);
  assert.equal(m.code, 'BAD_MAGIC');
  assert.match(m.message, /89 50 4e 47.*'AVGS'/);
  const v2 = bytes.slice();
  new DataView(v2.buffer).setUint16(4, 2, true);
  const v = decodeError(v2);
  assert.equal(v.code, 'UNSUPPORTED_VERSION');
  assert.match(v.message, /version 2; this build reads version 1/);
  assert.throws(() => decodeAsset('AVGS' as unknown as Uint8Array), TypeError);
});

test('a header with a valid CRC but an impossible layout is BAD_LAYOUT', () => {
  const bytes = sampleAsset();
  assert.equal(decodeAsset(reseal(bytes, () => {})).kind, 'gaussian-head', 'reseal without edits is still valid');
  const cases: [string, Uint8Array][] = [
    ['offset outside the payload', reseal(bytes, (h) => void (h.tensors[1]!.offset = 1 << 20))],
    ['end past the payload', reseal(bytes, (h, p) => void (h.tensors[4]!.offset = p.length - 8))],
    ['overlap', reseal(bytes, (h) => void (h.tensors[1]!.offset = h.tensors[0]!.offset))],
    ['misaligned offset', reseal(bytes, (h) => void (h.tensors[1]!.offset = (h.tensors[1]!.offset as number) + 2))],
    ['byteLength mismatch', reseal(bytes, (h) => void (h.tensors[0]!.byteLength = (h.tensors[0]!.byteLength as number) - 2))],
    ['shape mismatch', reseal(bytes, (h) => void (h.tensors[0]!.shape = [51, 3]))],
    ['zero dimension', reseal(bytes, (h) => void (h.tensors[0]!.shape = [0, 3]))],
    ['fractional dimension', reseal(bytes, (h) => void (h.tensors[0]!.shape = [1.5, 3]))],
    ['too many elements', reseal(bytes, (h) => void (h.tensors[0]!.shape = [50_000, 50_000]))],
    ['duplicate names', reseal(bytes, (h) => void (h.tensors[1]!.name = h.tensors[0]!.name))],
    ['unknown quant', reseal(bytes, (h) => void (h.tensors[0]!.quant = 'bf16'))],
    ['unknown header key', reseal(bytes, (h) => void ((h as Record<string, unknown>).extra = 1))],
    ['metadata not an object', reseal(bytes, (h) => void ((h as Record<string, unknown>).metadata = [1]))],
    ['not JSON', reseal(bytes, () => {}, (j) => j.slice(0, -1))],
    ['not UTF-8', reseal(bytes, () => {}, (j) => {
      const b = new TextEncoder().encode(j); // the header is ASCII, so string index = byte index
      b[j.indexOf('alice')] = 0xff;
      return b;
    })],
    ['nonzero flags', reseal(bytes, () => {}, undefined, 1)],
    ['NaN in an f32 block', reseal(bytes, (h, p) => void new DataView(p.buffer).setFloat32(h.tensors[3]!.offset as number, NaN, true))],
    ['Inf in an f16 block', reseal(bytes, (h, p) => void new DataView(p.buffer).setUint16(h.tensors[1]!.offset as number, 0x7c00, true))],
    ['inverted q16 range', reseal(bytes, (h, p) => void new DataView(p.buffer).setFloat32(h.tensors[0]!.offset as number, 1e9, true))],
  ];
  for (const [what, bad] of cases) {
    const e = decodeError(bad, undefined, what);
    assert.equal(e.code, 'BAD_LAYOUT', `${what}: ${e.code} ${e.message}`);
  }
  // header length pointing past the end of the file (re-CRC'd by hand)
  const huge = bytes.slice();
  const dv = new DataView(huge.buffer);
  dv.setUint32(12, huge.length, true);
  dv.setUint32(huge.length - 4, crc32(huge, 0, huge.length - 4), true);
  assert.equal(decodeError(huge).code, 'BAD_LAYOUT');
});

test('expect rejects the wrong kind, a missing tensor and a wrong shape', () => {
  const bytes = sampleAsset();
  const ok = decodeAsset(bytes, { kind: 'gaussian-head', tensors: { position: { shape: [null, 3] }, parent: { shape: [50], quant: ['u16'] }, opacity: {} } });
  assert.equal(ok.tensors.size, 5);
  const k = decodeError(bytes, { kind: 'audio2motion' });
  assert.equal(k.code, 'WRONG_KIND');
  assert.match(k.message, /'gaussian-head', expected 'audio2motion'/);
  const m = decodeError(bytes, { tensors: { colour: {} } });
  assert.equal(m.code, 'MISSING_TENSOR');
  assert.match(m.message, /colour/);
  assert.equal(decodeError(bytes, { tensors: { position: { shape: [null, 4] } } }).code, 'BAD_LAYOUT');
  assert.equal(decodeError(bytes, { tensors: { position: { shape: [50] } } }).code, 'BAD_LAYOUT', 'rank must match');
  assert.equal(decodeError(bytes, { tensors: { parent: { quant: ['u32'] } } }).code, 'BAD_LAYOUT');
  // a damaged file is reported as damaged, not as the wrong kind
  const bad = bytes.slice();
  bad[bad.length - 10]! ^= 1;
  assert.equal(decodeError(bad, { kind: 'other' }).code, 'CORRUPT');
  assert.throws(() => decodeAsset(bytes, { tensors: { position: { shape: [0, 3] } } }), TypeError);
});

test('encodeAsset refuses NaN/Inf, mismatched shapes, bad integers and non-JSON metadata with TypeError', () => {
  const ok = (over: Partial<AssetTensorInput>): AssetTensorInput[] => [{ name: 't', shape: [2, 2], data: new Float32Array(4), quant: 'f16', ...over }];
  for (const q of ['f32', 'f16', 'q16', 'q8'] as Quant[]) {
    assert.throws(() => encodeAsset('k', {}, ok({ quant: q, data: new Float32Array([0, NaN, 0, 0]) })), TypeError);
    assert.throws(() => encodeAsset('k', {}, ok({ quant: q, data: new Float32Array([0, 0, -Infinity, 0]) })), TypeError);
    assert.throws(() => encodeAsset('k', {}, ok({ quant: q, data: new Uint8Array(4) })), TypeError);
  }
  assert.throws(() => encodeAsset('k', {}, ok({ shape: [2, 3] })), TypeError);
  assert.throws(() => encodeAsset('k', {}, ok({ shape: [4, 0] })), TypeError);
  assert.throws(() => encodeAsset('k', {}, ok({ shape: [] })), TypeError);
  assert.throws(() => encodeAsset('k', {}, ok({ quant: 'bf16' as Quant })), TypeError);
  assert.throws(() => encodeAsset('k', {}, ok({ quant: 'u8', data: new Float32Array([0, 1, 256, 0]) })), TypeError);
  assert.throws(() => encodeAsset('k', {}, ok({ quant: 'u8', data: new Float32Array([0, 1, 0.5, 0]) })), TypeError);
  assert.throws(() => encodeAsset('k', {}, ok({ quant: 'u16', data: new Float32Array([0, -1, 0, 0]) })), TypeError);
  assert.throws(() => encodeAsset('k', {}, ok({ quant: 'u16', data: new Uint32Array(4) })), TypeError);
  assert.throws(() => encodeAsset('k', {}, [...ok({}), ...ok({})]), /duplicate/);
  assert.throws(() => encodeAsset('', {}, []), TypeError);
  assert.throws(() => encodeAsset('k', { lr: NaN }, []), TypeError);
  assert.throws(() => encodeAsset('k', { when: new Date() }, []), TypeError);
  assert.throws(() => encodeAsset('k', { f: undefined }, []), TypeError);
  assert.throws(() => encodeAsset('k', [] as unknown as Record<string, unknown>, []), TypeError);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => encodeAsset('k', cyclic, []), TypeError);
  assert.equal(decodeAsset(encodeAsset('empty', {}, [])).tensors.size, 0);
});

test('writeAssetFile replaces the target atomically and cleans up; readAssetFile caps the size before reading', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'avgs-'));
  try {
    const file = path.join(dir, 'alice.avgs');
    const oldBytes = encodeAsset('gaussian-head', { v: 'old' }, [{ name: 'x', shape: [1000, 8], data: matrix(1000, 8, 1), quant: 'f32' }]);
    const newBytes = encodeAsset('gaussian-head', { v: 'new' }, [{ name: 'x', shape: [3000, 8], data: matrix(3000, 8, 2), quant: 'q16' }]);
    await writeAssetFile(file, oldBytes);
    assert.deepEqual(fs.readdirSync(dir), ['alice.avgs'], 'no temp file after success');
    assert.equal((await readAssetFile(file)).metadata.v, 'old');

    // mid-write: the complete new content sits in a temp file while the target is still the old one
    await writeAssetFile(file, newBytes, {
      beforeRename: async (temp) => {
        assert.equal(path.dirname(temp), dir, 'temp file is in the target directory (same filesystem)');
        assert.deepEqual(new Uint8Array(await fsp.readFile(temp)), newBytes);
        assert.equal((await readAssetFile(file)).metadata.v, 'old');
      },
    });
    assert.equal((await readAssetFile(file, { kind: 'gaussian-head' })).metadata.v, 'new');
    assert.deepEqual(fs.readdirSync(dir), ['alice.avgs']);

    // a failed write leaves the old file intact and removes its temp file
    await assert.rejects(writeAssetFile(file, oldBytes, { beforeRename: () => { throw new Error('disk full'); } }), /disk full/);
    assert.deepEqual(new Uint8Array(await fsp.readFile(file)), newBytes);
    assert.deepEqual(fs.readdirSync(dir), ['alice.avgs']);
    // bytes that would not load are never written
    await assert.rejects(writeAssetFile(file, newBytes.subarray(0, 100)), (e: unknown) => e instanceof AssetFormatError && e.code === 'TRUNCATED');
    await assert.rejects(writeAssetFile(path.join(dir, 'missing', 'x.avgs'), newBytes), { code: 'ENOENT' });
    assert.deepEqual(new Uint8Array(await fsp.readFile(file)), newBytes);

    // readers running alongside repeated writes only ever see one complete version or the other
    const seen = new Set<unknown>();
    let writing = true;
    const reader = (async () => {
      while (writing) seen.add((await readAssetFile(file)).metadata.v);
    })();
    for (let i = 0; i < 12; i++) await writeAssetFile(file, i % 2 ? newBytes : oldBytes);
    writing = false;
    await reader;
    assert.ok([...seen].every((v) => v === 'old' || v === 'new'), [...seen].join());
    assert.deepEqual(fs.readdirSync(dir), ['alice.avgs']);

    // size cap, checked via fstat: a 1 GiB sparse file is refused without reading (or allocating) it
    const sparse = path.join(dir, 'huge.avgs');
    await fsp.writeFile(sparse, '');
    await fsp.truncate(sparse, 1 << 30);
    const t0 = performance.now();
    await assert.rejects(readAssetFile(sparse), (e: unknown) => e instanceof AssetFormatError && e.code === 'TOO_LARGE' && /1073741824 bytes/.test(e.message));
    assert.ok(performance.now() - t0 < 500);
    await assert.rejects(readAssetFile(file, undefined, { maxBytes: newBytes.length - 1 }), (e: unknown) => e instanceof AssetFormatError && e.code === 'TOO_LARGE');
    assert.equal((await readAssetFile(file, undefined, { maxBytes: newBytes.length })).kind, 'gaussian-head');
    await assert.rejects(readAssetFile(dir), TypeError);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('a 30 000 × 60 model fits in 5 MB at q16/f16 and a ~4 MB asset decodes well under a second', () => {
  const rows = 30_000;
  const cols = 60;
  const data = matrix(rows, cols, 21);
  const report: string[] = [];
  const sizes: Partial<Record<Quant, number>> = {};
  for (const quant of ['q8', 'q16', 'f16', 'f32'] as Quant[]) {
    const tensors: AssetTensorInput[] = [{ name: 'params', shape: [rows, cols], data, quant }];
    encodeAsset('gaussian-head', {}, tensors); // warm up the JIT so the timings mean something
    const t0 = performance.now();
    const bytes = encodeAsset('gaussian-head', { gaussians: rows }, tensors);
    const t1 = performance.now();
    inspectAsset(bytes);
    const t2 = performance.now();
    const out = decodeAsset(bytes);
    const t3 = performance.now();
    sizes[quant] = bytes.length;
    assert.equal(out.tensors.get('params')!.data.length, rows * cols);
    report.push(`${quant}: ${(bytes.length / 1e6).toFixed(2)} MB, encode ${(t1 - t0).toFixed(1)} ms, verify ${(t2 - t1).toFixed(1)} ms, decode ${(t3 - t2).toFixed(1)} ms`);
    assert.ok(t3 - t2 < 1000, `${quant} decode took ${t3 - t2} ms`);
  }
  console.log(`30000 x 60 floats:\n  ${report.join('\n  ')}`);
  assert.ok(sizes.q8! < 2e6 && sizes.q16! <= 5e6 && sizes.f16! <= 5e6);
  assert.equal(ASSET_FIXED_HEADER_BYTES, 16);
  assert.ok(QUANTS.length === 7);
});
