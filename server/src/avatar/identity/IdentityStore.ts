/**
 * IdentityStore: enrolled avatar identities on disk, one directory each:
 *
 *   <dataDir>/identities/<id>/
 *     meta.json      IdentityMeta (small, human-readable)
 *     identity.bin   the enrolled data (see below): enough for a generator to start without Human
 *     crop.png       the enrolled crop (what viewers show while the avatar starts)
 *     source.png|jpg the uploaded photo, unchanged
 *
 * identity.bin: "AVID", u32 format version, u32 header length, JSON header, then the
 * deflate-compressed payload: texture (RGBA size², u8), landmarks and humanLandmarks (478×3 f32),
 * embedding (f32, optional), each section's offset/length listed in the header. Floats are stored
 * little-endian. Reading it costs one file read and one inflate on libuv's thread pool: no decoding
 * on the event loop, no face detection.
 *
 * Ids are 32 lowercase hex digits (128 random bits) and every id is checked against that pattern
 * before it touches a path. A directory appears under its id only once complete (written under a
 * temporary name, then renamed). Loaded identities are kept in an LRU cache; callers share the
 * cached object and must not modify its arrays.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { AppError, InvalidStateError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { EnrolledIdentity } from '../generator/enroll.ts';
import { FACE_TRIANGLES } from '../../../../models/face/topology.ts';
import type { ImageType } from './imageProbe.ts';

const deflate = promisify(zlib.deflate);
const inflate = promisify(zlib.inflate);

export const IDENTITY_ID_PATTERN = /^[0-9a-f]{32}$/;
const MAGIC = 0x44495641; // "AVID" read as little-endian u32
const FORMAT_VERSION = 1;
const LANDMARK_FLOATS = 478 * 3;
const STALE_TMP_MS = 60 * 60 * 1000;

export function isIdentityId(id: unknown): id is string {
  return typeof id === 'string' && IDENTITY_ID_PATTERN.test(id);
}

export function newIdentityId(): string {
  return randomBytes(16).toString('hex');
}

/** What GET /api/identities/:id returns; also meta.json. */
export interface IdentityMeta {
  identityId: string;
  createdAt: string;
  /** faces found in the photo; the largest was enrolled */
  faceCount: number;
  warning?: string;
  /** the uploaded photo */
  width: number;
  height: number;
  sourceType: ImageType;
  sourceBytes: number;
  /** square crop in the photo's pixels, and the side of the stored texture */
  crop: { x: number; y: number; size: number };
  textureSize: number;
  /** head angles on the crop, radians */
  angles: { yaw: number; pitch: number; roll: number };
  hasEmbedding: boolean;
  /** time the worker spent enrolling it, ms */
  enrollMs: number;
}

export interface SaveInput {
  identity: EnrolledIdentity;
  /** the uploaded bytes */
  source: Uint8Array;
  sourceType: ImageType;
  /** identity.texture as PNG */
  cropPng: Uint8Array;
  enrollMs: number;
  warning?: string;
}

export interface IdentityStoreOptions {
  /** identities go to `<dataDir>/identities` */
  dataDir: string;
  /** decoded identities kept in memory (default 32; 0 disables the cache) */
  cacheSize?: number;
  logger?: Logger;
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

function notFound(id: string): AppError {
  return new AppError('NOT_FOUND', `identity ${id} not found`);
}

function checkId(id: unknown): string {
  if (typeof id !== 'string') throw new TypeError('identity id must be a string');
  if (!IDENTITY_ID_PATTERN.test(id)) throw new AppError('BAD_REQUEST', 'invalid identity id (32 hex digits expected)');
  return id;
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
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
  pre.writeUInt32LE(FORMAT_VERSION, 4);
  pre.writeUInt32LE(json.length, 8);
  // level 6: the texture is most of the payload (photo content, ~2:1); runs on the thread pool
  return deflate(payload, { level: 6 }).then((z) => Buffer.concat([pre, json, z]));
}

export async function deserializeIdentity(file: Uint8Array): Promise<EnrolledIdentity> {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buf.length < 12 || buf.readUInt32LE(0) !== MAGIC) throw new Error('identity.bin: bad magic');
  const version = buf.readUInt32LE(4);
  if (version !== FORMAT_VERSION) throw new Error(`identity.bin: unsupported format version ${version}`);
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

export class IdentityStore {
  readonly root: string;
  private readonly cacheSize: number;
  private readonly logger: Logger | undefined;
  /** Map order = recency (last = most recent) */
  private readonly cache = new Map<string, EnrolledIdentity>();
  /** loads in flight (shared by concurrent callers); delete() drops the entry so a racing load is not cached */
  private readonly loading = new Map<string, { promise: Promise<EnrolledIdentity> }>();
  private closed_ = false;

