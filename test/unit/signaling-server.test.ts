/**
 * The signaling gate and REST API of a real server (startTestServer on loopback) driven by real
 * socket.io clients. npm test runs this inside a loopback-only network namespace.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { startTestServer } from '../helpers/server.ts';
import { waitFor, sleep } from '../helpers/wait.ts';
import { WeriftBrowser } from '../helpers/weriftBrowser.ts';
import { loadConfig, type Config } from '../../server/src/config.ts';
import type { AvatarServer } from '../../server/src/server.ts';
import { OFFER_ANSWER_TIMEOUT_MS, emitOfferAndWait } from '../../server/src/signaling/SignalingServer.ts';
import { EventEmitter } from 'node:events';
import {
  SIGNALING_PROTOCOL_VERSION,
  errorBodySchema,
  notificationSchemas,
  type Ack,
  type ConsumerInfo,
  type ErrorBody,
  type JoinResponse,
  type PeerInfo,
  type ProducerInfo,
  type PublishResponse,
  type SessionDescription,
} from '../../protocol/src/signaling.ts';

// A closed socket leaves at once here, as in startTestServer (reconnect-resume.test.ts covers the grace period).
const defaultLimits = { ...loadConfig({}).limits, reconnectGraceMs: 0 };

/** A socket.io client that records every notification it receives. */
class Client {
  readonly socket: ClientSocket;
  readonly events: { event: string; payload: unknown }[] = [];

  constructor(url: string) {
    this.socket = ioClient(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 });
    this.socket.onAny((event: string, payload: unknown) => {
      this.events.push({ event, payload });
    });
  }

  static async connect(url: string): Promise<Client> {
    const c = new Client(url);
    await new Promise<void>((resolve, reject) => {
      c.socket.once('connect', () => resolve());
      c.socket.once('connect_error', reject);
    });
    return c;
  }

  request<T = unknown>(event: string, payload?: unknown): Promise<Ack<T>> {
    return this.socket.timeout(5000).emitWithAck(event, payload) as Promise<Ack<T>>;
  }

  async join(roomId: string, displayName: string): Promise<JoinResponse> {
    const r = await this.request<JoinResponse>('join', { protocolVersion: SIGNALING_PROTOCOL_VERSION, roomId, displayName });
    if (!r.ok) throw new Error(`join failed: ${JSON.stringify(r.error)}`);
    return r.data;
  }

  of(event: string): unknown[] {
    return this.events.filter((e) => e.event === event).map((e) => e.payload);
  }

  waitEvent<T = unknown>(event: string, match: (p: T) => boolean = () => true, timeoutMs = 5000): Promise<T> {
    return waitFor(() => this.of(event).find((p) => match(p as T)) as T | undefined, { timeoutMs, intervalMs: 20, what: `"${event}" event` });
  }

  close(): void {
    this.socket.disconnect();
  }
}

function assertError(ack: Ack<unknown>, code: ErrorBody['code'], status: number): ErrorBody {
  assert.equal(ack.ok, false, `expected ${code}, got ${JSON.stringify(ack).slice(0, 200)}`);
  if (ack.ok) throw new Error('unreachable');
  assert.ok(errorBodySchema.safeParse(ack.error).success, 'error body matches the protocol schema');
  assert.equal(ack.error.code, code, ack.error.message);
  assert.equal(ack.error.status, status);
  assert.ok(ack.error.message.length > 0);
  return ack.error;
}

async function getJson(url: string): Promise<{ status: number; body: unknown; contentType: string | null; res: Response }> {
  const res = await fetch(url);
  return { status: res.status, contentType: res.headers.get('content-type'), body: await res.json(), res };
}

async function roomsList(server: AvatarServer): Promise<{ roomId: string; peers: number; createdAt: string }[]> {
  const { body } = await getJson(`${server.httpUrl}/api/rooms`);
  return (body as { rooms: { roomId: string; peers: number; createdAt: string }[] }).rooms;
}

async function gauge(server: AvatarServer, name: 'peers' | 'rooms' | 'transports' | 'producers' | 'consumers'): Promise<number> {
  return (await server.metrics[name].get()).values.reduce((s, v) => s + v.value, 0);
}

