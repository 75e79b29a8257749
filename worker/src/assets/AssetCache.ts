/**
 * AssetCache: the worker's local copy of fetched identity assets, keyed by content hash (SHA-256,
 * lowercase hex), bounded in bytes, least recently used first out.
 *
 *   <dir>/<sha256>      one file per asset, named by the hash of its bytes
 *   <dir>/.tmp-<rand>   a write in progress (renamed into place once complete: atomic)
 *
 * Every read is verified against its name: a corrupted or truncated entry is deleted and reported
 * as a miss, so the caller fetches it again. Several worker processes may share one directory
 * (local workers do): writes are atomic, each process bounds what it knows of, and an entry another
 * process evicted is just a miss. Recency survives restarts through the files' mtimes.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logger.ts';

const HASH_PATTERN = /^[0-9a-f]{64}$/;

export interface AssetCacheOptions {
  dir: string;
  /** total bytes kept; an asset larger than this is returned but not kept */
  maxBytes: number;
  logger?: Logger;
}

export interface AssetCacheStats {
  hits: number;
  misses: number;
  /** entries whose bytes did not match their hash (deleted, then fetched again) */
  corrupted: number;
  evictions: number;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function checkHash(sha256: unknown): string {
  if (typeof sha256 !== 'string' || !HASH_PATTERN.test(sha256)) throw new TypeError('sha256 must be 64 lowercase hex digits');
  return sha256;
}

export class AssetCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly stats: AssetCacheStats = { hits: 0, misses: 0, corrupted: 0, evictions: 0 };
  readonly #logger: Logger | undefined;
  /** sha256 → bytes; Map order = recency (last = most recent) */
  readonly #entries = new Map<string, number>();
  #bytes = 0;

  private constructor(opts: AssetCacheOptions) {
    this.dir = path.resolve(opts.dir);
    this.maxBytes = opts.maxBytes;
    this.#logger = opts.logger;
  }

  static async create(opts: AssetCacheOptions): Promise<AssetCache> {
    if (!opts || typeof opts.dir !== 'string' || opts.dir === '') throw new TypeError('AssetCache: dir is required');
    if (!(Number.isInteger(opts.maxBytes) && opts.maxBytes > 0)) throw new TypeError('AssetCache: maxBytes must be a positive integer');
    const cache = new AssetCache(opts);
    await fs.mkdir(cache.dir, { recursive: true });
    const found: { sha256: string; bytes: number; mtimeMs: number }[] = [];
    for (const name of await fs.readdir(cache.dir)) {
      const file = path.join(cache.dir, name);
      if (name.startsWith('.tmp-')) {
        // another process's write in progress, or debris of one that died: only old ones go
        const st = await fs.stat(file).catch(() => null);
        if (st && Date.now() - st.mtimeMs > 10 * 60_000) await fs.rm(file, { force: true }).catch(() => undefined);
        continue;
      }
      if (!HASH_PATTERN.test(name)) continue;
      const st = await fs.stat(file).catch(() => null);
      if (st?.isFile()) found.push({ sha256: name, bytes: st.size, mtimeMs: st.mtimeMs });
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) cache.#remember(f.sha256, f.bytes);
    await cache.#evict();
    return cache;
  }

  /** Bytes currently kept. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  has(sha256: string): boolean {
    return this.#entries.has(sha256);
  }

  #file(sha256: string): string {
    return path.join(this.dir, checkHash(sha256));
  }

  /** The bytes whose SHA-256 is `sha256`, or undefined (not cached, or corrupted: then deleted). */
  async get(sha256: string): Promise<Uint8Array | undefined> {
    const file = this.#file(sha256);
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(file);
    } catch {
      this.#forget(sha256);
      this.stats.misses++;
      return undefined;
    }
    if (sha256Hex(bytes) !== sha256) {
      this.stats.corrupted++;
      this.stats.misses++;
      this.#logger?.warn({ sha256, bytes: bytes.length }, 'cached asset is corrupted; deleting it');
      this.#forget(sha256);
      await fs.rm(file, { force: true }).catch(() => undefined);
      return undefined;
    }
    this.stats.hits++;
    this.#remember(sha256, bytes.length);
    const now = new Date();
    await fs.utimes(file, now, now).catch(() => undefined);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Keeps `bytes` under `sha256` (which must be their hash: TypeError otherwise), evicting the least recently used. */
  async put(sha256: string, bytes: Uint8Array): Promise<void> {
    const file = this.#file(sha256);
    if (!(bytes instanceof Uint8Array)) throw new TypeError('bytes must be a Uint8Array');
    if (sha256Hex(bytes) !== sha256) throw new TypeError(`bytes do not hash to ${sha256}`);
    if (bytes.length > this.maxBytes) return;
    const tmp = path.join(this.dir, `.tmp-${randomBytes(6).toString('hex')}`);
    try {
      await fs.writeFile(tmp, bytes);
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      this.#logger?.warn({ err, sha256 }, 'could not cache an asset');
      return;
    }
    this.#remember(sha256, bytes.length);
    await this.#evict(sha256);
  }

  #remember(sha256: string, bytes: number): void {
    this.#forget(sha256);
    this.#entries.set(sha256, bytes);
    this.#bytes += bytes;
  }

  #forget(sha256: string): void {
    const had = this.#entries.get(sha256);
    if (had === undefined) return;
    this.#entries.delete(sha256);
    this.#bytes -= had;
  }

  async #evict(keep?: string): Promise<void> {
    while (this.#bytes > this.maxBytes && this.#entries.size > 0) {
      const oldest = this.#entries.keys().next().value as string;
      if (oldest === keep && this.#entries.size === 1) break;
      this.#forget(oldest);
      this.stats.evictions++;
      await fs.rm(path.join(this.dir, oldest), { force: true }).catch(() => undefined);
    }
  }
}
