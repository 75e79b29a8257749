/**
 * Minting room access tokens over REST, mounted at /api/admin:
 *
 *   POST /tokens  JSON { room, name, identity?, ttl? ("6h", "30m" or seconds; default 6h), grants? }
 *                 → 201 { token, expiresAt, claims }
 *
 * `grants`: an array or comma-separated list of grant names (protocol/src/accessToken.ts) or "all";
 * missing grants are denied. Needs the admin key, or an admin token of the same room (which cannot
 * mint a token for another room). 409 INVALID_STATE in development mode (no AUTH_SECRET: joins need
 * no token), 400 BAD_REQUEST for a bad body.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { AppError, httpErrorBody } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { AccessTokens } from '../auth/AccessTokens.ts';
import type { AdminAccess } from './adminAccess.ts';
import { GRANT_NAMES, parseGrantList, parseTtl, type Grants } from '../../../protocol/src/accessToken.ts';

/** TTL of a token minted without one. */
export const DEFAULT_TOKEN_TTL = '6h';

const mintRequestSchema = z.object({
  room: z.string(),
  name: z.string(),
  identity: z.string().optional(),
  ttl: z.union([z.string().max(16), z.number().int().positive()]).optional(),
  grants: z.union([z.string().max(200), z.array(z.enum(GRANT_NAMES)).max(GRANT_NAMES.length)]).optional(),
}).strict();

export function createTokenRouter(opts: { tokens: AccessTokens | undefined; access: AdminAccess; logger?: Logger }): Router {
  if (!opts || !opts.access) throw new TypeError('createTokenRouter: access is required');
  const { tokens, access, logger } = opts;
  const router = express.Router();
  const roomOfBody = (req: Request): string => String((req.body as { room?: unknown } | undefined)?.room ?? '');

  router.post(
    '/tokens',
    (req, _res, next) => (tokens ? next() : next(new AppError('INVALID_STATE', 'auth is off (no AUTH_SECRET): joins need no token'))),
    express.json({ limit: '8kb' }),
    access.roomAdmin(roomOfBody),
    async (req, res, next) => {
      try {
        const parsed = mintRequestSchema.safeParse(req.body);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw new AppError('BAD_REQUEST', `invalid token request: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim());
        }
        const body = parsed.data;
        let grants: Grants;
        let ttlS: number;
        try {
          grants = Array.isArray(body.grants) ? parseGrantList(body.grants.join(',')) : parseGrantList(body.grants ?? '');
          ttlS = typeof body.ttl === 'number' ? body.ttl : parseTtl(body.ttl ?? DEFAULT_TOKEN_TTL);
        } catch (err) {
          throw new AppError('BAD_REQUEST', (err as Error).message);
        }
        const minted = await tokens!.mint({ room: body.room, name: body.name, ...(body.identity !== undefined ? { identity: body.identity } : {}), ttlS, grants });
        logger?.info({ roomId: minted.claims.room, participant: minted.claims.sub, grants: Object.keys(minted.claims.grants), ttlS }, 'room access token minted');
        res.setHeader('Cache-Control', 'no-store');
        res.status(201).json({ token: minted.token, expiresAt: minted.expiresAt, claims: minted.claims });
      } catch (err) {
        next(err);
      }
    },
  );

  router.use((_req, _res, next) => next(new AppError('NOT_FOUND', 'no such admin route')));
  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const body = httpErrorBody(err, 'token request too large');
    if (body.status >= 500 && !(err instanceof AppError)) logger?.error({ err }, 'admin API error');
    res.status(body.status).json({ error: body });
  });
  return router;
}