describe('signaling gate', () => {
  let server: AvatarServer;
  const clients: Client[] = [];
  const connect = async (): Promise<Client> => {
    const c = await Client.connect(server.httpUrl);
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  test('join() with an unsupported protocol version is refused with 426', async () => {
    const c = await connect();
    const ack = await c.request('join', { protocolVersion: SIGNALING_PROTOCOL_VERSION + 1, roomId: 'v', displayName: 'ada' });
    const err = assertError(ack, 'UNSUPPORTED_VERSION', 426);
    assert.match(err.message, new RegExp(`server speaks ${SIGNALING_PROTOCOL_VERSION}`));
    assert.deepEqual(await roomsList(server), [], 'no room was created');
    // The same socket can still join with the right version.
    const joined = await c.join('v', 'ada');
    assert.equal(joined.roomId, 'v');
    assert.deepEqual(joined.peers, []);
    c.close();
  });

  test('joining twice is refused with ALREADY_JOINED 409, also when both joins are in flight together', async () => {
    const c = await connect();
    await c.join('twice', 'ada');
    assertError(await c.request('join', { protocolVersion: 1, roomId: 'twice', displayName: 'ada' }), 'ALREADY_JOINED', 409);
    assertError(await c.request('join', { protocolVersion: 1, roomId: 'elsewhere', displayName: 'ada' }), 'ALREADY_JOINED', 409);
    const d = await connect();
    const [a, b] = await Promise.all([
      d.request('join', { protocolVersion: 1, roomId: 'twice', displayName: 'bob' }),
      d.request('join', { protocolVersion: 1, roomId: 'twice', displayName: 'bob' }),
    ]);
    assert.equal([a, b].filter((x) => x.ok).length, 1, 'exactly one of two concurrent joins succeeds');
    assertError([a, b].find((x) => !x.ok)!, 'ALREADY_JOINED', 409);
    assert.deepEqual((await roomsList(server)).find((r) => r.roomId === 'twice')?.peers, 2);
    c.close();
    d.close();
  });

  test('publish, setProducerPaused, requestKeyFrame and leave before join are refused with NOT_JOINED 409 (leave is a no-op)', async () => {
    const c = await connect();
    assertError(await c.request('publish', { offer: { type: 'offer', sdp: 'v=0' } }), 'NOT_JOINED', 409);
    assertError(await c.request('setProducerPaused', { kind: 'audio', paused: true }), 'NOT_JOINED', 409);
    assertError(await c.request('requestKeyFrame', { consumerId: 'abc' }), 'NOT_JOINED', 409);
    assert.deepEqual(await c.request('leave', {}), { ok: true, data: {} });
    c.close();
  });

  test('closeProducer is refused with NOT_JOINED before join, and with NOT_FOUND 404 for a producer the caller does not have', async () => {
    const c = await connect();
    assertError(await c.request('closeProducer', { producerId: 'nope' }), 'NOT_JOINED', 409);
    await c.join('close-producer-room', 'Ada');
    assertError(await c.request('closeProducer', { producerId: 'not-mine' }), 'NOT_FOUND', 404);
    assertError(await c.request('closeProducer', { producerId: '' }), 'BAD_REQUEST', 400);
    c.close();
  });

  test('a request after leave() is refused with NOT_JOINED, and the socket can join again', async () => {
    const c = await connect();
    const first = await c.join('again', 'ada');
    assert.deepEqual(await c.request('leave', {}), { ok: true, data: {} });
    assertError(await c.request('setProducerPaused', { kind: 'audio', paused: true }), 'NOT_JOINED', 409);
    const second = await c.join('again', 'ada');
    assert.notEqual(second.peerId, first.peerId);
    c.close();
  });

  test('an unknown event is refused with UNKNOWN_EVENT 404 and the socket keeps working', async () => {
    const c = await connect();
    const err = assertError(await c.request('makeCoffee', {}), 'UNKNOWN_EVENT', 404);
    assert.match(err.message, /makeCoffee/);
    assertError(await c.request('toString', {}), 'UNKNOWN_EVENT', 404);
    assertError(await c.request('x'.repeat(5000), {}), 'UNKNOWN_EVENT', 404);
    await c.join('still-works', 'ada');
    c.close();
  });

  test('invalid payloads are refused with BAD_REQUEST 400 naming the field', async () => {
    const c = await connect();
    const err = assertError(await c.request('join', { protocolVersion: 1, roomId: '../etc', displayName: 'ada' }), 'BAD_REQUEST', 400);
    assert.match(err.message, /roomId/);
    assertError(await c.request('join', null), 'BAD_REQUEST', 400);
    assertError(await c.request('join', [1, 2]), 'BAD_REQUEST', 400);
    assertError(await c.request('join', { protocolVersion: 1, roomId: 'a', displayName: 'ada', admin: true }), 'BAD_REQUEST', 400);
    assertError(await c.request('join'), 'BAD_REQUEST', 400);
    c.close();
  });

  test('an oversized (200 KB) message is refused with PAYLOAD_TOO_LARGE 413, in text or in binary', async () => {
    const c = await connect();
    assertError(await c.request('publish', { offer: { type: 'offer', sdp: 'x'.repeat(200_000) } }), 'PAYLOAD_TOO_LARGE', 413);
    assertError(await c.request('publish', { offer: { type: 'offer', sdp: Buffer.alloc(200_000, 1) } }), 'PAYLOAD_TOO_LARGE', 413);
    assertError(await c.request('join', new Uint8Array(200_000)), 'PAYLOAD_TOO_LARGE', 413);
    assert.equal(c.socket.connected, true);
    await c.join('big', 'ada');
    c.close();
  });

  test('a frame beyond the transport limit closes only that socket', async () => {
    const other = await connect();
    await other.join('huge', 'bob');
    const c = await connect();
    const disconnected = new Promise<string>((resolve) => c.socket.once('disconnect', (reason) => resolve(reason)));
    c.socket.emit('publish', { offer: { type: 'offer', sdp: 'x'.repeat(3 * 1024 * 1024) } });
    assert.match(await disconnected, /transport (close|error)/);
    assert.equal(other.socket.connected, true);
    const health = await fetch(`${server.httpUrl}/api/health`);
    assert.equal(health.status, 200);
    other.close();
  });

  test('a message without an ack callback gets a server:error event', async () => {
    const c = await connect();
    c.socket.emit('makeCoffee', { sugar: 2 });
    const unknown = await c.waitEvent<ErrorBody>('server:error', (e) => e.code === 'UNKNOWN_EVENT');
    assert.ok(notificationSchemas['server:error'].safeParse(unknown).success);
    assert.equal(unknown.status, 404);
    c.socket.emit('join', { protocolVersion: 'one' });
    await c.waitEvent<ErrorBody>('server:error', (e) => e.code === 'BAD_REQUEST' && e.status === 400);
    // Handler errors too: a publish before join.
    c.socket.emit('publish', { offer: { type: 'offer', sdp: 'v=0' } });
    await c.waitEvent<ErrorBody>('server:error', (e) => e.code === 'NOT_JOINED' && e.status === 409);
    c.close();
  });

  test('peer:joined and peer:left notifications reach the other peers of the room only', async () => {
    const a = await connect();
    const b = await connect();
    const outsider = await connect();
    await outsider.join('other room', 'olga');
    const ja = await a.join('notify', 'ada');
    const jb = await b.join('notify', 'bob');
    assert.deepEqual(jb.peers, [{ peerId: ja.peerId, displayName: 'ada', producers: [] } satisfies PeerInfo]);
    const joined = await a.waitEvent<PeerInfo>('peer:joined');
    assert.deepEqual(joined, { peerId: jb.peerId, displayName: 'bob', producers: [] });
    assert.ok(notificationSchemas['peer:joined'].safeParse(joined).success);
    assert.equal(b.of('peer:joined').length, 0, 'a peer is not told about itself');

    assert.deepEqual(await b.request('leave', {}), { ok: true, data: {} });
    assert.deepEqual(await a.waitEvent('peer:left'), { peerId: jb.peerId });
    await b.join('notify', 'bob again');
    const rejoined = await a.waitEvent<PeerInfo>('peer:joined', (p) => p.displayName === 'bob again');
    b.close();
    assert.deepEqual(await a.waitEvent<{ peerId: string }>('peer:left', (p) => p.peerId === rejoined.peerId), { peerId: rejoined.peerId });
    await sleep(100);
    assert.equal(outsider.of('peer:joined').length + outsider.of('peer:left').length, 0, 'other rooms hear nothing');
    a.close();
    outsider.close();
  });

  test('a room at its peer limit refuses join with ROOM_FULL 403', async () => {
    const small = await startTestServer({ limits: { ...defaultLimits, maxPeersPerRoom: 1 } });
    try {
      const a = await Client.connect(small.httpUrl);
      const b = await Client.connect(small.httpUrl);
      await a.join('solo', 'ada');
      const err = assertError(await b.request('join', { protocolVersion: 1, roomId: 'solo', displayName: 'bob' }), 'ROOM_FULL', 403);
      assert.match(err.message, /solo/);
      await b.join('another', 'bob');
      a.close();
      b.close();
    } finally {
      await small.close();
    }
  });

  test('a socket disconnect cleans up its peer and the room list empties', async () => {
    await waitFor(async () => (await roomsList(server)).length === 0, { timeoutMs: 5000, what: 'earlier rooms gone' });
    const a = await connect();
    const b = await connect();
    const ja = await a.join('cleanup', 'ada');
    await b.join('cleanup', 'bob');
    assert.deepEqual((await roomsList(server)).map((r) => [r.roomId, r.peers]), [['cleanup', 2]]);
    const { body } = await getJson(`${server.httpUrl}/api/rooms/cleanup`);
    assert.deepEqual((body as { peers: PeerInfo[] }).peers.map((p) => p.displayName).sort(), ['ada', 'bob']);
    a.close();
    await b.waitEvent('peer:left', (p: { peerId: string }) => p.peerId === ja.peerId);
    assert.deepEqual((await roomsList(server)).map((r) => [r.roomId, r.peers]), [['cleanup', 1]]);
    b.close();
    await waitFor(async () => (await roomsList(server)).length === 0, { timeoutMs: 5000, what: 'room list empty' });
    assert.equal(await gauge(server, 'peers'), 0);
    assert.equal(await gauge(server, 'rooms'), 0);
    assert.equal(await gauge(server, 'transports'), 0);
  });
});

describe('rate limiting and abuse', () => {
  let server: AvatarServer;
  const limits: Config['limits'] = { ...defaultLimits, messagesPerSecond: 5, messageBurst: 10, abuseDisconnectThreshold: 30 };

  before(async () => {
    server = await startTestServer({ limits });
  });
  after(async () => {
    await server.close();
  });

  test('a burst above the rate limit is refused with RATE_LIMITED 429 and the socket recovers after a pause', async () => {
    const c = await Client.connect(server.httpUrl);
    const acks = await Promise.all(Array.from({ length: 20 }, () => c.request('leave', {})));
    const ok = acks.filter((a) => a.ok).length;
    const limited = acks.filter((a) => !a.ok);
    assert.ok(ok >= 10 && ok <= 11, `${ok} allowed with a burst of 10`);
    for (const a of limited) assertError(a, 'RATE_LIMITED', 429);
    assert.equal(c.socket.connected, true, 'below the abuse threshold the socket stays');
    await sleep(450); // ~2 tokens at 5/s
    assert.equal((await c.request('leave', {})).ok, true);
    c.close();
  });

  test('a socket that keeps going past the abuse threshold is disconnected while its room carries on', async () => {
    const abuser = await Client.connect(server.httpUrl);
    const victim = await Client.connect(server.httpUrl);
    const ja = await abuser.join('abuse', 'mallory');
    await victim.join('abuse', 'bob');
    const disconnected = new Promise<string>((resolve) => abuser.socket.once('disconnect', (reason) => resolve(reason)));
    let answered = 0;
    for (let i = 0; i < 200; i++) abuser.socket.emit('leave', {}, () => answered++);
    assert.equal(await disconnected, 'io server disconnect');
    assert.ok(answered < 200, 'the server stopped answering the abuser');
    assert.ok(answered >= limits.messageBurst, `${answered} answered`);

    assert.deepEqual(await victim.waitEvent('peer:left'), { peerId: ja.peerId });
    assert.equal(victim.socket.connected, true);
    assertError(await victim.request('setProducerPaused', { kind: 'audio', paused: true }), 'INVALID_STATE', 409);
    assert.deepEqual((await roomsList(server)).map((r) => [r.roomId, r.peers]), [['abuse', 1]]);

    // The victim still gets notifications from newcomers.
    const newcomer = await Client.connect(server.httpUrl);
    const jn = await newcomer.join('abuse', 'cyd');
    assert.equal((await victim.waitEvent<PeerInfo>('peer:joined')).peerId, jn.peerId);
    newcomer.close();
    await victim.waitEvent('peer:left', (p: { peerId: string }) => p.peerId === jn.peerId);

    const metricsText = await (await fetch(`${server.httpUrl}/metrics`)).text();
    assert.match(metricsText, /^avatar_sfu_signaling_abuse_disconnects_total 1$/m);
    assert.match(metricsText, /^avatar_sfu_signaling_messages_total\{event="leave",outcome="rate_limited"\} \d+$/m);
    victim.close();
  });

  test('rejections of every kind count towards the abuse threshold', async () => {
    const c = await Client.connect(server.httpUrl);
    const disconnected = new Promise<string>((resolve) => c.socket.once('disconnect', (reason) => resolve(reason)));
    // Invalid payloads at a pace below the rate limit: only the rejections add up.
    for (let i = 0; i < limits.abuseDisconnectThreshold + 5 && c.socket.connected; i++) {
      c.socket.emit(i % 2 ? 'nope' : 'join', { bad: true });
      await sleep(1000 / limits.messagesPerSecond / 2);
    }
    assert.equal(await disconnected, 'io server disconnect');
  });
});

describe('a call through signaling', () => {
  let server: AvatarServer;
  const browsers: WeriftBrowser[] = [];
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await Promise.all(browsers.map((b) => b.close()));
    await server.close();
  });

  /** Joins, answers consume:offer with a werift browser, publishes audio+video. */
  async function participant(name: string): Promise<{ client: Client; browser: WeriftBrowser; join: JoinResponse; publish: PublishResponse; consumers: () => ConsumerInfo[] }> {
    const client = await Client.connect(server.httpUrl);
    const browser = new WeriftBrowser();
    browsers.push(browser);
    let consumers: ConsumerInfo[] = [];
    client.socket.on('consume:offer', (p: { offer: SessionDescription; consumers: ConsumerInfo[] }, ack: (a: { answer: SessionDescription }) => void) => {
      consumers = p.consumers;
      void browser.answer(p.offer).then((answer) => ack({ answer }));
    });
    const join = await client.join('call', name);
    const ack = await client.request<PublishResponse>('publish', { offer: await browser.publishOffer() });
    assert.ok(ack.ok, JSON.stringify(ack));
    await browser.applyPublishAnswer(ack.data.answer);
    // A werift transport closed in the middle of its DTLS handshake keeps retransmitting its last flight
    // for ~33 s (and keeps the process alive): wait until both ends are connected.
    await browser.waitSendConnected();
    await waitFor(() => server.rooms.rooms.get('call')?.peers.get(join.peerId)?.sendTransport.connectionState === 'connected', { intervalMs: 5, what: 'server send transport connected' });
    return { client, browser, join, publish: ack.data, consumers: () => consumers };
  }

  test('two peers publish and each receives the other\'s producers through consume:offer', async () => {
    const a = await participant('ada');
    const b = await participant('bob');
    assert.deepEqual(a.publish.producers.map((p) => p.kind).sort(), ['audio', 'video']);
    assert.ok(a.publish.producers.every((p) => !p.paused));
    await Promise.all([a.browser.waitSendConnected(), b.browser.waitSendConnected(), a.browser.waitRecvConnected(), b.browser.waitRecvConnected()]);
    await waitFor(() => a.consumers().length === 2 && b.consumers().length === 2, { what: 'consumers offered' });
    assert.deepEqual(new Set(a.consumers().map((c) => c.producerId)), new Set(b.publish.producers.map((p) => p.producerId)));
    assert.ok(a.consumers().every((c) => c.peerId === b.join.peerId && c.mid.length > 0));
    assert.equal(await gauge(server, 'transports'), 4);
    assert.equal(await gauge(server, 'producers'), 4);
    assert.equal(await gauge(server, 'consumers'), 4);

    // The room resource shows who publishes what.
    const { body } = await getJson(`${server.httpUrl}/api/rooms/call`);
    const peers = (body as { peers: PeerInfo[] }).peers;
    assert.equal(peers.length, 2);
    assert.ok(peers.every((p) => p.producers.length === 2));

    // Muting reaches the other peer as producer:state.
    const muted = await b.client.request<ProducerInfo>('setProducerPaused', { kind: 'video', paused: true });
    assert.ok(muted.ok);
    assert.equal(muted.data.paused, true);
    const state = await a.client.waitEvent<{ peerId: string; producer: ProducerInfo }>('producer:state', (s) => s.producer.paused);
    assert.equal(state.peerId, b.join.peerId);
    assert.equal(state.producer.kind, 'video');

    // requestKeyFrame: a known consumer is accepted, an unknown one is a 404.
    assert.deepEqual(await a.client.request('requestKeyFrame', { consumerId: a.consumers()[0]!.consumerId }), { ok: true, data: {} });
    assertError(await a.client.request('requestKeyFrame', { consumerId: 'nope' }), 'NOT_FOUND', 404);

    // Leaving closes b's producers for a.
    const offers = a.browser.offersAnswered;
    b.client.close();
    await a.client.waitEvent('peer:left', (p: { peerId: string }) => p.peerId === b.join.peerId);
    const closed = a.client.of('producer:closed') as { peerId: string; producerId: string }[];
    assert.deepEqual(new Set(closed.map((c) => c.producerId)), new Set(b.publish.producers.map((p) => p.producerId)));
    await waitFor(() => a.browser.offersAnswered > offers && a.consumers().length === 0, { what: 'a renegotiated without b' });
    a.client.close();
    await waitFor(async () => (await roomsList(server)).length === 0, { what: 'room closed' });
    for (const g of ['peers', 'rooms', 'transports', 'producers', 'consumers'] as const) assert.equal(await gauge(server, g), 0, g);
  });

  test('a peer that never answers consume:offer does not keep its room open: it closes within a fifth of the offer timeout after everyone left', async () => {
    const silent = await Client.connect(server.httpUrl); // no consume:offer handler: offers go unanswered
    const pub = await participant('pub');
    await silent.join('call', 'silent');
    await silent.waitEvent('consume:offer');
    const leftAt = performance.now();
    silent.close();
    pub.client.close();
    // Well below the server's own answer timeout: waiting that out would also close the room, later.
    const bound = OFFER_ANSWER_TIMEOUT_MS / 5;
    await waitFor(async () => (await roomsList(server)).length === 0, { timeoutMs: bound, intervalMs: 50, what: `room closed within ${bound} ms` });
    const ms = performance.now() - leftAt;
    assert.ok(ms < bound, `room closed ${ms.toFixed(0)} ms after everyone left (offer timeout ${OFFER_ANSWER_TIMEOUT_MS} ms)`);
  });
});

