/**
 * Reconnection and liveness on a real server (werift transports on loopback, real socket.io clients):
 * a participant whose signaling socket drops resumes as the same peer within the grace period (others
 * see "reconnecting", then "connected", never a leave and a join); one that does not come back, or
 * whose transports go silent, is removed after the grace period; a resume needs the peer's resume key.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { startTestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';
import { WeriftBrowser } from '../helpers/weriftBrowser.ts';
import type { AvatarServer } from '../../server/src/server.ts';
import { SIGNALING_PROTOCOL_VERSION, type Ack, type ConsumerInfo, type ErrorBody, type JoinResponse, type PeerInfo, type PublishResponse, type SessionDescription } from '../../protocol/src/signaling.ts';

class Client {
  readonly socket: ClientSocket;
  readonly events: { event: string; payload: unknown }[] = [];
  consumers: ConsumerInfo[] = [];

  constructor(url: string, readonly browser: WeriftBrowser) {
    this.socket = ioClient(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 });
    this.socket.onAny((event: string, payload: unknown) => this.events.push({ event, payload }));
    this.socket.on('consume:offer', (p: { offer: SessionDescription; consumers: ConsumerInfo[] }, ack: (a: { answer: SessionDescription }) => void) => {
      this.consumers = p.consumers;
      void browser.answer(p.offer).then((answer) => ack({ answer }));
    });
  }

  static async connect(url: string, browser = new WeriftBrowser()): Promise<Client> {
    const c = new Client(url, browser);
    await new Promise<void>((resolve, reject) => {
      c.socket.once('connect', () => resolve());
      c.socket.once('connect_error', reject);
    });
    return c;
  }

  request<T = unknown>(event: string, payload?: unknown): Promise<Ack<T>> {
    return this.socket.timeout(5000).emitWithAck(event, payload) as Promise<Ack<T>>;
  }

  of<T = unknown>(event: string): T[] {
    return this.events.filter((e) => e.event === event).map((e) => e.payload as T);
  }

  waitEvent<T = unknown>(event: string, match: (p: T) => boolean = () => true, timeoutMs = 8000): Promise<T> {
    return waitFor(() => this.of<T>(event).find(match), { timeoutMs, intervalMs: 20, what: `"${event}" event` });
  }

  async publish(server: AvatarServer, roomId: string, peerId: string): Promise<PublishResponse> {
    const ack = await this.request<PublishResponse>('publish', { offer: await this.browser.publishOffer() });
    assert.ok(ack.ok, JSON.stringify(ack));
    await this.browser.applyPublishAnswer(ack.data.answer);
    await this.browser.waitSendConnected();
    await waitFor(() => server.rooms.rooms.get(roomId)?.peers.get(peerId)?.sendTransport.connectionState === 'connected', { intervalMs: 5, what: 'server send transport connected' });
    return ack.data;
  }
}

function refused(ack: Ack<unknown>, code: ErrorBody['code'], status: number): ErrorBody {
  assert.equal(ack.ok, false, `expected ${code}, got ${JSON.stringify(ack).slice(0, 200)}`);
  if (ack.ok) throw new Error('unreachable');
  assert.equal(ack.error.code, code, ack.error.message);
  assert.equal(ack.error.status, status);
  return ack.error;
}

const join = (roomId: string, displayName: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ protocolVersion: SIGNALING_PROTOCOL_VERSION, roomId, displayName, ...extra });

describe('reconnecting participants', () => {
  const GRACE_MS = 1500;
  let server: AvatarServer;
  const clients: Client[] = [];
  const connect = async (browser?: WeriftBrowser): Promise<Client> => {
    const c = await Client.connect(server.httpUrl, browser);
    clients.push(c);
    return c;
  };
  async function participant(roomId: string, name: string): Promise<{ client: Client; joined: JoinResponse; published: PublishResponse }> {
    const client = await connect();
    const ack = await client.request<JoinResponse>('join', join(roomId, name));
    assert.ok(ack.ok, JSON.stringify(ack));
    const published = await client.publish(server, roomId, ack.data.peerId);
    return { client, joined: ack.data, published };
  }

  before(async () => {
    server = await startTestServer({}, { RECONNECT_GRACE_MS: String(GRACE_MS) });
  });
  after(async () => {
    for (const c of clients) c.socket.disconnect();
    await Promise.all(clients.map((c) => c.browser.close()));
    await server.close();
  });

  test('a participant whose socket drops and who resumes within the grace period keeps its peer id; the others see it reconnecting, then connected, never a leave and a join', async () => {
    const a = await participant('resume', 'ada');
    const b = await participant('resume', 'bob');
    assert.ok(b.joined.resumeKey && b.joined.resumeKey.length >= 16, 'a join returns a resume key');
    await waitFor(() => a.client.consumers.filter((c) => c.peerId === b.joined.peerId).length === 2, { what: 'a consumes b' });

    b.client.socket.disconnect();
    await a.client.waitEvent<{ peerId: string; state: string }>('peer:connection', (p) => p.peerId === b.joined.peerId && p.state === 'reconnecting');
    const listed = (await (await fetch(`${server.httpUrl}/api/rooms/resume`)).json()) as { peers: PeerInfo[] };
    assert.equal(listed.peers.find((p) => p.peerId === b.joined.peerId)?.connection, 'reconnecting', 'the room lists b as reconnecting');

    // b comes back on a new socket and new connections, with its resume key.
    const b2 = await connect();
    const resumed = await b2.request<JoinResponse>('join', join('resume', 'bob', { resume: { peerId: b.joined.peerId, resumeKey: b.joined.resumeKey } }));
    assert.ok(resumed.ok, JSON.stringify(resumed));
    assert.equal(resumed.data.peerId, b.joined.peerId, 'same peer id');
    assert.equal(resumed.data.resumed, true);
    assert.deepEqual(resumed.data.peers.map((p) => p.peerId), [a.joined.peerId]);
    const republished = await b2.publish(server, 'resume', b.joined.peerId);
    await a.client.waitEvent<{ peerId: string; state: string }>('peer:connection', (p) => p.peerId === b.joined.peerId && p.state === 'connected');
    // a consumes b's new producers; b consumes a's producers again on its new receive connection.
    const newProducers = new Set(republished.producers.map((p) => p.producerId));
    await waitFor(() => {
      const ofB = a.client.consumers.filter((c) => c.peerId === b.joined.peerId);
      return ofB.length === 2 && ofB.every((c) => newProducers.has(c.producerId));
    }, { what: 'a consumes b\'s republished producers' });
    await waitFor(() => b2.consumers.filter((c) => c.peerId === a.joined.peerId).length === 2, { what: 'b consumes a again' });
    await b2.browser.waitRecvConnected();
    // Media flows again from b to a.
    await a.client.browser.waitRecvConnected();
    const before = [...a.client.browser.receivedPackets.values()].reduce((x, y) => x + y, 0);
    for (let i = 0; i < 20; i++) b2.browser.sendRtp('video', 1000 + i);
    await waitFor(() => [...a.client.browser.receivedPackets.values()].reduce((x, y) => x + y, 0) > before, { what: 'a receives b\'s media after the resume' });

    assert.equal(a.client.of('peer:left').length, 0, 'a never saw b leave');
    assert.equal(a.client.of<PeerInfo>('peer:joined').filter((p) => p.peerId === b.joined.peerId).length, 1, 'a saw b join once');
    assert.equal(server.rooms.rooms.get('resume')?.participants.length, 2, 'no duplicate participant');
    // Still there well after the grace period: the resume cancelled the removal.
    await new Promise((r) => setTimeout(r, GRACE_MS + 300));
    assert.equal(server.rooms.rooms.get('resume')?.peers.get(b.joined.peerId)?.closed, false);
    assert.equal(a.client.of('peer:left').length, 0);
  });

  test('a resume with a wrong key is refused with RESUME_REFUSED (401), one of a peer that is gone with RESUME_EXPIRED (410), and neither joins the room', async () => {
    const a = await participant('refuse', 'ada');
    const c = await connect();
    refused(await c.request('join', join('refuse', 'eve', { resume: { peerId: a.joined.peerId, resumeKey: 'x'.repeat(32) } })), 'RESUME_REFUSED', 401);
    refused(await c.request('join', join('elsewhere', 'eve', { resume: { peerId: a.joined.peerId, resumeKey: a.joined.resumeKey } })), 'RESUME_REFUSED', 401);
    refused(await c.request('join', join('refuse', 'eve', { resume: { peerId: 'nobody', resumeKey: 'x'.repeat(32) } })), 'RESUME_EXPIRED', 410);
    assert.equal(server.rooms.rooms.get('refuse')?.participants.length, 1, 'nobody joined');
    assert.equal(a.client.of('peer:connection').length + a.client.of('peer:joined').length, 0, 'a heard of nothing');
    // The refused socket can still join normally.
    const ok = await c.request<JoinResponse>('join', join('refuse', 'eve'));
    assert.ok(ok.ok);
  });

  test('a participant that does not come back within the grace period is removed: the others get peer:left', async () => {
    const a = await participant('gone', 'ada');
    const b = await participant('gone', 'bob');
    const t0 = Date.now();
    b.client.socket.disconnect();
    await a.client.waitEvent<{ peerId: string; state: string }>('peer:connection', (p) => p.peerId === b.joined.peerId && p.state === 'reconnecting');
    await a.client.waitEvent<{ peerId: string }>('peer:left', (p) => p.peerId === b.joined.peerId, GRACE_MS + 3000);
    const took = Date.now() - t0;
    assert.ok(took >= GRACE_MS - 50, `removed after the grace period (${took} ms)`);
    assert.equal(server.rooms.rooms.get('gone')?.participants.length, 1);
    const late = await connect();
    refused(await late.request('join', join('gone', 'bob', { resume: { peerId: b.joined.peerId, resumeKey: b.joined.resumeKey } })), 'RESUME_EXPIRED', 410);
  });
});

describe('transport liveness', () => {
  // werift's own client refreshes ICE consent every 4–6 s (RFC 7675), its only traffic on an idle receive connection.
  const CONSENT_MS = 7000;
  const GRACE_MS = 1000;
  let server: AvatarServer;
  const clients: Client[] = [];

  before(async () => {
    server = await startTestServer({}, { RECONNECT_GRACE_MS: String(GRACE_MS), RTC_ICE_CONSENT_TIMEOUT_MS: String(CONSENT_MS) });
  });
  after(async () => {
    for (const c of clients) c.socket.disconnect();
    await Promise.all(clients.map((c) => c.browser.close()));
    await server.close();
  });

  test('a transport that stops receiving anything is closed within the consent timeout, and its peer leaves after the grace period while the others stay', async () => {
    const joinPublish = async (name: string): Promise<{ client: Client; peerId: string }> => {
      const client = await Client.connect(server.httpUrl);
      clients.push(client);
      const ack = await client.request<JoinResponse>('join', join('live', name));
      assert.ok(ack.ok);
      await client.publish(server, 'live', ack.data.peerId);
      return { client, peerId: ack.data.peerId };
    };
    const a = await joinPublish('ada');
    const b = await joinPublish('bob');
    // a keeps sending; b's connections vanish without a word while its socket stays up.
    let seq = 0;
    const keepAlive = setInterval(() => a.client.browser.sendRtp('audio', seq++, 50), 50);
    try {
      const room = server.rooms.rooms.get('live')!;
      const bSend = room.peers.get(b.peerId)!.sendTransport;
      const t0 = Date.now();
      await b.client.browser.close();
      await waitFor(() => bSend.closed, { timeoutMs: CONSENT_MS + 4000, intervalMs: 20, what: 'b\'s silent send transport closed' });
      const closedAfter = Date.now() - t0;
      assert.ok(closedAfter >= CONSENT_MS - 100 && closedAfter <= CONSENT_MS + 1500, `closed ${closedAfter} ms after the last packet (bound ${CONSENT_MS})`);
      await a.client.waitEvent<{ peerId: string; state: string }>('peer:connection', (p) => p.peerId === b.peerId && p.state === 'reconnecting');
      await a.client.waitEvent<{ peerId: string }>('peer:left', (p) => p.peerId === b.peerId, GRACE_MS + 3000);
      const leftAfter = Date.now() - t0;
      console.log(`liveness: silent transport closed after ${closedAfter} ms, peer removed after ${leftAfter} ms (consent ${CONSENT_MS} ms + grace ${GRACE_MS} ms)`);
      assert.equal(room.participants.length, 1);
      assert.equal(room.peers.get(a.peerId)?.closed, false, 'the live peer stays');
      assert.equal(a.client.of<{ peerId: string }>('peer:connection').filter((p) => p.peerId === a.peerId).length, 0);
    } finally {
      clearInterval(keepAlive);
    }
  });
});
