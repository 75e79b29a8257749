/**
 * Upload limits per key (a client IP, an owner): uploads and bytes within the last hour, and uploads
 * within the last minute (the rate). `middleware` takes one upload for every key of a request before
 * its body is read (its size from Content-Length), so refused uploads cost no bandwidth:
 * 429 QUOTA_EXCEEDED (count or bytes per hour) or 429 RATE_LIMITED (per minute), with Retry-After.
 * Attempts count, refused or not by the route later: the limit is on what a client sends.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AppError } from '../errors.ts';

export interface UploadLimits {
  maxPerHour: number;
  maxBytesPerHour: number;
  maxPerMinute: number;
}

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
/** Keys remembered at most (the least recently used are forgotten beyond it). */
const MAX_KEYS = 10_000;

export class QuotaError extends AppError {
  override name = 'QuotaError';
  constructor(code: 'QUOTA_EXCEEDED' | 'RATE_LIMITED', message: string, readonly retryAfterS: number) {
    super(code, message);
  }
}

export class UploadQuota {
  readonly #limits: UploadLimits;
  readonly #now: () => number;
  /** key → uploads of the last hour, oldest first */
  readonly #uploads = new Map<string, { at: number; bytes: number }[]>();

  constructor(limits: UploadLimits, now: () => number = Date.now) {
    for (const k of ['maxPerHour', 'maxBytesPerHour', 'maxPerMinute'] as const) {
      if (!Number.isInteger(limits?.[k]) || limits[k] < 1) throw new TypeError(`UploadQuota: ${k} must be a positive integer`);
    }
    this.#limits = { ...limits };
    this.#now = now;
  }

  /** Takes one upload of `bytes` for every key, or throws a QuotaError (and takes nothing). */
  take(keys: string[], bytes: number, what = 'uploads'): void {
    if (!Number.isFinite(bytes) || bytes < 0) throw new TypeError('bytes must be a non-negative number');
    const now = this.#now();
    const lists = keys.map((key) => {
      const list = (this.#uploads.get(key) ?? []).filter((u) => now - u.at < HOUR_MS);
      return { key, list };
    });
    for (const { key, list } of lists) {
      const who = key.split(':')[0] === 'owner' ? 'this owner' : 'your address';
      const lastMinute = list.filter((u) => now - u.at < MINUTE_MS);
      if (lastMinute.length >= this.#limits.maxPerMinute) {
        throw new QuotaError('RATE_LIMITED', `too many ${what} from ${who}: at most ${this.#limits.maxPerMinute} a minute`, Math.max(1, Math.ceil((lastMinute[0]!.at + MINUTE_MS - now) / 1000)));
      }
      if (list.length >= this.#limits.maxPerHour) {
        throw new QuotaError('QUOTA_EXCEEDED', `too many ${what} from ${who}: at most ${this.#limits.maxPerHour} an hour`, Math.max(1, Math.ceil((list[0]!.at + HOUR_MS - now) / 1000)));
      }
      const used = list.reduce((s, u) => s + u.bytes, 0);
      if (used + bytes > this.#limits.maxBytesPerHour) {
        throw new QuotaError('QUOTA_EXCEEDED', `${who} uploaded ${used} bytes within the hour; the limit is ${this.#limits.maxBytesPerHour}`, Math.max(1, Math.ceil(((list[0]?.at ?? now) + HOUR_MS - now) / 1000)));
      }
    }
    for (const { key, list } of lists) {
      list.push({ at: now, bytes });
      this.#uploads.delete(key);
      this.#uploads.set(key, list);
    }
    while (this.#uploads.size > MAX_KEYS) this.#uploads.delete(this.#uploads.keys().next().value!);
  }

  /** Express middleware: takes an upload for `keysOf(req)` (its Content-Length as bytes); sets Retry-After when refused. */
  middleware(keysOf: (req: Request) => string[], what?: string): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      try {
        const len = Number(req.headers['content-length']);
        this.take(keysOf(req), Number.isFinite(len) && len >= 0 ? len : 0, what);
        next();
      } catch (err) {
        if (err instanceof QuotaError) res.setHeader('Retry-After', String(err.retryAfterS));
        next(err);
      }
    };
  }
}

/** The client address key of a request. */
export function clientKey(req: Request): string {
  return `ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;
}
