/**
 * REST API of personal-avatar training jobs (routes and wire types: protocol/src/trainingJobs.ts).
 * Mounted at /api; every route needs the identity's owner key (`Authorization: Bearer <key>`):
 * 401 UNAUTHORIZED without one, 403 FORBIDDEN with another identity's or a wrong one (checked by
 * `authorizeOwner`, which the identity store backs). Another owner's job answers 404 like a missing
 * one, so job ids reveal nothing.
 */
import fs from 'node:fs';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { AppError, httpErrorBody } from '../errors.ts';
import { bearerKey } from './bearer.ts';
import type { Logger } from '../logger.ts';
import type { TrainingJobs } from '../avatar/training/TrainingJobs.ts';
import { ACTIVE_JOB_STATES, type TrainingJobInfo } from '../../../protocol/src/trainingJobs.ts';
import { CLIP_UPLOAD_LIMITS } from '../../../protocol/src/clipUpload.ts';
import { clientKey, QuotaError, type UploadQuota } from './uploadQuota.ts';

export interface TrainingJobRouterOptions {
  jobs: TrainingJobs;
  /** resolves when `ownerKey` is the owner key of `identityId`; rejects with an AppError otherwise */
  authorizeOwner: (identityId: string, ownerKey: string | undefined) => Promise<void>;
  /** the largest upload accepted (bytes), default CLIP_UPLOAD_LIMITS.maxBytes */
  maxUploadBytes?: number;
  /** SSE keep-alive comment interval, default 15 s */
  keepAliveMs?: number;
  /** upload limits of clip uploads, per client address and per owner (identity); absent: none */
  quota?: UploadQuota;
  logger?: Logger;
}

