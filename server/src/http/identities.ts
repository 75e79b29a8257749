/**
 * REST API for avatar source photos, mounted at /api/identities:
 *
 *   POST   /                raw PNG/JPEG body (Content-Type image/png or image/jpeg)
 *                           → 201 { identityId, faceCount, warning?, width, height, enrollMs, photoUrl }
 *   GET    /:id             → 200 IdentityMeta
 *   GET    /:id/photo       → 200 image/png, the enrolled square crop (placeholder while the avatar starts)
 *   DELETE /:id             → 204
 *
 * An identity is its owner's face: every route but POST needs its owner key (`Authorization: Bearer
 * <ownerKey>`, returned by the POST only): 401 UNAUTHORIZED without one, 403 FORBIDDEN with a wrong
 * one (checked after 400 for a malformed id and 404 for an unknown one). POST is limited per client
 * address (count, bytes and rate: 429 QUOTA_EXCEEDED / RATE_LIMITED with Retry-After).
 *
 * Errors are JSON { error: { code, message, status } }: 400 BAD_IMAGE / BAD_REQUEST (malformed id),
 * 404 NOT_FOUND, 413 PAYLOAD_TOO_LARGE (bytes or pixels), 415 UNSUPPORTED_MEDIA, 422 NO_FACE /
 * FACE_TOO_SMALL, 503 BUSY (enrollment queue full, with Retry-After) / AVATAR_UNAVAILABLE,
 * 504 TIMEOUT. The router has its own error handler, so these bodies do not depend on the app's.
 */
import { readFile } from 'node:fs/promises';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Config } from '../config.ts';
import { AppError, httpErrorBody } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { EnrollmentService } from '../avatar/identity/EnrollmentService.ts';
import type { IdentityStore } from '../avatar/identity/IdentityStore.ts';
import { probeImage } from '../avatar/identity/imageProbe.ts';
import { isIdentityId } from '../avatar/identity/IdentityStore.ts';
import { bearerKey } from './bearer.ts';
import { clientKey, type UploadQuota } from './uploadQuota.ts';

export interface IdentityRouterOptions {
  service: EnrollmentService;
  store: IdentityStore;
  config: Pick<Config, 'avatar'>;
  logger?: Logger;
  /** after an identity is deleted: delete what belongs to it elsewhere (its training jobs) */
  onDeleted?: (identityId: string) => Promise<void>;
  /** upload limits of POST, per client address; absent: none */
  quota?: UploadQuota;
}

/** Response body of POST /api/identities. */
export interface EnrollResponse {
  identityId: string;
  faceCount: number;
  warning?: string;
  /** the uploaded photo's size */
  width: number;
  height: number;
  enrollMs: number;
  /** URL of the enrolled crop (GET …/:id/photo) */
  photoUrl: string;
  /**
   * The identity's owner key, given only here: training jobs and personal assets of this identity
   * need it (`Authorization: Bearer <ownerKey>`); the server keeps only its hash.
   */
  ownerKey: string;
}

const ACCEPTED_TYPES = new Set(['image/png', 'image/jpeg', 'image/jpg']);

function mediaType(req: Request): string | null {
  const raw = req.headers['content-type'];
  if (!raw) return null;
  return raw.split(';')[0].trim().toLowerCase();
}


