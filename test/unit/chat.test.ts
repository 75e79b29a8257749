/**
 * Room chat: the RoomChat limits and history, the protocol's text rules, and messages through a real
 * server's signaling (order, late joiners' history, the per-peer flood limit, the canPublishData grant).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { RoomChat } from '../../server/src/chat/RoomChat.ts';
import { AppError } from '../../server/src/errors.ts';
import { CHAT_MAX_CHARS, chatMessageSchema, type ChatMessage } from '../../protocol/src/chat.ts';
import { SIGNALING_PROTOCOL_VERSION, parseRequest, type Ack, type JoinResponse } from '../../protocol/src/signaling.ts';
import { AccessTokens } from '../../server/src/auth/AccessTokens.ts';
import { startTestServer } from '../helpers/server.ts';
import { waitFor, sleep } from '../helpers/wait.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const ada = { id: 'peer-ada', displayName: 'Ada' };
const bob = { id: 'peer-bob', displayName: 'Bob' };

describe('RoomChat', () => {
  test('messages are numbered in the order they were accepted and carry the sender and time', () => {
    const chat = new RoomChat({ messagesPerSecond: 10, burst: 10, historySize: 50 });
    const a = chat.post(ada, 'hi', 1000);
    const b = chat.post(bob, 'hello', 2000);
    assert.deepEqual(a, { seq: 0, peerId: 'peer-ada', displayName: 'Ada', text: 'hi', sentAt: 1000 });
    assert.equal(b.seq, 1);
    assert.ok(chatMessageSchema.safeParse(b).success);
  });

  test('the history keeps only the last historySize messages, oldest first', () => {
    const chat = new RoomChat({ messagesPerSecond: 1000, burst: 1000, historySize: 5 });
    for (let i = 0; i < 12; i++) chat.post(i % 2 ? ada : bob, `m${i}`);
    assert.deepEqual(chat.history.map((m) => m.text), ['m7', 'm8', 'm9', 'm10', 'm11']);
    const none = new RoomChat({ messagesPerSecond: 1, burst: 1, historySize: 0 });
    none.post(ada, 'x');
    assert.deepEqual(none.history, []);
  });

  test('a peer over its burst is refused with RATE_LIMITED 429 while another peer still chats, and it recovers at the sustained rate', async () => {
    const chat = new RoomChat({ messagesPerSecond: 10, burst: 3, historySize: 50 });
    for (let i = 0; i < 3; i++) chat.post(ada, `a${i}`);
    assert.throws(() => chat.post(ada, 'one too many'), (err: unknown) => err instanceof AppError && err.code === 'RATE_LIMITED' && err.status === 429);
    assert.equal(chat.post(bob, 'me too').peerId, 'peer-bob');
    assert.ok(!chat.history.some((m) => m.text === 'one too many'), 'a refused message is not kept');
    await sleep(150); // ~1.5 tokens at 10/s
    assert.equal(chat.post(ada, 'later').text, 'later');
  });

  test('bad limits are TypeErrors', () => {
    assert.throws(() => new RoomChat({ messagesPerSecond: 0, burst: 1, historySize: 1 }), TypeError);
    assert.throws(() => new RoomChat({ messagesPerSecond: 1, burst: 0, historySize: 1 }), TypeError);
    assert.throws(() => new RoomChat({ messagesPerSecond: 1, burst: 1, historySize: -1 }), TypeError);
  });
});

describe('sendChatMessage validation', () => {
  test('text is trimmed; empty, over-long and control-character text is refused with BAD_REQUEST naming the rule', () => {
    const ok = parseRequest('sendChatMessage', { text: '  <img src=x onerror=alert(1)>  ' });
    assert.equal(ok.ok, true);
    if (ok.ok) assert.equal(ok.value.text, '<img src=x onerror=alert(1)>');
    assert.equal(parseRequest('sendChatMessage', { text: 'x'.repeat(CHAT_MAX_CHARS) }).ok, true);
    assert.equal(parseRequest('sendChatMessage', { text: 'two\nlines\ttab' }).ok, true);
    const refused = (payload: unknown, part: string): void => {
      const r = parseRequest('sendChatMessage', payload);
      assert.equal(r.ok, false, JSON.stringify(payload).slice(0, 60));
      if (!r.ok) {
        assert.equal(r.error.code, 'BAD_REQUEST');
        assert.ok(r.error.message.includes(part), r.error.message);
      }
    };
    refused({ text: '   ' }, 'empty');
    refused({ text: 'x'.repeat(CHAT_MAX_CHARS + 1) }, `at most ${CHAT_MAX_CHARS}`);
    refused({ text: 'bell\u0007' }, 'control characters');
    refused({ text: 42 }, 'text');
    refused({ text: 'hi', html: '<b>' }, 'html');
  });
});

class Client {
  readonly socket: ClientSocket;
  readonly messages: ChatMessage[] = [];
  constructor(url: string) {
    this.socket = ioClient(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 });
    this.socket.on('chat:message', (m: ChatMessage) => this.messages.push(m));
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
  async join(roomId: string, displayName: string, token?: string): Promise<JoinResponse> {
    const r = await this.request<JoinResponse>('join', { protocolVersion: SIGNALING_PROTOCOL_VERSION, roomId, displayName, ...(token ? { token } : {}) });
    if (!r.ok) throw new Error(`join failed: ${JSON.stringify(r.error)}`);
    return r.data;
  }
  send(text: string): Promise<Ack<ChatMessage>> {
    return this.request<ChatMessage>('sendChatMessage', { text });
  }
  close(): void {
    this.socket.disconnect();
  }
}

describe('chat through signaling', () => {
  let server: AvatarServer;
  const clients: Client[] = [];
  const connect = async (): Promise<Client> => {
    const c = await Client.connect(server.httpUrl);
    clients.push(c);
    return c;
  };
  before(async () => {
    server = await startTestServer({ chat: { messagesPerSecond: 2, burst: 5, historySize: 3 } });
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  test('a message reaches every other participant of the room in order, and the sender gets it as the answer', async () => {
    const [a, b, c, outsider] = [await connect(), await connect(), await connect(), await connect()];
    await a.join('chat-order', 'Ada');
    await b.join('chat-order', 'Bob');
    await c.join('chat-order', 'Cy');
    await outsider.join('elsewhere', 'Eve');
    const sent: ChatMessage[] = [];
    for (const text of ['one', 'two', 'three']) {
      const ack = await a.send(text);
      assert.equal(ack.ok, true, JSON.stringify(ack));
      if (ack.ok) sent.push(ack.data);
    }
    assert.deepEqual(sent.map((m) => m.displayName), ['Ada', 'Ada', 'Ada']);
    for (const receiver of [b, c]) {
      await waitFor(() => receiver.messages.length >= 3 || undefined, { timeoutMs: 3000, what: 'three messages' });
      assert.deepEqual(receiver.messages, sent);
    }
    await sleep(100);
    assert.equal(a.messages.length, 0, 'the sender is not sent its own message again');
    assert.equal(outsider.messages.length, 0, 'another room hears nothing');
  });

  test('a late joiner gets the bounded recent history, oldest first', async () => {
    const a = await connect();
    await a.join('chat-history', 'Ada');
    for (const text of ['m1', 'm2', 'm3', 'm4']) assert.equal((await a.send(text)).ok, true);
    const late = await connect();
    const joined = await late.join('chat-history', 'Late');
    assert.deepEqual(joined.chatHistory.map((m) => m.text), ['m2', 'm3', 'm4']);
    const empty = await connect();
    assert.deepEqual((await empty.join('chat-empty-room', 'New')).chatHistory, []);
  });

  test('a flood is refused with RATE_LIMITED 429 after the burst, others are not flooded, and the socket stays in the room', async () => {
    const a = await connect();
    const b = await connect();
    await a.join('chat-flood', 'Flooder');
    await b.join('chat-flood', 'Bob');
    const acks = await Promise.all(Array.from({ length: 20 }, (_, i) => a.send(`spam ${i}`)));
    const accepted = acks.filter((x) => x.ok).length;
    assert.ok(accepted >= 5 && accepted <= 6, `${accepted} accepted with a burst of 5`);
    for (const x of acks.filter((y) => !y.ok)) {
      if (x.ok) continue;
      assert.equal(x.error.code, 'RATE_LIMITED');
      assert.equal(x.error.status, 429);
      assert.match(x.error.message, /chat/);
    }
    await sleep(200);
    assert.equal(b.messages.length, accepted, 'only accepted messages reach the others');
    assert.equal(a.socket.connected, true);
    assert.equal((await b.send('still here')).ok, true, 'another peer is not limited by the flooder');
  });

  test('chat before join is refused with NOT_JOINED 409', async () => {
    const c = await connect();
    const ack = await c.send('hello?');
    assert.equal(ack.ok, false);
    if (!ack.ok) assert.equal(ack.error.code, 'NOT_JOINED');
  });
});

describe('chat grants', () => {
  const SECRET = 'chat-test-secret-0123456789abcdef-0123';
  let server: AvatarServer;
  let tokens: AccessTokens;
  const clients: Client[] = [];
  before(async () => {
    server = await startTestServer({}, { AUTH_SECRET: SECRET });
    tokens = await AccessTokens.create({ secret: SECRET });
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  test('a token without canPublishData cannot chat (GRANT_MISSING 403) but still receives messages; one with it can', async () => {
    const listener = await Client.connect(server.httpUrl);
    const talker = await Client.connect(server.httpUrl);
    clients.push(listener, talker);
    await listener.join('graded', 'L', (await tokens.mint({ room: 'graded', name: 'Listener', ttlS: 60, grants: { canSubscribe: true } })).token);
    await talker.join('graded', 'T', (await tokens.mint({ room: 'graded', name: 'Talker', ttlS: 60, grants: { canSubscribe: true, canPublishData: true } })).token);
    const refused = await listener.send('may I?');
    assert.equal(refused.ok, false);
    if (!refused.ok) {
      assert.equal(refused.error.code, 'GRANT_MISSING');
      assert.equal(refused.error.status, 403);
    }
    assert.equal((await talker.send('yes')).ok, true);
    await waitFor(() => listener.messages[0], { timeoutMs: 3000, what: 'the message' });
    assert.equal(listener.messages[0]!.displayName, 'Talker', 'the name is the token\'s');
  });
});
