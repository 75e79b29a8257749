/**
 * Per-worker credentials ("signed worker tokens"): `wk1.<workerId>.<HMAC-SHA256(AVATAR_WORKER_TOKEN,
 * "avatar-worker:<workerId>")>`, base64url. A worker holding one can register only as that id (it
 * cannot take another worker's id and draw its sessions, or its owners' microphones, to itself) and
 * reads the worker asset API. The shared AVATAR_WORKER_TOKEN itself stays the operator's master
 * credential (any id), as before; give remote workers a derived one (`npm run token -- --worker ID`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { sameSecret } from '../http/adminAccess.ts';

const PREFIX = 'wk1';
const WORKER_ID = /^[A-Za-z0-9_-]{1,64}$/;

function signature(master: string, workerId: string): string {
  return createHmac('sha256', master).update(`avatar-worker:${workerId}`).digest('base64url');
}

/** The credential of worker `workerId` under the master token. */
export function mintWorkerCredential(master: string, workerId: string): string {
  if (typeof master !== 'string' || master.length === 0) throw new TypeError('the master worker token is required');
  if (!WORKER_ID.test(workerId)) throw new TypeError(`invalid worker id "${workerId}" (letters, digits, _ and -, at most 64)`);
  return `${PREFIX}.${workerId}.${signature(master, workerId)}`;
}

/**
 * Who a presented worker credential is: `{ workerId }` for a derived credential (bound to that id),
 * `{ workerId: undefined }` for the master token (any id), undefined for anything else.
 */
export function verifyWorkerCredential(credential: unknown, master: string): { workerId: string | undefined } | undefined {
  if (typeof credential !== 'string' || credential.length === 0 || credential.length > 256) return undefined;
  const parts = credential.split('.');
  if (parts.length === 3 && parts[0] === PREFIX && WORKER_ID.test(parts[1]!)) {
    const expected = Buffer.from(signature(master, parts[1]!));
    const given = Buffer.from(parts[2]!);
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { workerId: parts[1]! };
    return undefined;
  }
  return sameSecret(credential, master) ? { workerId: undefined } : undefined;
}