  static async create(options: IdentityStoreOptions): Promise<IdentityStore> {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    if (typeof options.dataDir !== 'string' || options.dataDir === '') throw new TypeError('options.dataDir must be a non-empty string');
    const cacheSize = options.cacheSize ?? 32;
    if (!Number.isInteger(cacheSize) || cacheSize < 0) throw new TypeError('options.cacheSize must be an integer ≥ 0');
    const store = new IdentityStore(path.resolve(options.dataDir, 'identities'), cacheSize, options.logger);
    await fs.mkdir(store.root, { recursive: true });
    // leftovers of interrupted saves/deletes. Several processes share the directory (the server
    // saves, avatar worker processes load): only entries older than an hour are someone's debris.
    const now = Date.now();
    for (const e of await fs.readdir(store.root)) {
      if (!e.startsWith('.tmp-')) continue;
      const p = path.join(store.root, e);
      const st = await fs.stat(p).catch(() => null);
      if (st && now - st.mtimeMs > STALE_TMP_MS) await fs.rm(p, { recursive: true, force: true }).catch(() => undefined);
    }
    return store;
  }

  private constructor(root: string, cacheSize: number, logger: Logger | undefined) {
    this.root = root;
    this.cacheSize = cacheSize;
    this.logger = logger;
  }

  get closed(): boolean {
    return this.closed_;
  }

  /** Identities currently decoded in memory. */
  get cachedCount(): number {
    return this.cache.size;
  }

  close(): void {
    if (this.closed_) return;
    this.closed_ = true;
    this.cache.clear();
    this.loading.clear();
  }

  private assertOpen(): void {
    if (this.closed_) throw new InvalidStateError('IdentityStore closed');
  }

  private dir(id: string): string {
    const d = path.join(this.root, checkId(id));
    // belt and braces: the pattern already excludes separators and dots
    if (path.dirname(d) !== this.root) throw new AppError('BAD_REQUEST', 'invalid identity id');
    return d;
  }

