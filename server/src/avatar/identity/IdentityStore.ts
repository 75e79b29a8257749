/**
 * IdentityStore: enrolled avatar identities on disk, one directory each:
 *
 *   <dataDir>/identities/<id>/
 *     meta.json      IdentityMeta (small, human-readable)
 *     owner-key.sha256  SHA-256 (hex) of the identity's owner key: the credential, given once at
 *                    enrollment, that its training jobs and personal assets require
 *     identity.bin   the enrolled data (see below): enough for a generator to start without Human
 *     crop.png       the enrolled crop (what viewers show while the avatar starts)
 *     source.png|jpg the uploaded photo, unchanged
 *     gaussian-head.avgs  optional: the identity's Gaussian head (models/gaussian/headAsset.ts)
 *
 * A generator's per-identity input is an *asset* (protocol/src/generators.ts): identity.bin is the
 * `enrolled-photo` asset every identity has, gaussian-head.avgs the `gaussian-head` asset. Avatar
 * workers fetch assets over HTTP (server/src/http/workerAssets.ts) by kind, content-addressed by
 * their SHA-256; nothing but this store opens these files.
 *
 * identity.bin is the versioned format of models/face/enrolledIdentity.ts. Reading it costs one file
 * read and one inflate on libuv's thread pool: no decoding on the event loop, no face detection.
 *
 * Ids are 32 lowercase hex digits (128 random bits) and every id is checked against that pattern
 * before it touches a path. A directory appears under its id only once complete (written under a
 * temporary name, then renamed). Loaded identities are kept in an LRU cache; callers share the
 * cached object and must not modify its arrays.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError, InvalidStateError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import { deserializeIdentity, LANDMARK_FLOATS, serializeIdentity, type EnrolledIdentity } from '../../../../models/face/enrolledIdentity.ts';
import type { ImageType } from './imageProbe.ts';
import { ASSET_KINDS, type AssetKind, type IdentityAsset } from '../../../../protocol/src/generators.ts';

/** The file of each asset kind inside an identity's directory. */
const ASSET_FILES: Record<AssetKind, string> = { 'enrolled-photo': 'identity.bin', 'gaussian-head': 'gaussian-head.avgs' };
/** Largest asset file accepted by putAsset (a Gaussian head is a few MB). */
const MAX_ASSET_BYTES = 256 * 1024 * 1024;

export const IDENTITY_ID_PATTERN = /^[0-9a-f]{32}$/;
const OWNER_KEY_FILE = 'owner-key.sha256';
const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');
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

/** What save() returns: the metadata and, this once, the owner key (only its hash is stored). */
export type SavedIdentity = IdentityMeta & { ownerKey: string };

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

