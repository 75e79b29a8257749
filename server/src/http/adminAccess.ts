/**
 * Who may use the operator APIs (GET /api/rooms*, /metrics, POST /api/admin/tokens) when auth is on
 * (AUTH_SECRET set): the admin key (`Authorization: Bearer <AUTH_ADMIN_KEY>`); /metrics also the
 * metrics token; a room's own routes also a room access token of that room with the `admin` grant.
 * In development mode (no secret) everything stays open, as before.
 *
 * 401 UNAUTHORIZED without a credential (with WWW-Authenticate), 403 FORBIDDEN with a wrong one,
 * the token's own codes (TOKEN_EXPIRED, TOKEN_INVALID, TOKEN_WRONG_ROOM, GRANT_MISSING) for a token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AppError } from '../errors.ts';
import { bearerKey } from './bearer.ts';
import type { AccessTokens } from '../auth/AccessTokens.ts';
import { hasGrant } from '../../../protocol/src/accessToken.ts';

export interface AdminAccessOptions {
  /** undefined: development mode, nothing is checked */
  tokens: AccessTokens | undefined;
  adminKey: string | undefined;
  metricsToken: string | undefined;
}

/** Constant-time comparison of two secrets (of any lengths). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export interface AdminAccess {
  /** auth is on */
  readonly enabled: boolean;
  /** the admin key only */
  admin: RequestHandler;
  /** the admin key or the metrics token */
  metrics: RequestHandler;
  /** the admin key, or a token of the room `roomOf(req)` names with the admin grant */
  roomAdmin(roomOf: (req: Request) => string): RequestHandler;
}

export function createAdminAccess(opts: AdminAccessOptions): AdminAccess {
  const enabled = opts.tokens !== undefined;
  const isAdminKey = (key: string): boolean => opts.adminKey !== undefined && sameSecret(key, opts.adminKey);
  const credential = (req: Request, res: Response, realm: string): string => {
    const key = bearerKey(req);
    if (key === undefined) {
      res.setHeader('WWW-Authenticate', `Bearer realm="${realm}"`);
      throw new AppError('UNAUTHORIZED', `this needs "Authorization: Bearer <credential>" (${realm}) when auth is on`);
    }
    return key;
  };
  const guard = (check: (req: Request, res: Response) => Promise<void> | void): RequestHandler => (req: Request, res: Response, next: NextFunction) => {
    if (!enabled) return next();
    Promise.resolve()
      .then(() => check(req, res))
      .then(() => next(), next);
  };
  return {
    enabled,
    admin: guard((req, res) => {
      if (!isAdminKey(credential(req, res, 'admin key'))) throw new AppError('FORBIDDEN', 'wrong admin key');
    }),
    metrics: guard((req, res) => {
      const key = credential(req, res, 'admin key or metrics token');
      if (!isAdminKey(key) && !(opts.metricsToken !== undefined && sameSecret(key, opts.metricsToken))) throw new AppError('FORBIDDEN', 'wrong admin key or metrics token');
    }),
    roomAdmin: (roomOf) =>
      guard(async (req, res) => {
        const key = credential(req, res, 'admin key or an admin room token');
        if (isAdminKey(key)) return;
        // not the admin key: then it must be a room access token (JWTs have three dot-separated parts)
        if (key.split('.').length !== 3) throw new AppError('FORBIDDEN', 'wrong admin key');
        const claims = await opts.tokens!.verify(key, { room: roomOf(req) });
        if (!hasGrant(claims, 'admin')) throw new AppError('GRANT_MISSING', 'your room access token has no admin grant');
      }),
  };
}
