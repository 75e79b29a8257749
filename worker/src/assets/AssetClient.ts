/**
 * AssetClient: fetches a session's identity assets from the server's worker API
 * (server/src/http/workerAssets.ts) with the worker token, through the local {@link AssetCache}, and
 * decodes them into what a generator is initialised from. No disk is shared with the server.
 *
 * Every fetched body is checked against the SHA-256 the server listed before it is used or cached.
 * HTTPS servers with a private CA: start the worker with NODE_EXTRA_CA_CERTS=<ca.pem>.
 */
import { deserializeIdentity } from '../../../models/face/enrolledIdentity.ts';
import { GENERATOR_ASSET, identityAssetsResponseSchema, isGeneratorKind, type AssetKind, type IdentityAsset } from '../../../protocol/src/generators.ts';
import type { GeneratorSource } from '../generator/generator.ts';
import type { Logger } from '../logger.ts';
import { sha256Hex, type AssetCache } from './AssetCache.ts';

const FETCH_TIMEOUT_MS = 30_000;

/** The server answered an asset request with an error (status and code from its JSON body). */
export class AssetFetchError extends Error {
  override name = 'AssetFetchError';
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }

  /** 401/403: the worker's token is missing or wrong; retrying will not help. */
  get credentialRefused(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

export interface AssetClientOptions {
  serverUrl: string;
  token: string;
  cache: AssetCache;
  logger?: Logger;
}

export class AssetClient {
  readonly #base: string;
  readonly #token: string;
  readonly #cache: AssetCache;
  readonly #logger: Logger | undefined;

  constructor(opts: AssetClientOptions) {
    if (!opts || !opts.serverUrl || !opts.token || !opts.cache) throw new TypeError('AssetClient: serverUrl, token and cache are required');
    this.#base = `${opts.serverUrl.replace(/\/+$/, '')}/api/worker`;
    this.#token = opts.token;
    this.#cache = opts.cache;
    this.#logger = opts.logger;
  }

  async #get(path: string): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.#base}${path}`, { headers: { Authorization: `Bearer ${this.#token}` }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    } catch (err) {
      throw new AssetFetchError(0, 'UNREACHABLE', `cannot reach the server's asset API at ${this.#base}: ${(err as Error).message}`);
    }
    if (res.ok) return res;
    const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    const code = body?.error?.code ?? `HTTP_${res.status}`;
    const detail = body?.error?.message ?? res.statusText;
    const what = res.status === 401 || res.status === 403 ? 'the server refused this worker\'s token' : 'asset request failed';
    throw new AssetFetchError(res.status, code, `${what}: ${res.status} ${code}: ${detail}`);
  }

  /**
   * Checks the token against the server: resolves when it is accepted, rejects with an
   * AssetFetchError (credentialRefused) when not.
   */
  async checkCredential(): Promise<void> {
    try {
      await this.#get(`/identities/${'0'.repeat(32)}/assets`);
    } catch (err) {
      if (err instanceof AssetFetchError && err.status === 404) return;
      throw err;
    }
  }

  /** What assets an identity has (kind, hash, size). */
  async list(identityId: string): Promise<IdentityAsset[]> {
    const res = await this.#get(`/identities/${encodeURIComponent(identityId)}/assets`);
    const parsed = identityAssetsResponseSchema.safeParse(await res.json().catch(() => null));
    if (!parsed.success) throw new AssetFetchError(res.status, 'BAD_RESPONSE', `the server's asset list for ${identityId} is malformed`);
    return parsed.data.assets;
  }

  /** The bytes of one listed asset: from the cache when its hash is there, else fetched, verified and cached. */
  async bytes(identityId: string, asset: IdentityAsset): Promise<Uint8Array> {
    const cached = await this.#cache.get(asset.sha256);
    if (cached) return cached;
    const res = await this.#get(`/identities/${encodeURIComponent(identityId)}/assets/${asset.kind}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const got = sha256Hex(bytes);
    if (got !== asset.sha256) throw new AssetFetchError(res.status, 'HASH_MISMATCH', `${asset.kind} asset of ${identityId} has SHA-256 ${got}, the server listed ${asset.sha256} (changed meanwhile, or corrupted on the way)`);
    await this.#cache.put(asset.sha256, bytes);
    this.#logger?.debug({ identityId, kind: asset.kind, bytes: bytes.length }, 'asset fetched');
    return bytes;
  }

  /** What `generator` is initialised from for this identity (fetching its asset). */
  async loadSource(identityId: string, generator: string): Promise<GeneratorSource> {
    if (!isGeneratorKind(generator)) throw new TypeError(`unknown generator ${generator}`);
    const kind: AssetKind = GENERATOR_ASSET[generator];
    const asset = (await this.list(identityId)).find((a) => a.kind === kind);
    if (!asset) throw new AssetFetchError(404, 'NOT_FOUND', `identity ${identityId} has no ${kind} asset (needed by the ${generator} generator)`);
    const bytes = await this.bytes(identityId, asset);
    return kind === 'enrolled-photo' ? deserializeIdentity(bytes) : { kind, bytes };
  }
}
