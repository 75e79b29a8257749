/**
 * Mints and verifies room access tokens (protocol/src/accessToken.ts): JWTs signed with HS256 by the
 * server's AUTH_SECRET, through `jose`. Verification errors are AppErrors whose codes match their
 * HTTP status: TOKEN_INVALID 401 (malformed, tampered, another algorithm or format), TOKEN_EXPIRED
 * 401, TOKEN_WRONG_ROOM 403.
 */
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { AppError } from '../errors.ts';
import { ACCESS_TOKEN_VERSION, accessTokenClaimsSchema, GRANT_NAMES, participantIdentitySchema, type AccessTokenClaims, type Grants } from '../../../protocol/src/accessToken.ts';
import { displayNameSchema, roomIdSchema } from '../../../protocol/src/signaling.ts';

/** Shortest secret accepted (HS256 wants at least 256 bits). */
export const MIN_SECRET_LENGTH = 32;
/** Longest TTL a token can be minted with (7 days). */
export const MAX_TOKEN_TTL_S = 7 * 86_400;

export interface MintOptions {
  room: string;
  /** The participant's identity (`sub`); defaults to the display name. */
  identity?: string;
  name: string;
  ttlS: number;
  grants: Grants;
}

export interface MintedToken {
  token: string;
  claims: AccessTokenClaims;
  /** ms since the epoch */
  expiresAt: number;
}

export class AccessTokens {
  readonly #key: Uint8Array;

  private constructor(secret: string) {
    this.#key = new TextEncoder().encode(secret);
  }

  static async create(opts: { secret: string }): Promise<AccessTokens> {
    if (typeof opts?.secret !== 'string' || opts.secret.length < MIN_SECRET_LENGTH) throw new TypeError(`the token secret needs at least ${MIN_SECRET_LENGTH} characters`);
    return new AccessTokens(opts.secret);
  }

  /** Signs a token; TypeError for a bad room, name, identity, TTL or grant. */
  async mint(opts: MintOptions): Promise<MintedToken> {
    const room = roomIdSchema.safeParse(opts?.room);
    if (!room.success) throw new TypeError(`invalid room "${String(opts?.room)}"`);
    const name = displayNameSchema.safeParse(opts.name);
    if (!name.success) throw new TypeError('invalid display name (1–48 characters)');
    const sub = participantIdentitySchema.safeParse(opts.identity ?? name.data);
    if (!sub.success) throw new TypeError('invalid participant identity (1–128 characters)');
    if (!Number.isInteger(opts.ttlS) || opts.ttlS < 1 || opts.ttlS > MAX_TOKEN_TTL_S) throw new TypeError(`the TTL must be 1–${MAX_TOKEN_TTL_S} s`);
    const grants: Grants = {};
    for (const [g, v] of Object.entries(opts.grants ?? {})) {
      if (!(GRANT_NAMES as readonly string[]).includes(g)) throw new TypeError(`unknown grant "${g}"`);
      if (v === true) grants[g as keyof Grants] = true;
    }
    const iat = Math.floor(Date.now() / 1000);
    const claims: AccessTokenClaims = { ver: ACCESS_TOKEN_VERSION, room: room.data, sub: sub.data, name: name.data, iat, exp: iat + opts.ttlS, grants };
    const token = await new SignJWT({ ver: claims.ver, room: claims.room, name: claims.name, grants: claims.grants })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuedAt(iat)
      .setExpirationTime(claims.exp)
      .sign(this.#key);
    return { token, claims, expiresAt: claims.exp * 1000 };
  }

  /** The same claims with a new expiry (the original TTL from now): what the server pushes before expiry. */
  async refresh(claims: AccessTokenClaims): Promise<MintedToken> {
    return this.mint({ room: claims.room, identity: claims.sub, name: claims.name, ttlS: Math.min(MAX_TOKEN_TTL_S, Math.max(1, claims.exp - claims.iat)), grants: claims.grants });
  }

  /** The verified claims; throws TOKEN_INVALID, TOKEN_EXPIRED or (with `room`) TOKEN_WRONG_ROOM. */
  async verify(token: string, expect: { room?: string } = {}): Promise<AccessTokenClaims> {
    if (typeof token !== 'string' || token.length === 0) throw new AppError('UNAUTHORIZED', 'a room access token is required');
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, this.#key, { algorithms: ['HS256'], requiredClaims: ['exp', 'iat', 'sub'] }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new AppError('TOKEN_EXPIRED', 'the room access token has expired: get a new one');
      throw new AppError('TOKEN_INVALID', err instanceof joseErrors.JWSSignatureVerificationFailed ? 'the room access token\'s signature is not valid (tampered, or signed with another secret)' : 'the room access token is not valid');
    }
    const parsed = accessTokenClaimsSchema.safeParse(payload);
    if (!parsed.success) throw new AppError('TOKEN_INVALID', 'the room access token has malformed claims');
    if (expect.room !== undefined && parsed.data.room !== expect.room) throw new AppError('TOKEN_WRONG_ROOM', `the room access token is for another room (not "${expect.room}")`);
    return parsed.data;
  }
}