  /** Persist a freshly enrolled identity under a new random id; it is cached as well. */
  async save(input: SaveInput): Promise<IdentityMeta> {
    this.assertOpen();
    if (input === null || typeof input !== 'object' || !input.identity) throw new TypeError('save: input.identity is required');
    const { identity } = input;
    if (!(input.source instanceof Uint8Array) || !(input.cropPng instanceof Uint8Array)) throw new TypeError('save: source and cropPng must be Uint8Arrays');
    if (input.sourceType !== 'image/png' && input.sourceType !== 'image/jpeg') throw new TypeError('save: sourceType must be image/png or image/jpeg');
    if (identity.landmarks.length !== LANDMARK_FLOATS || identity.texture.length !== identity.size * identity.size * 4) throw new TypeError('save: malformed identity');
    const id = newIdentityId();
    const meta: IdentityMeta = {
      identityId: id,
      createdAt: new Date().toISOString(),
      faceCount: identity.faceCount,
      ...(input.warning ? { warning: input.warning } : {}),
      width: identity.sourceWidth,
      height: identity.sourceHeight,
      sourceType: input.sourceType,
      sourceBytes: input.source.length,
      crop: identity.crop,
      textureSize: identity.size,
      angles: identity.angles,
      hasEmbedding: identity.embedding !== undefined,
      enrollMs: Math.round(input.enrollMs),
    };
    const bin = await serializeIdentity(identity);
    this.assertOpen();
    const tmp = path.join(this.root, `.tmp-${id}`);
    await fs.mkdir(tmp);
    try {
      await Promise.all([
        fs.writeFile(path.join(tmp, 'identity.bin'), bin),
        fs.writeFile(path.join(tmp, 'crop.png'), input.cropPng),
        fs.writeFile(path.join(tmp, input.sourceType === 'image/png' ? 'source.png' : 'source.jpg'), input.source),
        fs.writeFile(path.join(tmp, 'meta.json'), JSON.stringify(meta, null, 2) + '\n'),
      ]);
      await fs.rename(tmp, this.dir(id));
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    this.remember(id, identity);
    this.logger?.info({ identityId: id, faceCount: meta.faceCount, enrollMs: meta.enrollMs }, 'identity saved');
    return meta;
  }

  /** Metadata, or null when there is no such identity. Throws 400 AppError on a malformed id. */
  async get(id: string): Promise<IdentityMeta | null> {
    this.assertOpen();
    try {
      return JSON.parse(await fs.readFile(path.join(this.dir(id), 'meta.json'), 'utf8')) as IdentityMeta;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async has(id: string): Promise<boolean> {
    this.assertOpen();
    if (!isIdentityId(id)) return false;
    if (this.cache.has(id)) return true;
    try {
      await fs.access(path.join(this.dir(id), 'identity.bin'));
      return true;
    } catch {
      return false;
    }
  }

  /** All stored identities' metadata, oldest first. */
  async list(): Promise<IdentityMeta[]> {
    this.assertOpen();
    const out: IdentityMeta[] = [];
    for (const e of await fs.readdir(this.root)) {
      if (!isIdentityId(e)) continue;
      const m = await this.get(e).catch(() => null);
      if (m) out.push(m);
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * The enrolled identity, ready for AvatarGenerator.initialize (no face detection involved).
   * Rejects with AppError NOT_FOUND 404 / BAD_REQUEST 400 (malformed id).
   */
  async load(id: string): Promise<EnrolledIdentity> {
    this.assertOpen();
    const dir = this.dir(id);
    const hit = this.cache.get(id);
    if (hit) {
      this.cache.delete(id);
      this.cache.set(id, hit);
      return hit;
    }
    const pending = this.loading.get(id);
    if (pending) return pending.promise;
    const entry = { promise: Promise.resolve() as unknown as Promise<EnrolledIdentity> };
    entry.promise = (async () => {
      try {
        let bytes: Buffer;
        try {
          bytes = await fs.readFile(path.join(dir, 'identity.bin'));
        } catch (err) {
          if (isNotFound(err)) throw notFound(id);
          throw err;
        }
        const identity = await deserializeIdentity(bytes);
        if (this.loading.get(id) === entry && !this.closed_) this.remember(id, identity);
        return identity;
      } finally {
        if (this.loading.get(id) === entry) this.loading.delete(id);
      }
    })();
    this.loading.set(id, entry);
    return entry.promise;
  }

  /** Path of the enrolled crop PNG (the file may not exist: check with has/get). */
  cropPath(id: string): string {
    return path.join(this.dir(id), 'crop.png');
  }

  /**
   * Marks an identity as used now (an avatar session starts with it): expiry counts from its last
   * use. The mark is the mtime of `<id>/last-used`.
   */
  async touch(id: string): Promise<void> {
    this.assertOpen();
    const file = path.join(this.dir(id), 'last-used');
    const now = new Date();
    try {
      await fs.utimes(file, now, now);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // first use; a missing identity directory (deleted meanwhile) is not an error
      await fs.writeFile(file, '').catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
    }
  }

  /** When the identity was last used (ms since epoch): its last session start, else its enrollment. */
  async lastUsedAt(id: string): Promise<number | null> {
    const meta = await this.get(id);
    if (!meta) return null;
    const created = Date.parse(meta.createdAt);
    const used = await fs.stat(path.join(this.dir(id), 'last-used')).then((s) => s.mtimeMs, () => 0);
    return Math.max(Number.isFinite(created) ? created : 0, used);
  }

  /**
   * Deletes the identities not used for longer than `maxUnusedMs`, except those `inUse` names (an
   * avatar session runs with them). Returns the ids deleted.
   */
  async expireUnused(maxUnusedMs: number, inUse: (id: string) => boolean = () => false, now = Date.now()): Promise<string[]> {
    this.assertOpen();
    if (!(maxUnusedMs > 0)) throw new TypeError('expireUnused: maxUnusedMs must be positive');
    const deleted: string[] = [];
    for (const e of await fs.readdir(this.root)) {
      if (!isIdentityId(e) || inUse(e)) continue;
      const last = await this.lastUsedAt(e).catch(() => null);
      if (last === null || now - last <= maxUnusedMs) continue;
      if (await this.delete(e).catch(() => false)) deleted.push(e);
    }
    if (deleted.length > 0) this.logger?.info({ count: deleted.length, maxUnusedDays: Math.round(maxUnusedMs / 86_400_000) }, 'unused identities expired');
    return deleted;
  }

  /** Remove an identity and its files; false when there was none. */
  async delete(id: string): Promise<boolean> {
    this.assertOpen();
    const dir = this.dir(id);
    this.cache.delete(id);
    this.loading.delete(id);
    // move away first so the id disappears atomically, then remove the files
    const trash = path.join(this.root, `.tmp-del-${id}-${randomBytes(4).toString('hex')}`);
    try {
      await fs.rename(dir, trash);
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    await fs.rm(trash, { recursive: true, force: true });
    this.logger?.info({ identityId: id }, 'identity deleted');
    return true;
  }

  private remember(id: string, identity: EnrolledIdentity): void {
    if (this.cacheSize === 0) return;
    this.cache.delete(id);
    this.cache.set(id, identity);
    while (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
  }
}