export function createTrainingJobRouter(opts: TrainingJobRouterOptions): Router {
  if (!opts || !opts.jobs || typeof opts.authorizeOwner !== 'function') throw new TypeError('createTrainingJobRouter: jobs and authorizeOwner are required');
  const { jobs, authorizeOwner, logger } = opts;
  const maxUploadBytes = opts.maxUploadBytes ?? CLIP_UPLOAD_LIMITS.maxBytes;
  const keepAliveMs = opts.keepAliveMs ?? 15_000;
  const router = express.Router();

  /** the job, after checking the caller owns its identity (404 for someone else's) */
  const ownedJob = async (req: Request): Promise<TrainingJobInfo> => {
    const job = jobs.get(String(req.params.jobId));
    if (!job) throw new AppError('NOT_FOUND', 'no such training job');
    const key = bearerKey(req);
    if (key === undefined) throw new AppError('UNAUTHORIZED', 'training jobs need "Authorization: Bearer <ownerKey>" (the key given when the identity was created)');
    try {
      await authorizeOwner(job.identityId, key);
    } catch (err) {
      if (err instanceof AppError && (err.code === 'FORBIDDEN' || err.code === 'NOT_FOUND')) throw new AppError('NOT_FOUND', 'no such training job');
      throw err;
    }
    return job;
  };

  router.post(
    '/identities/:id/training-jobs',
    async (req, res, next) => {
      try {
        await authorizeOwner(String(req.params.id), bearerKey(req));
        const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        if (type !== 'application/octet-stream') throw new AppError('UNSUPPORTED_MEDIA', `Content-Type must be application/octet-stream (a clip upload), got ${type || 'none'}`);
        const len = Number(req.headers['content-length']);
        if (Number.isFinite(len) && len > maxUploadBytes) throw new AppError('PAYLOAD_TOO_LARGE', `clip upload of ${len} bytes exceeds ${maxUploadBytes}`);
        opts.quota?.take([clientKey(req), `owner:${String(req.params.id)}`], Number.isFinite(len) && len >= 0 ? len : 0, 'clip uploads');
        next();
      } catch (err) {
        if (err instanceof QuotaError) res.setHeader('Retry-After', String(err.retryAfterS));
        next(err);
      }
    },
    express.raw({ type: () => true, limit: maxUploadBytes }),
    async (req, res, next) => {
      try {
        const body: unknown = req.body;
        if (!Buffer.isBuffer(body) || body.length === 0) throw new AppError('BAD_REQUEST', 'empty request body: send the clip upload');
        const job = await jobs.submit(String(req.params.id), new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
        res.status(202).location(`/api/training-jobs/${job.id}`).json(job);
      } catch (err) {
        next(err);
      }
    },
  );

  router.get('/identities/:id/training-jobs', async (req, res, next) => {
    try {
      await authorizeOwner(String(req.params.id), bearerKey(req));
      res.setHeader('Cache-Control', 'no-store');
      res.json({ jobs: jobs.list(String(req.params.id)) });
    } catch (err) {
      next(err);
    }
  });

  router.get('/training-jobs/:jobId', async (req, res, next) => {
    try {
      const job = await ownedJob(req);
      res.setHeader('Cache-Control', 'no-store');
      res.json(job);
    } catch (err) {
      next(err);
    }
  });

  router.get('/training-jobs/:jobId/events', async (req, res, next) => {
    let job: TrainingJobInfo;
    try {
      job = await ownedJob(req);
    } catch (err) {
      return next(err);
    }
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    const send = (j: TrainingJobInfo): void => {
      res.write(`event: update\ndata: ${JSON.stringify(j)}\n\n`);
    };
    const finish = (): void => {
      jobs.off('update', onUpdate);
      clearInterval(keepAlive);
      if (!res.writableEnded) res.end();
    };
    const onUpdate = (j: TrainingJobInfo): void => {
      if (j.id !== job.id) return;
      send(j);
      if (!(ACTIVE_JOB_STATES as readonly string[]).includes(j.state)) finish();
    };
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), keepAliveMs);
    keepAlive.unref();
    res.once('close', finish);
    jobs.on('update', onUpdate);
    // the state now (it may have ended between the check and the subscription)
    onUpdate(jobs.get(job.id) ?? job);
  });

  router.get('/training-jobs/:jobId/preview', async (req, res, next) => {
    try {
      const job = await ownedJob(req);
      const file = jobs.previewPath(job.id);
      if (!file) throw new AppError('NOT_FOUND', 'no preview yet');
      const bytes = await fs.promises.readFile(file).catch(() => {
        throw new AppError('NOT_FOUND', 'no preview yet');
      });
      res.setHeader('Content-Type', 'image/jpeg');
      res.setHeader('Cache-Control', 'no-store');
      res.send(bytes);
    } catch (err) {
      next(err);
    }
  });

  router.get('/training-jobs/:jobId/turntable', async (req, res, next) => {
    try {
      const job = await ownedJob(req);
      const file = jobs.turntablePath(job.id);
      const bytes = file ? await fs.promises.readFile(file).catch(() => null) : null;
      if (!bytes) throw new AppError('NOT_FOUND', 'no turntable: the job has not finished, or rendered none');
      res.setHeader('Content-Type', 'image/jpeg');
      res.setHeader('Cache-Control', 'private, max-age=3600');
      res.send(bytes);
    } catch (err) {
      next(err);
    }
  });

  router.delete('/training-jobs/:jobId', async (req, res, next) => {
    try {
      const job = await ownedJob(req);
      res.json(await jobs.cancel(job.id));
    } catch (err) {
      next(err);
    }
  });

  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const body = httpErrorBody(err, `clip upload exceeds ${maxUploadBytes} bytes`);
    if (body.status >= 500 && !(err instanceof AppError)) logger?.error({ err }, 'training jobs API error');
    if (body.code === 'BUSY') res.setHeader('Retry-After', '30');
    if (body.code === 'UNAUTHORIZED') res.setHeader('WWW-Authenticate', 'Bearer realm="avatar-owner"');
    res.status(body.status).json({ error: body });
  });

  return router;
}
