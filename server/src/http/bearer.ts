/** The credential of `Authorization: Bearer <credential>`, or undefined without one. */
import type { Request } from 'express';

export function bearerKey(req: Request): string | undefined {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1];
}
