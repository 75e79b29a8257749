/** express app: the built client, a small REST API and Prometheus metrics. */
import fs from 'node:fs';
import path from 'node:path';
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { RoomManager } from '../rooms/RoomManager.ts';
import type { Metrics } from '../metrics.ts';
import type { Logger } from '../logger.ts';
import { AppError, toErrorBody } from '../errors.ts';
import { SIGNALING_PROTOCOL_VERSION } from '../../../protocol/src/signaling.ts';

/** Who may read rooms and metrics (http/adminAccess.ts); absent: everyone (development mode). */
export interface AppGuards {
  rooms: RequestHandler;
  room: RequestHandler;
  metrics: RequestHandler;
}

const open: RequestHandler = (_req, _res, next) => next();

export function createApp(opts: { clientDir: string; rooms: RoomManager; metrics: Metrics; logger: Logger; startedAt: number; routers?: Record<string, Router>; guards?: AppGuards }): express.Express {
  const guards = opts.guards ?? { rooms: open, room: open, metrics: open };
  const app = express();
  app.disable('x-powered-by');
  app.use((_req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    next();
  });

  app.get('/api/health', (_req, res) => {
    res.json({ status: 'ok', uptimeS: Math.round((Date.now() - opts.startedAt) / 1000), protocolVersion: SIGNALING_PROTOCOL_VERSION });
  });
  app.get('/api/rooms', guards.rooms, (_req, res) => {
    res.json({ rooms: opts.rooms.list() });
  });
  app.get('/api/rooms/:roomId', guards.room, (req, res, next) => {
    const room = opts.rooms.rooms.get(String(req.params.roomId));
    if (!room) return next(new AppError('NOT_FOUND', `room "${String(req.params.roomId)}" not found`));
    res.json({ roomId: room.id, peers: [...room.peers.values()].map((p) => p.info()) });
  });
  app.get('/metrics', guards.metrics, async (_req, res, next) => {
    try {
      res.setHeader('Content-Type', opts.metrics.registry.contentType);
      res.send(await opts.metrics.registry.metrics());
    } catch (err) {
      next(err);
    }
  });
  for (const [mount, router] of Object.entries(opts.routers ?? {})) app.use(mount, router);
  app.get('/favicon.ico', (_req, res) => {
    res.status(204).end();
  });
  app.use('/api', (_req, _res, next) => next(new AppError('NOT_FOUND', 'no such API route')));

  const index = path.join(opts.clientDir, 'index.html');
  app.use(express.static(opts.clientDir, { index: 'index.html', maxAge: '1h', setHeaders: (res, file) => {
    if (file.endsWith('.html')) res.setHeader('Cache-Control', 'no-cache');
  } }));
  app.get('/', (_req, res, next) => {
    if (!fs.existsSync(index)) return next(new AppError('INTERNAL', `client not built (${index} missing): run "npm run build"`));
    res.sendFile(index);
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const body = toErrorBody(err);
    if (body.code === 'UNAUTHORIZED' && !res.headersSent && !res.getHeader('WWW-Authenticate')) res.setHeader('WWW-Authenticate', 'Bearer');
    if (body.status >= 500 && !(err instanceof AppError)) opts.logger.error({ err }, 'http error');
    res.status(body.status).json({ error: body });
  });
  return app;
}
