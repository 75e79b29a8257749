/**
 * Room access tokens (LiveKit style): a JWT signed with HS256 by the server's AUTH_SECRET, minted by
 * `npm run token` or `POST /api/admin/tokens`, presented in `join.token`.
 *
 * Claims (version {@link ACCESS_TOKEN_VERSION}, in `ver`): `room`, `sub` (the participant's
 * identity: who the token is for), `name` (the display name shown to others), `iat`, `exp`, and
 * `grants`. Grants are explicit: a grant that is missing or not `true` is denied.
 */
import { z } from 'zod';
import { displayNameSchema, roomIdSchema } from './signaling.ts';

export const ACCESS_TOKEN_VERSION = 1;

export const GRANT_NAMES = ['canPublish', 'canSubscribe', 'canPublishData', 'canUseAvatar', 'admin'] as const;
export type GrantName = (typeof GRANT_NAMES)[number];
export type Grants = Partial<Record<GrantName, boolean>>;

/** What each grant allows. */
export const GRANT_MEANING: Readonly<Record<GrantName, string>> = Object.freeze({
  canPublish: 'publish a camera/microphone (media producers)',
  canSubscribe: 'receive the other participants\' media',
  canPublishData: 'publish data channels (an avatar\'s motion stream)',
  canUseAvatar: 'join as an avatar',
  admin: 'read the room over REST (GET /api/rooms/:room) and mint tokens for it',
});

export const participantIdentitySchema = z.string().trim().min(1).max(128);

export const accessTokenClaimsSchema = z.object({
  ver: z.literal(ACCESS_TOKEN_VERSION),
  room: roomIdSchema,
  sub: participantIdentitySchema,
  name: displayNameSchema,
  iat: z.number().int().nonnegative(),
  exp: z.number().int().positive(),
  grants: z.object(Object.fromEntries(GRANT_NAMES.map((g) => [g, z.boolean().optional()])) as Record<GrantName, z.ZodOptional<z.ZodBoolean>>).strict(),
});
export type AccessTokenClaims = z.infer<typeof accessTokenClaimsSchema>;

/** Whether the claims grant `grant` (explicitly `true`). */
export function hasGrant(claims: Pick<AccessTokenClaims, 'grants'>, grant: GrantName): boolean {
  return claims.grants[grant] === true;
}

/** Parses a grant list such as "canPublish,canSubscribe" (or "all"); throws TypeError on an unknown name. */
export function parseGrantList(list: string): Grants {
  const grants: Grants = {};
  for (const raw of list.split(',').map((g) => g.trim()).filter(Boolean)) {
    if (raw === 'all') {
      for (const g of GRANT_NAMES) grants[g] = true;
      continue;
    }
    if (!(GRANT_NAMES as readonly string[]).includes(raw)) throw new TypeError(`unknown grant "${raw}" (one of ${GRANT_NAMES.join(', ')}, or all)`);
    grants[raw as GrantName] = true;
  }
  return grants;
}

/** The grants a participant of an ordinary call needs (everything but admin). */
export const PARTICIPANT_GRANTS: Readonly<Grants> = Object.freeze({ canPublish: true, canSubscribe: true, canPublishData: true, canUseAvatar: true });

/** "6h", "30m", "45s", "2d" or a plain number of seconds → seconds; throws TypeError otherwise. */
export function parseTtl(raw: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(raw.trim());
  if (!m) throw new TypeError(`invalid TTL "${raw}" (e.g. 6h, 30m, 3600)`);
  const n = Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  if (n <= 0) throw new TypeError('the TTL must be positive');
  return n;
}

/**
 * The claims of a token, read WITHOUT checking its signature (the page shows which grants it has;
 * only the server decides). Undefined when it is not a readable token of this format.
 */
export function readUnverifiedClaims(token: string): AccessTokenClaims | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = new TextDecoder().decode(Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0)));
    const r = accessTokenClaimsSchema.safeParse(JSON.parse(json));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
