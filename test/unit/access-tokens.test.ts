/**
 * Room access tokens (issue 12): JWT HS256 with explicit grants, checked by a real server's
 * signaling, with the error code of each refusal and nothing left half-joined; the refresh pushed
 * before expiry; the token minting command and REST endpoint; the Origin allow-list; operator APIs
 * behind the admin key; development mode open, with a warning.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { startTestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';
import { WeriftBrowser } from '../helpers/weriftBrowser.ts';
import { loadConfig, ConfigError, PROJECT_ROOT } from '../../server/src/config.ts';
import { createAvatarServer, type AvatarServer } from '../../server/src/server.ts';
import { AccessTokens } from '../../server/src/auth/AccessTokens.ts';
import { AppError } from '../../server/src/errors.ts';
import { offeredSections } from '../../server/src/sfu/sdp.ts';
import { parseGrantList, parseTtl, readUnverifiedClaims, type Grants } from '../../protocol/src/accessToken.ts';
import { SIGNALING_PROTOCOL_VERSION, errorBodySchema, type Ack, type ErrorBody, type JoinResponse, type PublishResponse } from '../../protocol/src/signaling.ts';

const SECRET = 'test-secret-0123456789abcdef-0123456789';
const ADMIN_KEY = 'test-admin-key-0123456789abcdef-012345';
const METRICS_TOKEN = 'test-metrics-token-0123456789abcdef-01';
const ALL: Grants = parseGrantList('canPublish,canSubscribe,canPublishData,canUseAvatar');

class Client {
  readonly socket: ClientSocket;
  readonly events: { event: string; payload: unknown }[] = [];
  constructor(url: string, extraHeaders?: Record<string, string>) {
    this.socket = ioClient(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000, ...(extraHeaders ? { extraHeaders } : {}) });
    this.socket.onAny((event: string, payload: unknown) => this.events.push({ event, payload }));
  }
  static async connect(url: string, extraHeaders?: Record<string, string>): Promise<Client> {
    const c = new Client(url, extraHeaders);
    await new Promise<void>((resolve, reject) => {
      c.socket.once('connect', () => resolve());
      c.socket.once('connect_error', reject);
    });
    return c;
  }
  request<T = unknown>(event: string, payload?: unknown): Promise<Ack<T>> {
    return this.socket.timeout(5000).emitWithAck(event, payload) as Promise<Ack<T>>;
  }
  join(roomId: string, token: string | undefined, extra: Record<string, unknown> = {}): Promise<Ack<JoinResponse>> {
    return this.request<JoinResponse>('join', { protocolVersion: SIGNALING_PROTOCOL_VERSION, roomId, displayName: 'typed name', ...(token !== undefined ? { token } : {}), ...extra });
  }
  close(): void {
    this.socket.disconnect();
  }
}

function assertError(ack: Ack<unknown>, code: ErrorBody['code'], status: number): void {
  assert.equal(ack.ok, false, `expected ${code}, got ${JSON.stringify(ack).slice(0, 200)}`);
  if (ack.ok) return;
  assert.ok(errorBodySchema.safeParse(ack.error).success);
  assert.equal(ack.error.code, code, ack.error.message);
  assert.equal(ack.error.status, status);
}

/** A token signed with `key`, with arbitrary claims (to build what the server must refuse). */
async function forge(claims: Record<string, unknown>, key = SECRET, expSecondsFromNow = 3600): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ver: 1, grants: {}, ...claims }).setProtectedHeader({ alg: 'HS256' }).setSubject(String(claims['sub'] ?? 'someone')).setIssuedAt(now - 10).setExpirationTime(now + expSecondsFromNow).sign(new TextEncoder().encode(key));
}