export class IdentityStore {
  readonly root: string;
  private readonly cacheSize: number;
  private readonly logger: Logger | undefined;
  /** Map order = recency (last = most recent) */
  private readonly cache = new Map<string, EnrolledIdentity>();
  /** loads in flight (shared by concurrent callers); delete() drops the entry so a racing load is not cached */
  private readonly loading = new Map<string, { promise: Promise<EnrolledIdentity> }>();
  /** SHA-256 of asset files by path, valid while their size and mtime stay the same */
  private readonly hashes = new Map<string, { stamp: string; sha256: string }>();
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
  async save(input: SaveInput): Promise<SavedIdentity> {
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
    const ownerKey = randomBytes(24).toString('base64url');
    this.assertOpen();
    const tmp = path.join(this.root, `.tmp-${id}`);
    await fs.mkdir(tmp);
    try {
      await Promise.all([
        fs.writeFile(path.join(tmp, 'identity.bin'), bin),
        fs.writeFile(path.join(tmp, 'crop.png'), input.cropPng),
        fs.writeFile(path.join(tmp, input.sourceType === 'image/png' ? 'source.png' : 'source.jpg'), input.source),
        fs.writeFile(path.join(tmp, 'meta.json'), JSON.stringify(meta, null, 2) + '\n'),
        fs.writeFile(path.join(tmp, OWNER_KEY_FILE), sha256Hex(ownerKey) + '\n'),
      ]);
      await fs.rename(tmp, this.dir(id));
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    this.remember(id, identity);
    this.logger?.info({ identityId: id, faceCount: meta.faceCount, enrollMs: meta.enrollMs }, 'identity saved');
    return { ...meta, ownerKey };
  }

  /**
   * Resolves when `ownerKey` is the identity's owner key. UNAUTHORIZED without a key, NOT_FOUND
   * without the identity, FORBIDDEN for a wrong key or an identity enrolled before owner keys
   * existed (it has none: enrol the photo again). Constant-time comparison.
   */
  async verifyOwner(id: string, ownerKey: string | undefined): Promise<void> {
    this.assertOpen();
    if (typeof ownerKey !== 'string' || ownerKey.length === 0) throw new AppError('UNAUTHORIZED', 'this needs the identity\'s owner key ("Authorization: Bearer <ownerKey>", given when the identity was created)');
    if (!isIdentityId(id)) throw new AppError('BAD_REQUEST', 'invalid identity id');
    let stored: string;
    try {
      stored = (await fs.readFile(path.join(this.dir(id), OWNER_KEY_FILE), 'utf8')).trim();
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (!(await this.has(id))) throw notFound(id);
      throw new AppError('FORBIDDEN', `identity ${id} has no owner key (it was enrolled before owner keys existed): enrol the photo again`);
    }
    const a = Buffer.from(stored, 'hex'), b = Buffer.from(sha256Hex(ownerKey), 'hex');
    if (a.length !== b.length || !timingSafeEqual(a, b)) throw new AppError('FORBIDDEN', 'wrong owner key for this identity');
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

  /** The assets this identity has, with their content hashes; null when there is no such identity. */
  async assets(id: string): Promise<IdentityAsset[] | null> {
    this.assertOpen();
    const dir = this.dir(id);
    const out: IdentityAsset[] = [];
    for (const kind of ASSET_KINDS) {
      const file = path.join(dir, ASSET_FILES[kind]);
      const st = await fs.stat(file).catch((err: unknown) => {
        if (isNotFound(err)) return null;
        throw err;
      });
      if (!st || !st.isFile()) continue;
      const stamp = `${st.size}:${st.mtimeMs}`;
      let known = this.hashes.get(file);
      if (!known || known.stamp !== stamp) {
        const bytes = await fs.readFile(file).catch((err: unknown) => {
          if (isNotFound(err)) return null;
          throw err;
        });
        if (!bytes) continue;
        known = { stamp, sha256: createHash('sha256').update(bytes).digest('hex') };
        this.hashes.set(file, known);
      }
      out.push({ kind, sha256: known.sha256, bytes: st.size });
    }
    if (out.length === 0 && !(await this.get(id))) return null;
    return out;
  }

  /** Asset kinds this identity has (placement), without hashing; empty when there is no such identity. */
  async assetKinds(id: string): Promise<AssetKind[]> {
    this.assertOpen();
    if (!isIdentityId(id)) return [];
    const dir = this.dir(id);
    const kinds: AssetKind[] = [];
    for (const kind of ASSET_KINDS) {
      if (await fs.access(path.join(dir, ASSET_FILES[kind])).then(() => true, () => false)) kinds.push(kind);
    }
    return kinds;
  }

  /** Path of an asset file (it may not exist: check with assets()). */
  assetPath(id: string, kind: AssetKind): string {
    if (!Object.hasOwn(ASSET_FILES, kind)) throw new TypeError(`unknown asset kind ${String(kind)}`);
    return path.join(this.dir(id), ASSET_FILES[kind]);
  }

  /**
   * Stores (or replaces) an asset other than the enrolled photo, e.g. a trained Gaussian head,
   * atomically (temporary file, then rename). NOT_FOUND when there is no such identity.
   */
  async putAsset(id: string, kind: Exclude<AssetKind, 'enrolled-photo'>, bytes: Uint8Array): Promise<IdentityAsset> {
    this.assertOpen();
    if (kind === ('enrolled-photo' as AssetKind) || !Object.hasOwn(ASSET_FILES, kind)) throw new TypeError(`putAsset: cannot store a ${String(kind)} asset`);
    if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length > MAX_ASSET_BYTES) throw new TypeError('putAsset: bytes must be a non-empty Uint8Array');
    const dir = this.dir(id);
    if (!(await this.has(id))) throw notFound(id);
    const file = path.join(dir, ASSET_FILES[kind]);
    const tmp = path.join(dir, `.tmp-${randomBytes(6).toString('hex')}`);
    await fs.writeFile(tmp, bytes);
    try {
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      if (isNotFound(err)) throw notFound(id);
      throw err;
    }
    this.logger?.info({ identityId: id, kind, bytes: bytes.length }, 'identity asset stored');
    return { kind, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
  }

  /** Remove an identity and its files; false when there was none. */
  async delete(id: string): Promise<boolean> {
    this.assertOpen();
    const dir = this.dir(id);
    this.cache.delete(id);
    this.loading.delete(id);
    for (const file of Object.values(ASSET_FILES)) this.hashes.delete(path.join(dir, file));
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