describe('consume:offer answer wait', () => {
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  for (const gone of ['the socket disconnects', 'the peer closes'] as const) {
    test(`a consume:offer nobody answers is given up as soon as ${gone}, leaving no ${OFFER_ANSWER_TIMEOUT_MS} ms timer behind`, async () => {
      const socket = Object.assign(new EventEmitter(), { connected: true });
      const peer = Object.assign(new EventEmitter(), { closed: false });
      // All synchronous: no other timer in the process can come or go in between.
      const before = timers();
      const wait = emitOfferAndWait(socket as never, peer as never, { offer: 'x' });
      assert.equal(timers(), before + 1, 'the answer timeout is armed');
      if (gone === 'the socket disconnects') socket.emit('disconnect');
      else peer.emit('close');
      assert.equal(timers(), before, 'the answer timeout is cleared at once');
      await assert.rejects(wait, /peer gone while an offer was pending/);
      assert.equal(socket.listenerCount('disconnect') + peer.listenerCount('close'), 0);
    });
  }
});

describe('REST API', () => {
  let server: AvatarServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.close();
  });

  test('/api/health answers 200 JSON with the protocol version', async () => {
    const { status, body, contentType, res } = await getJson(`${server.httpUrl}/api/health`);
    assert.equal(status, 200);
    assert.match(contentType ?? '', /^application\/json/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('x-powered-by'), null);
    const health = body as { status: string; uptimeS: number; protocolVersion: number };
    assert.equal(health.status, 'ok');
    assert.equal(health.protocolVersion, SIGNALING_PROTOCOL_VERSION);
    assert.ok(Number.isInteger(health.uptimeS) && health.uptimeS >= 0);
  });

  test('/api/rooms lists open rooms with their peer counts, and /api/rooms/:id shows one room', async () => {
    assert.deepEqual(await getJson(`${server.httpUrl}/api/rooms`).then((r) => r.body), { rooms: [] });
    const c = await Client.connect(server.httpUrl);
    const j = await c.join('Café 1', 'ada');
    const rooms = await roomsList(server);
    assert.equal(rooms.length, 1);
    assert.equal(rooms[0]!.roomId, 'Café 1');
    assert.equal(rooms[0]!.peers, 1);
    assert.ok(Math.abs(Date.parse(rooms[0]!.createdAt) - Date.now()) < 60_000);
    const one = await getJson(`${server.httpUrl}/api/rooms/${encodeURIComponent('Café 1')}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, { roomId: 'Café 1', peers: [{ peerId: j.peerId, displayName: 'ada', producers: [] }] });
    c.close();
    await waitFor(async () => (await roomsList(server)).length === 0, { what: 'room closed' });
  });

  test('/api/rooms/:id of an unknown room is a NOT_FOUND 404 JSON error', async () => {
    const { status, body, contentType } = await getJson(`${server.httpUrl}/api/rooms/does-not-exist`);
    assert.equal(status, 404);
    assert.match(contentType ?? '', /^application\/json/);
    const error = (body as { error: ErrorBody }).error;
    assert.ok(errorBodySchema.safeParse(error).success);
    assert.equal(error.status, 404);
    assert.equal(error.code, 'NOT_FOUND');
    assert.match(error.message, /does-not-exist.*not found/);
  });

  test('an unknown /api route is a NOT_FOUND 404 JSON error, for any method', async () => {
    for (const [method, path] of [['GET', '/api/nope'], ['POST', '/api/rooms'], ['DELETE', '/api/health'], ['GET', '/api/']] as const) {
      const res = await fetch(`${server.httpUrl}${path}`, { method });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      const body = (await res.json()) as { error: ErrorBody };
      assert.equal(body.error.status, 404);
      assert.equal(body.error.code, 'NOT_FOUND');
      assert.equal(body.error.message, 'no such API route');
    }
  });

  test('/metrics exposes avatar_sfu_* metrics in Prometheus text format', async () => {
    const c = await Client.connect(server.httpUrl);
    await c.join('metered', 'ada');
    assertError(await c.request('bogus', {}), 'UNKNOWN_EVENT', 404);
    const res = await fetch(`${server.httpUrl}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const [name, type] of [
      ['avatar_sfu_rooms', 'gauge'],
      ['avatar_sfu_peers', 'gauge'],
      ['avatar_sfu_transports', 'gauge'],
      ['avatar_sfu_producers', 'gauge'],
      ['avatar_sfu_consumers', 'gauge'],
      ['avatar_sfu_forwarded_packets_total', 'counter'],
      ['avatar_sfu_dropped_packets_total', 'counter'],
      ['avatar_sfu_signaling_messages_total', 'counter'],
    ]) {
      assert.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'), `HELP for ${name}`);
      assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `TYPE for ${name}`);
    }
    assert.match(text, /^avatar_sfu_rooms 1$/m);
    assert.match(text, /^avatar_sfu_peers 1$/m);
    assert.match(text, /^avatar_sfu_transports 2$/m);
    assert.match(text, /^avatar_sfu_signaling_messages_total\{event="join",outcome="ok"\} [1-9]\d*$/m);
    assert.match(text, /^avatar_sfu_signaling_messages_total\{event="unknown",outcome="unknown"\} 1$/m);
    assert.match(text, /^process_cpu_user_seconds_total /m, 'default process metrics are included');
    // Every sample line is "name{labels} value".
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eE]+|NaN|[+-]Inf$/, line);
    }
    c.close();
  });
});