describe('AccessTokens', () => {
  let tokens: AccessTokens;
  before(async () => {
    tokens = await AccessTokens.create({ secret: SECRET });
  });

  test('a minted token verifies with its room, identity, name, expiry and only the grants it was given', async () => {
    const minted = await tokens.mint({ room: 'standup', identity: 'ada@example', name: 'Ada', ttlS: 600, grants: { canSubscribe: true, canPublish: false } });
    const claims = await tokens.verify(minted.token, { room: 'standup' });
    assert.equal(claims.room, 'standup');
    assert.equal(claims.sub, 'ada@example');
    assert.equal(claims.name, 'Ada');
    assert.equal(claims.exp - claims.iat, 600);
    assert.deepEqual(claims.grants, { canSubscribe: true });
    assert.equal(minted.expiresAt, claims.exp * 1000);
    assert.deepEqual(readUnverifiedClaims(minted.token), claims);
  });

  test('expired, wrong-room, tampered, foreign-secret and unsigned tokens are refused with their codes', async () => {
    const refused = async (token: string, code: string, status: number, room = 'standup'): Promise<void> => {
      await assert.rejects(tokens.verify(token, { room }), (e: unknown) => e instanceof AppError && e.code === code && e.status === status);
    };
    await refused(await forge({ room: 'standup', name: 'A' }, SECRET, -5), 'TOKEN_EXPIRED', 401);
    await refused((await tokens.mint({ room: 'other', name: 'A', ttlS: 60, grants: ALL })).token, 'TOKEN_WRONG_ROOM', 403);
    const good = (await tokens.mint({ room: 'standup', name: 'A', ttlS: 60, grants: { canSubscribe: true } })).token;
    const [h, p, s] = good.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    payload.grants = { ...ALL, admin: true };
    await refused(`${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`, 'TOKEN_INVALID', 401);
    await refused(await forge({ room: 'standup', name: 'A' }, 'another-secret-0123456789abcdef-0123'), 'TOKEN_INVALID', 401);
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${p}.`;
    await refused(none, 'TOKEN_INVALID', 401);
    await refused('not a token', 'TOKEN_INVALID', 401);
    await refused(await forge({ room: 'standup', name: 'A', ver: 99 }), 'TOKEN_INVALID', 401);
  });

  test('bad mint arguments, short secrets, unknown grants and TTLs are TypeErrors', async () => {
    await assert.rejects(AccessTokens.create({ secret: 'short' }), TypeError);
    await assert.rejects(tokens.mint({ room: '', name: 'A', ttlS: 60, grants: {} }), TypeError);
    await assert.rejects(tokens.mint({ room: 'r', name: 'A', ttlS: 0, grants: {} }), TypeError);
    await assert.rejects(tokens.mint({ room: 'r', name: 'A', ttlS: 60, grants: { root: true } as Grants }), TypeError);
    assert.throws(() => parseGrantList('canPublish,root'), TypeError);
    assert.deepEqual(parseGrantList('all'), { ...ALL, admin: true });
    assert.equal(parseTtl('6h'), 21_600);
    assert.equal(parseTtl('90'), 90);
    assert.throws(() => parseTtl('soon'), TypeError);
  });

  test('an offer\'s media and data sections are counted, without rejected or receive-only ones', () => {
    const sdp = ['v=0', 'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=sendonly', 'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=recvonly', 'm=video 0 UDP/TLS/RTP/SAVPF 96', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', ''].join('\r\n');
    assert.deepEqual(offeredSections(sdp), { media: 1, data: 1 });
  });
});

describe('AUTH_SECRET, AUTH_ADMIN_KEY, ALLOWED_ORIGINS config', () => {
  test('secrets shorter than 32 characters and malformed origins stop the server with a ConfigError', () => {
    assert.throws(() => loadConfig({ AUTH_SECRET: 'short' }), ConfigError);
    assert.throws(() => loadConfig({ AUTH_ADMIN_KEY: 'short' }), ConfigError);
    assert.throws(() => loadConfig({ ALLOWED_ORIGINS: 'https://ok.example,not an origin' }), ConfigError);
    assert.throws(() => loadConfig({ ALLOWED_ORIGINS: 'https://ok.example/path' }), ConfigError);
    const c = loadConfig({ AUTH_SECRET: SECRET, ALLOWED_ORIGINS: 'https://a.example, http://b.example:8080' });
    assert.equal(c.auth.secret, SECRET);
    assert.deepEqual(c.auth.allowedOrigins, ['https://a.example', 'http://b.example:8080']);
    assert.equal(loadConfig({}).auth.secret, undefined);
  });
});

describe('signaling with AUTH_SECRET', () => {
  let server: AvatarServer;
  let tokens: AccessTokens;
  const clients: Client[] = [];
  const connect = async (): Promise<Client> => {
    const c = await Client.connect(server.httpUrl);
    clients.push(c);
    return c;
  };
  const mint = async (room: string, grants: Grants, name = 'Ada', ttlS = 600): Promise<string> => (await tokens.mint({ room, name, ttlS, grants })).token;
  const assertNothingJoined = (room: string): void => {
    assert.equal(server.rooms.rooms.get(room), undefined, `room "${room}" was not created`);
  };

  before(async () => {
    server = await startTestServer({}, { AUTH_SECRET: SECRET, AUTH_ADMIN_KEY: ADMIN_KEY, AUTH_METRICS_TOKEN: METRICS_TOKEN, AUTH_TOKEN_REFRESH_BEFORE_S: '1', ALLOWED_ORIGINS: 'https://meet.example' });
    tokens = await AccessTokens.create({ secret: SECRET });
  });
  after(async () => {
    for (const c of clients) c.close();
    await server?.close();
  });

  test('a valid token joins its room under the token\'s name', async () => {
    const a = await connect();
    const ack = await a.join('tokens ok', await mint('tokens ok', ALL, 'Ada Lovelace'));
    assert.ok(ack.ok, JSON.stringify(ack));
    const peer = server.rooms.rooms.get('tokens ok')?.peers.get(ack.data.peerId);
    assert.equal(peer?.displayName, 'Ada Lovelace', 'the token names the participant, not the form');
    a.close();
  });

  test('a join without a token is refused with UNAUTHORIZED 401 and leaves nothing behind', async () => {
    const a = await connect();
    assertError(await a.join('no token', undefined), 'UNAUTHORIZED', 401);
    assertNothingJoined('no token');
  });

  test('an expired token is refused with TOKEN_EXPIRED 401 and leaves nothing behind', async () => {
    const a = await connect();
    assertError(await a.join('expired', await forge({ room: 'expired', name: 'Ada', grants: ALL }, SECRET, -1)), 'TOKEN_EXPIRED', 401);
    assertNothingJoined('expired');
  });

  test('a token of another room is refused with TOKEN_WRONG_ROOM 403 and leaves nothing behind', async () => {
    const a = await connect();
    assertError(await a.join('room b', await mint('room a', ALL)), 'TOKEN_WRONG_ROOM', 403);
    assertNothingJoined('room b');
    assertNothingJoined('room a');
  });

  test('a tampered token (claims changed, signature kept) is refused with TOKEN_INVALID 401 and leaves nothing behind', async () => {
    const a = await connect();
    const [h, p, s] = (await mint('room a', { canSubscribe: true })).split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    claims.room = 'tampered';
    assertError(await a.join('tampered', `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`), 'TOKEN_INVALID', 401);
    assertNothingJoined('tampered');
    assertError(await a.join('tampered', await forge({ room: 'tampered', name: 'Ada', grants: ALL }, 'not-the-server-secret-0123456789abcd')), 'TOKEN_INVALID', 401);
    assertNothingJoined('tampered');
  });

  test('joining as an avatar without the canUseAvatar grant is refused with GRANT_MISSING 403 and leaves nothing behind', async () => {
    const a = await connect();
    const ack = await a.join('no avatar', await mint('no avatar', parseGrantList('canPublish,canSubscribe,canPublishData')), { avatar: { identityId: 'ffffffffffffffffffffffffffffffff', ownerKey: 'k'.repeat(32) } });
    assertError(ack, 'GRANT_MISSING', 403);
    assertNothingJoined('no avatar');
    assert.equal(server.avatars.sessions.size, 0);
  });

  test('publishing media without canPublish, or data channels without canPublishData, is refused with GRANT_MISSING 403 and creates no producer', async () => {
    const a = await connect();
    const joined = await a.join('grants', await mint('grants', { canSubscribe: true }));
    assert.ok(joined.ok);
    const peer = server.rooms.rooms.get('grants')!.peers.get(joined.data.peerId)!;
    const browser = new WeriftBrowser();
    try {
      assertError(await a.request('publish', { offer: await browser.publishOffer() }), 'GRANT_MISSING', 403);
      const dataOnly = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 0.0.0.0', 'a=mid:0', ''].join('\r\n');
      assertError(await a.request('publish', { offer: { type: 'offer', sdp: dataOnly } }), 'GRANT_MISSING', 403);
      assertError(await a.request('setProducerPaused', { kind: 'audio', paused: true }), 'GRANT_MISSING', 403);
      assert.equal(peer.producers.length, 0);
      assert.equal(peer.dataProducers.length, 0);
      assert.equal(peer.closed, false, 'the refusal leaves the participant in the room');
    } finally {
      await browser.close();
    }
  });

  test('a participant without canSubscribe receives nobody\'s media, while one with it does', async () => {
    const room = 'subscribe';
    const publisher = await connect();
    const watcher = await connect();
    const blind = await connect();
    const pj = await publisher.join(room, await mint(room, ALL, 'pub'));
    const wj = await watcher.join(room, await mint(room, { canSubscribe: true }, 'watcher'));
    const bj = await blind.join(room, await mint(room, { canPublish: true }, 'blind'));
    assert.ok(pj.ok && wj.ok && bj.ok, JSON.stringify([pj, wj, bj]).slice(0, 600));
    for (const c of [watcher, blind]) {
      c.socket.on('consume:offer', () => undefined); // never answered: only whether one comes matters
    }
    const browser = new WeriftBrowser();
    try {
      const published = await publisher.request<PublishResponse>('publish', { offer: await browser.publishOffer() });
      assert.ok(published.ok, JSON.stringify(published));
      const r = server.rooms.rooms.get(room)!;
      await waitFor(() => r.peers.get(wj.data.peerId)!.consumers.length === 2, { timeoutMs: 5000, what: 'the subscriber consuming audio and video' });
      assert.equal(r.peers.get(bj.data.peerId)!.consumers.length, 0, 'no consumer for the participant without canSubscribe');
      // the receive offer follows the consumers (renegotiation is serialized and coalesced)
      await waitFor(() => watcher.events.some((e) => e.event === 'consume:offer'), { timeoutMs: 5000, what: 'a receive offer at the subscriber' });
      assert.ok(!blind.events.some((e) => e.event === 'consume:offer'), 'no receive offer either');
      assertError(await blind.request('requestKeyFrame', { consumerId: 'x' }), 'GRANT_MISSING', 403);
    } finally {
      await browser.close();
    }
  });

  test('the server pushes a refreshed token (same claims, later expiry) before the join\'s token expires', async () => {
    const a = await connect();
    const first = await tokens.mint({ room: 'refresh', name: 'Ada', identity: 'ada-1', ttlS: 3, grants: { canSubscribe: true } });
    const joined = await a.join('refresh', first.token);
    assert.ok(joined.ok);
    const t0 = Date.now();
    const refresh = await waitFor(() => a.events.find((e) => e.event === 'token:refresh')?.payload as { token: string; expiresAt: number } | undefined, { timeoutMs: 4000, what: 'token:refresh' });
    assert.ok(Date.now() < first.expiresAt, 'refreshed before the first token expired');
    assert.ok(Date.now() - t0 >= 500, 'not at once: about one second before expiry');
    const claims = await tokens.verify(refresh.token, { room: 'refresh' });
    assert.equal(claims.sub, 'ada-1');
    assert.deepEqual(claims.grants, { canSubscribe: true });
    assert.ok(refresh.expiresAt > first.expiresAt);
    assert.equal(refresh.expiresAt, claims.exp * 1000);
    // the refreshed token joins again (e.g. after a reconnect)
    const b = await connect();
    a.close();
    assert.ok((await b.join('refresh', refresh.token)).ok);
  });

  test('POST /api/admin/tokens mints a token with the admin key (or an admin token of that room only) that then joins', async () => {
    const post = (body: unknown, key?: string): Promise<Response> =>
      fetch(`${server.httpUrl}/api/admin/tokens`, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: JSON.stringify(body) });
    const noKey = await post({ room: 'minted', name: 'Bob' });
    assert.equal(noKey.status, 401);
    assert.equal(((await noKey.json()) as { error: ErrorBody }).error.code, 'UNAUTHORIZED');
    assert.equal((await post({ room: 'minted', name: 'Bob' }, 'wrong-key-0123456789abcdef0123456789')).status, 403);
    assert.equal((await post({ room: 'minted', name: 'Bob', grants: ['root'] }, ADMIN_KEY)).status, 400);
    const res = await post({ room: 'minted', name: 'Bob', ttl: '10m', grants: 'canSubscribe,canPublish' }, ADMIN_KEY);
    assert.equal(res.status, 201);
    const body = (await res.json()) as { token: string; expiresAt: number; claims: { grants: Grants; exp: number; iat: number } };
    assert.deepEqual(body.claims.grants, { canSubscribe: true, canPublish: true });
    assert.equal(body.claims.exp - body.claims.iat, 600);
    const a = await connect();
    assert.ok((await a.join('minted', body.token)).ok);
    // a room admin mints for its own room, not for others
    const roomAdmin = await mint('minted', { admin: true });
    assert.equal((await post({ room: 'minted', name: 'Cy' }, roomAdmin)).status, 201);
    const other = await post({ room: 'elsewhere', name: 'Cy' }, roomAdmin);
    assert.equal(other.status, 403);
    assert.equal(((await other.json()) as { error: ErrorBody }).error.code, 'TOKEN_WRONG_ROOM');
    assert.equal(((await (await post({ room: 'minted', name: 'Cy' }, await mint('minted', ALL))).json()) as { error: ErrorBody }).error.code, 'GRANT_MISSING');
  });

  test('/api/rooms needs the admin key, /api/rooms/:id also takes that room\'s admin token, /metrics also the metrics token', async () => {
    const get = async (p: string, key?: string): Promise<number> => (await fetch(`${server.httpUrl}${p}`, key ? { headers: { authorization: `Bearer ${key}` } } : {})).status;
    const a = await connect();
    assert.ok((await a.join('listed', await mint('listed', ALL))).ok);
    assert.equal(await get('/api/rooms'), 401);
    assert.equal(await get('/api/rooms', METRICS_TOKEN), 403);
    assert.equal(await get('/api/rooms', ADMIN_KEY), 200);
    assert.equal(await get('/api/rooms/listed'), 401);
    assert.equal(await get('/api/rooms/listed', ADMIN_KEY), 200);
    assert.equal(await get('/api/rooms/listed', await mint('listed', { admin: true })), 200);
    assert.equal(await get('/api/rooms/listed', await mint('listed', ALL)), 403);
    assert.equal(await get('/api/rooms/listed', await mint('other', { admin: true })), 403);
    assert.equal(await get('/metrics'), 401);
    assert.equal(await get('/metrics', 'wrong-metrics-token-0123456789abcdef'), 403);
    assert.equal(await get('/metrics', METRICS_TOKEN), 200);
    assert.equal(await get('/metrics', ADMIN_KEY), 200);
    assert.equal(await get('/api/health'), 200, 'health stays open');
  });

  test('signaling sockets from pages of origins outside ALLOWED_ORIGINS are refused; listed origins, the server\'s own and non-browsers connect', async () => {
    await assert.rejects(Client.connect(server.httpUrl, { Origin: 'https://evil.example' }));
    const listed = await Client.connect(server.httpUrl, { Origin: 'https://meet.example' });
    clients.push(listed);
    const own = await Client.connect(server.httpUrl, { Origin: server.httpUrl.replace('localhost', '127.0.0.1') });
    clients.push(own);
    const node = await connect();
    assert.ok(listed.socket.connected && own.socket.connected && node.socket.connected);
  });
});

describe('development mode (no AUTH_SECRET)', () => {
  test('joins need no token, rooms and metrics stay open, minting answers INVALID_STATE 409, and the start logs a warning', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    } }));
    const config = { ...loadConfig({ HOST: '127.0.0.1', PORT: '0', HTTPS_PORT: 'off', RTC_LISTEN_IP: '127.0.0.1', AVATAR_WORKERS: '0', AVATAR_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-dev-')) }) };
    const server = await createAvatarServer(config, logger);
    const c = await Client.connect(server.httpUrl);
    try {
      assert.ok(lines.some((l) => /development mode/.test(l) && /"level":40/.test(l)), 'a warning at start');
      assert.ok((await c.join('open', undefined)).ok);
      assert.equal((await fetch(`${server.httpUrl}/api/rooms`)).status, 200);
      assert.equal((await fetch(`${server.httpUrl}/metrics`)).status, 200);
      const mint = await fetch(`${server.httpUrl}/api/admin/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"room":"r","name":"n"}' });
      assert.equal(mint.status, 409);
    } finally {
      c.close();
      await server.close();
    }
  });
});

describe('npm run token', () => {
  test('mints a token the server accepts, with the grants asked for and the TTL', async () => {
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/token.ts', '--room', 'cli room', '--name', 'Ada', '--ttl', '2h', '--grants', 'canSubscribe,canUseAvatar'], { cwd: PROJECT_ROOT, env: { ...process.env, AUTH_SECRET: SECRET } });
    const claims = await (await AccessTokens.create({ secret: SECRET })).verify(stdout.trim(), { room: 'cli room' });
    assert.deepEqual(claims.grants, { canSubscribe: true, canUseAvatar: true });
    assert.equal(claims.exp - claims.iat, 7200);
    await assert.rejects(run(process.execPath, ['--import', 'tsx', 'scripts/token.ts', '--room', 'r'], { cwd: PROJECT_ROOT, env: { ...process.env, AUTH_SECRET: SECRET } }), (e: { code?: number }) => e.code === 2);
    await assert.rejects(run(process.execPath, ['--import', 'tsx', 'scripts/token.ts', '--room', 'r', '--name', 'n'], { cwd: PROJECT_ROOT, env: { ...process.env, AUTH_SECRET: '' } }), (e: { code?: number }) => e.code === 2);
  });
});
