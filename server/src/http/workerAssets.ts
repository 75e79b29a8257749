/**
 * The avatar workers' asset API, mounted at /api/worker. Workers may run on other hosts and share no
 * disk with the server: they fetch what a session renders from here, authenticated with the worker
 * token (`Authorization: Bearer <AVATAR_WORKER_TOKEN>`) or a worker's own credential derived from it
 * (auth/workerCredentials.ts).
 *
 *   GET /identities/:id/assets        → 200 { identityId, assets: [{ kind, sha256, bytes }] }
 *   GET /identities/:id/assets/:kind  → 200 application/octet-stream, the asset file
 *                                       (ETag and X-Content-SHA256 = its SHA-256)
 *
 * Errors are JSON { error: { code, message, status } }: 401 UNAUTHORIZED (no bearer token, with
 * WWW-Authenticate), 403 FORBIDDEN (wrong token), 400 BAD_REQUEST (malformed id or unknown kind),
 * 404 NOT_FOUND (no such identity or asset).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { AppError, toErrorBody } from '../errors.ts';
import { bearerKey } from './bearer.ts';
import type { Logger } from '../logger.ts';
import { verifyWorkerCredential } from '../auth/workerCredentials.ts';
import type { IdentityStore } from '../avatar/identity/IdentityStore.ts';
import { ASSET_KINDS, type AssetKind, type IdentityAssetsResponse } from '../../../protocol/src/generators.ts';

export interface WorkerAssetRouterOptions {
  store: IdentityStore;
  /** the worker token (config.workers.token) */
  token: string;
  logger?: Logger;
}

/** 401 without a bearer token, 403 with a wrong one (constant-time comparison). */
function requireWorkerToken(token: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const key = bearerKey(req);
    if (key === undefined) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="avatar-worker"');
      return next(new AppError('UNAUTHORIZED', 'the worker asset API needs "Authorization: Bearer <AVATAR_WORKER_TOKEN>"'));
    }
    if (!verifyWorkerCredential(key, token)) return next(new AppError('FORBIDDEN', 'wrong worker token (AVATAR_WORKER_TOKEN differs from the server\'s)'));
    next();
  };
}

function assetKind(raw: string): AssetKind {
  if (!(ASSET_KINDS as readonly string[]).includes(raw)) throw new AppError('BAD_REQUEST', `unknown asset kind "${raw.slice(0, 40)}" (one of ${ASSET_KINDS.join(', ')})`);
  return raw as AssetKind;
}

export function createWorkerAssetRouter(opts: WorkerAssetRouterOptions): Router {
  if (!opts || !opts.store || typeof opts.token !== 'string' || opts.token === '') throw new TypeError('createWorkerAssetRouter: store and token are required');
  const { store, logger } = opts;
  const router = express.Router();
  router.use(requireWorkerToken(opts.token));

  router.get('/identities/:id/assets', async (req, res, next) => {
    try {
      const id = String(req.params.id);
      const assets = await store.assets(id);
      if (!assets) throw new AppError('NOT_FOUND', `identity ${id} not found`);
      const body: IdentityAssetsResponse = { identityId: id, assets };
      res.setHeader('Cache-Control', 'no-store');
      res.json(body);
    } catch (err) {
      next(err);
    }
  });

  router.get('/identities/:id/assets/:kind', async (req, res, next) => {
    try {
      const id = String(req.params.id);
      const kind = assetKind(String(req.params.kind));
      let bytes: Buffer;
      try {
        bytes = await readFile(store.assetPath(id, kind));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') throw new AppError('NOT_FOUND', `identity ${id} has no ${kind} asset`);
        throw err;
      }
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      res.setHeader('ETag', `"${sha256}"`);
      res.setHeader('X-Content-SHA256', sha256);
      res.setHeader('Cache-Control', 'no-store');
      res.type('application/octet-stream').send(bytes);
    } catch (err) {
      next(err);
    }
  });

  router.use((_req, _res, next) => next(new AppError('NOT_FOUND', 'no such worker API route')));
  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const body = toErrorBody(err);
    if (body.status === 401 || body.status === 403) logger?.warn({ path: req.path, ip: req.ip, status: body.status }, 'worker asset request refused');
    else if (body.status >= 500 && !(err instanceof AppError)) logger?.error({ err }, 'worker asset API error');
    res.status(body.status).json({ error: body });
  });
  return router;
}