export function createIdentityRouter(opts: IdentityRouterOptions): Router {
  if (!opts || !opts.service || !opts.store || !opts.config?.avatar) throw new TypeError('createIdentityRouter: service, store and config are required');
  const { service, store, logger } = opts;
  const { maxPhotoBytes, maxPhotoPixels } = opts.config.avatar;
  const router = express.Router();

  /** The identity id of the request, once its owner key is checked (400 malformed, 404 unknown, 401 / 403). */
  const owned = async (req: Request): Promise<string> => {
    const id = String(req.params.id);
    if (!isIdentityId(id)) throw new AppError('BAD_REQUEST', 'invalid identity id');
    if (!(await store.has(id))) throw new AppError('NOT_FOUND', `identity ${id} not found`);
    await store.verifyOwner(id, bearerKey(req));
    return id;
  };

  router.post(
    '/',
    ...(opts.quota ? [opts.quota.middleware((req) => [clientKey(req)], 'photo uploads')] : []),
    (req, _res, next) => {
      const type = mediaType(req);
      if (!type || !ACCEPTED_TYPES.has(type)) {
        return next(new AppError('UNSUPPORTED_MEDIA', `Content-Type must be image/png or image/jpeg (got ${type ?? 'none'})`));
      }
      next();
    },
    express.raw({ type: () => true, limit: maxPhotoBytes }),
    async (req, res, next) => {
      try {
        const body: unknown = req.body;
        if (!Buffer.isBuffer(body) || body.length === 0) throw new AppError('BAD_IMAGE', 'empty request body: send the photo bytes');
        const probe = probeImage(body);
        if (!probe) throw new AppError('BAD_IMAGE', 'the body is not a readable PNG or JPEG image');
        const pixels = probe.width * probe.height;
        if (pixels > maxPhotoPixels) {
          throw new AppError('PAYLOAD_TOO_LARGE', `photo is ${probe.width}×${probe.height} (${pixels} pixels), limit ${maxPhotoPixels}`);
        }
        // a client that gives up while its photo waits in the queue frees its place
        const abort = new AbortController();
        const onClose = () => {
          if (!res.writableEnded) abort.abort(new AppError('CLIENT_CLOSED_REQUEST', 'client went away'));
        };
        res.once('close', onClose);
        let result;
        try {
          result = await service.enroll(body, { signal: abort.signal });
        } finally {
          res.off('close', onClose);
        }
        const { identity } = result;
        const warning = identity.faceCount > 1 ? `${identity.faceCount} faces found in the photo; the largest one was enrolled` : undefined;
        const meta = await store.save({ identity, source: body, sourceType: probe.type, cropPng: result.cropPng, enrollMs: result.enrollMs, warning });
        const location = `${req.baseUrl}/${meta.identityId}`;
        const out: EnrollResponse = {
          identityId: meta.identityId,
          faceCount: meta.faceCount,
          ...(warning ? { warning } : {}),
          width: meta.width,
          height: meta.height,
          enrollMs: meta.enrollMs,
          photoUrl: `${location}/photo`,
          ownerKey: meta.ownerKey,
        };
        res.status(201).location(location).json(out);
      } catch (err) {
        next(err);
      }
    },
  );

  router.get('/:id', async (req, res, next) => {
    try {
      const id = await owned(req);
      const meta = await store.get(id);
      if (!meta) throw new AppError('NOT_FOUND', `identity ${id} not found`);
      res.json(meta);
    } catch (err) {
      next(err);
    }
  });

  router.get('/:id/photo', async (req, res, next) => {
    try {
      const id = await owned(req);
      let png: Buffer;
      try {
        png = await readFile(store.cropPath(id));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new AppError('NOT_FOUND', `identity ${id} not found`);
        throw err;
      }
      res.setHeader('Cache-Control', 'private, no-store');
      res.type('png').send(png);
    } catch (err) {
      next(err);
    }
  });

  router.delete('/:id', async (req, res, next) => {
    try {
      const id = await owned(req);
      if (!(await store.delete(id))) throw new AppError('NOT_FOUND', `identity ${id} not found`);
      await opts.onDeleted?.(id);
      res.status(204).end();
    } catch (err) {
      next(err);
    }
  });

  // anything else below the mount point (e.g. "/a/b/c", an id with slashes) is JSON 404 too
  router.use((_req, _res, next) => next(new AppError('NOT_FOUND', 'no such identities route')));

  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const body = httpErrorBody(err, 'photo is larger than the upload limit');
    if (body.status >= 500 && !(err instanceof AppError)) logger?.error({ err }, 'identities API error');
    if (body.code === 'BUSY') res.setHeader('Retry-After', '5');
    if (body.code === 'UNAUTHORIZED') res.setHeader('WWW-Authenticate', 'Bearer realm="avatar-owner"');
    res.status(body.status).json({ error: body });
  });

  return router;
}
