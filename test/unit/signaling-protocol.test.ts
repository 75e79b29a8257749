import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_MESSAGE_BYTES,
  SIGNALING_PROTOCOL_VERSION,
  errorBodySchema,
  isRequestName,
  notificationSchemas,
  parseRequest,
  requestSchemas,
  type RequestName,
  workerRequestSchemas,
} from '../../protocol/src/signaling.ts';
import { approximateSize } from '../../server/src/signaling/SignalingServer.ts';

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';

/** One valid payload per request type. */
const valid: { [N in RequestName]: unknown } = {
  join: { protocolVersion: SIGNALING_PROTOCOL_VERSION, roomId: 'demo-room_1', displayName: 'Ada' },
  leave: {},
  restartTransports: {},
  publish: { offer: { type: 'offer', sdp: SDP } },
  setProducerPaused: { kind: 'video', paused: true },
  requestKeyFrame: { consumerId: 'abc_DEF-123' },
  setAvatarView: { peerId: 'peer-1', scope: 'personal', view: { yaw: 10, pitch: -5, roll: 0 } },
  setAvatarPaused: { paused: true },
  closeProducer: { producerId: 'abc_DEF-123' },
  sendChatMessage: { text: 'hello <b>all</b>' },
};

function assertRefused(name: RequestName, payload: unknown, messagePart?: string | RegExp): string {
  const result = parseRequest(name, payload);
  assert.equal(result.ok, false, `${name} ${JSON.stringify(payload)?.slice(0, 80)} should be refused`);
  if (result.ok) throw new Error('unreachable');
  assert.equal(result.error.code, 'BAD_REQUEST');
  assert.equal(result.error.status, 400);
  assert.ok(errorBodySchema.safeParse(result.error).success, 'error body matches the protocol schema');
  assert.ok(result.error.message.startsWith(`invalid ${name}: `), `message names the request: ${result.error.message}`);
  assert.ok(result.error.message.length < 300, 'message is short enough to show to a user');
  if (messagePart instanceof RegExp) assert.match(result.error.message, messagePart);
  else if (messagePart) assert.ok(result.error.message.includes(messagePart), `"${result.error.message}" mentions "${messagePart}"`);
  return result.error.message;
}

describe('parseRequest', () => {
  test('every request type declared by the protocol has a valid example here', () => {
    assert.deepEqual(Object.keys(requestSchemas).sort(), Object.keys(valid).sort());
  });

  for (const name of Object.keys(valid) as RequestName[]) {
    test(`a valid ${name} request is accepted and returned typed`, () => {
      const result = parseRequest(name, valid[name]);
      assert.equal(result.ok, true, JSON.stringify(result));
      if (result.ok) assert.deepEqual(result.value, valid[name]);
    });
  }

  test('both media kinds and both pause states are accepted by setProducerPaused', () => {
    for (const kind of ['audio', 'video']) {
      for (const paused of [true, false]) assert.equal(parseRequest('setProducerPaused', { kind, paused }).ok, true);
    }
  });

  test('join trims the room name and display name and accepts non-ASCII letters', () => {
    const result = parseRequest('join', { protocolVersion: 1, roomId: '  Café 1.b  ', displayName: '  Zoë ' });
    assert.ok(result.ok);
    assert.equal(result.value.roomId, 'Café 1.b');
    assert.equal(result.value.displayName, 'Zoë');
  });

  test('join accepts the optional avatar identity and avatar-session token', () => {
    assert.equal(parseRequest('join', { ...(valid.join as object), avatar: { identityId: 'identity_01' } }).ok, true);
    assert.equal(parseRequest('join', { ...(valid.join as object), avatarSession: 's'.repeat(32) }).ok, true);
    assertRefused('join', { ...(valid.join as object), avatar: { identityId: 'short' } }, 'avatar.identityId');
    assertRefused('join', { ...(valid.join as object), avatar: { identityId: 'identity_01', extra: 1 } }, 'avatar');
    assertRefused('join', { ...(valid.join as object), avatarSession: 'short' }, 'avatarSession');
  });

  test('publish accepts a trackViews map and refuses oversized keys', () => {
    assert.equal(parseRequest('publish', { ...(valid.publish as object), trackViews: { '0': 'default', '1': 'view-a' } }).ok, true);
    assertRefused('publish', { ...(valid.publish as object), trackViews: { ['m'.repeat(17)]: 'x' } }, 'trackViews');
    assertRefused('publish', { ...(valid.publish as object), trackViews: { '0': 5 } }, 'trackViews');
  });

  test('setAvatarView accepts a null view and refuses NaN, Infinity and out-of-range angles', () => {
    assert.equal(parseRequest('setAvatarView', { peerId: 'p', scope: 'default', view: null }).ok, true);
    for (const yaw of [Number.NaN, Number.POSITIVE_INFINITY, 91, -91]) {
      assertRefused('setAvatarView', { peerId: 'p', scope: 'personal', view: { yaw, pitch: 0, roll: 0 } }, 'view.yaw');
    }
    assertRefused('setAvatarView', { peerId: 'p', scope: 'everyone', view: null }, 'scope');
    assertRefused('setAvatarView', { peerId: 'p', scope: 'personal', view: { yaw: 0, pitch: 0 } }, 'view.roll');
  });

  test('join accepts any positive integer protocol version (the server decides which it speaks)', () => {
    assert.equal(parseRequest('join', { ...(valid.join as object), protocolVersion: 99 }).ok, true);
  });

  test('null, undefined, arrays, strings and numbers are refused as payloads of every request', () => {
    for (const name of Object.keys(valid) as RequestName[]) {
      for (const payload of [null, undefined, [], [valid[name]], 'join', 42, true]) assertRefused(name, payload);
    }
  });

  test('extra keys are refused at the top level and inside nested objects', () => {
    for (const name of Object.keys(valid) as RequestName[]) {
      assertRefused(name, { ...(valid[name] as object), extra: 1 }, 'extra');
    }
    assertRefused('join', JSON.parse('{"protocolVersion":1,"roomId":"a","displayName":"b","__proto__":{"admin":true}}'));
  });

  test('fields of the wrong type are refused with the field path in the message', () => {
    assertRefused('join', { protocolVersion: '1', roomId: 'a', displayName: 'b' }, 'protocolVersion');
    assertRefused('join', { protocolVersion: 1, roomId: 5, displayName: 'b' }, 'roomId');
    assertRefused('join', { protocolVersion: 1, roomId: 'a', displayName: ['b'] }, 'displayName');
    assertRefused('publish', { offer: 'v=0' }, 'offer');
    assertRefused('publish', { offer: { type: 'answer', sdp: SDP } }, 'offer.type');
    assertRefused('publish', { offer: { type: 'offer', sdp: 7 } }, 'offer.sdp');
    assertRefused('setProducerPaused', { kind: 'screen', paused: true }, 'kind');
    assertRefused('setProducerPaused', { kind: 'audio', paused: 'yes' }, 'paused');
    assertRefused('setProducerPaused', { kind: 'audio', paused: 1 }, 'paused');
    assertRefused('requestKeyFrame', { consumerId: 42 }, 'consumerId');
  });

  test('missing fields are refused', () => {
    assertRefused('join', { protocolVersion: 1, roomId: 'a' }, 'displayName');
    assertRefused('join', { roomId: 'a', displayName: 'b' }, 'protocolVersion');
    assertRefused('publish', {}, 'offer');
    assertRefused('publish', { offer: { type: 'offer' } }, 'offer.sdp');
    assertRefused('setProducerPaused', { kind: 'audio' }, 'paused');
    assertRefused('requestKeyFrame', {}, 'consumerId');
  });

  test('NaN, Infinity, fractions, zero and negative protocol versions are refused', () => {
    for (const protocolVersion of [Number.NaN, Number.POSITIVE_INFINITY, -1, 0, 1.5]) {
      assertRefused('join', { protocolVersion, roomId: 'a', displayName: 'b' }, 'protocolVersion');
    }
  });

  test('too-long strings are refused', () => {
    assertRefused('join', { protocolVersion: 1, roomId: 'r'.repeat(65), displayName: 'b' }, 'roomId');
    assertRefused('join', { protocolVersion: 1, roomId: 'a', displayName: 'd'.repeat(49) }, 'displayName');
    assertRefused('publish', { offer: { type: 'offer', sdp: 'x'.repeat(MAX_MESSAGE_BYTES + 1) } }, 'offer.sdp');
    assertRefused('requestKeyFrame', { consumerId: 'c'.repeat(65) }, 'consumerId');
    assert.equal(parseRequest('join', { protocolVersion: 1, roomId: 'r'.repeat(64), displayName: 'd'.repeat(48) }).ok, true);
  });

  test('empty and blank strings are refused', () => {
    assertRefused('join', { protocolVersion: 1, roomId: '', displayName: 'b' }, 'roomId');
    assertRefused('join', { protocolVersion: 1, roomId: '   ', displayName: 'b' }, 'roomId');
    assertRefused('join', { protocolVersion: 1, roomId: 'a', displayName: '  ' }, 'displayName');
    assertRefused('publish', { offer: { type: 'offer', sdp: '' } }, 'offer.sdp');
    assertRefused('requestKeyFrame', { consumerId: '' }, 'consumerId');
  });

  test('room names with path, markup or control characters are refused', () => {
    for (const roomId of ['../etc', 'a/b', '<script>', 'a\nb', 'a\u0000b', 'room?x=1', 'a%20b', '💥']) {
      assertRefused('join', { protocolVersion: 1, roomId, displayName: 'b' }, /roomId: letters, digits/);
    }
  });

  test('consumer ids with characters outside [A-Za-z0-9_-] are refused', () => {
    for (const consumerId of ['a b', 'a.b', 'ä', 'a/b']) assertRefused('requestKeyFrame', { consumerId }, 'consumerId');
  });

  test('parseRequest never throws, whatever it is given', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    const hostile = [Symbol('x'), () => 1, new Map(), new Date(), cyclic, Object.create(null), BigInt(1), new Uint8Array(4)];
    for (const name of Object.keys(valid) as RequestName[]) {
      for (const payload of hostile) assert.doesNotThrow(() => parseRequest(name, payload));
    }
  });
});

describe('isRequestName', () => {
  test('isRequestName accepts exactly the declared requests and not inherited object keys', () => {
    for (const name of Object.keys(requestSchemas)) assert.equal(isRequestName(name), true);
    for (const name of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'peer:joined', '', 'JOIN', 42, null, undefined]) {
      assert.equal(isRequestName(name), false, String(name));
    }
  });

  test('notification schemas accept what the server sends', () => {
    assert.ok(notificationSchemas['peer:left'].safeParse({ peerId: 'abc123' }).success);
    assert.ok(notificationSchemas['server:error'].safeParse({ code: 'RATE_LIMITED', message: 'x', status: 429 }).success);
    assert.ok(!notificationSchemas['server:error'].safeParse({ code: 'NOPE', message: 'x', status: 429 }).success);
  });
});

describe('approximateSize', () => {
  test('approximateSize() of plain JSON equals its UTF-8 JSON length', () => {
    for (const v of [{ a: 1, b: 'x' }, 'héllo', [1, 2, 3], null, 0, { nested: { deep: ['ü', true] } }]) {
      assert.equal(approximateSize(v), Buffer.byteLength(JSON.stringify(v)));
    }
  });

  test('approximateSize() of undefined or a function is 0', () => {
    assert.equal(approximateSize(undefined), 0);
    assert.equal(approximateSize(() => 1), 0);
  });

  test('approximateSize() counts a Buffer by its byte length, not its JSON expansion', () => {
    const size = approximateSize({ blob: Buffer.alloc(100_000, 0xff) });
    assert.ok(size >= 100_000, `${size}`);
    assert.ok(size < 100_100, `${size} (a Buffer as JSON would be ~400 KB)`);
  });

  test('approximateSize() counts typed arrays, DataView and ArrayBuffer by byte length', () => {
    for (const bin of [new Uint8Array(50_000), new Float32Array(12_500), new DataView(new ArrayBuffer(50_000))]) {
      const size = approximateSize({ bin });
      assert.ok(size >= 50_000 && size < 50_100, `${bin.constructor.name}: ${size}`);
    }
    // A bare ArrayBuffer is also counted by its bytes.
    const ab = approximateSize({ ab: new ArrayBuffer(50_000) });
    assert.ok(ab >= 50_000 && ab < 50_100, `ArrayBuffer: ${ab}`);
  });

  test('approximateSize() counts a top-level Buffer and binaries nested in arrays', () => {
    assert.ok(approximateSize(Buffer.alloc(1000)) >= 1000);
    const size = approximateSize([{ a: Buffer.alloc(300) }, { b: [new Uint8Array(700)] }]);
    assert.ok(size >= 1000 && size < 1100, `${size}`);
  });

  test('approximateSize() counts a plain object that only looks like a serialized Buffer by its JSON size', () => {
    // A client can send {type:'Buffer', data:[...]} as JSON; counting data.length would let 1 "byte" carry 100 KB.
    const fake = { offer: { type: 'Buffer', data: ['x'.repeat(100_000)] } };
    assert.ok(approximateSize(fake) > 100_000, `${approximateSize(fake)}`);
  });

  test('approximateSize() of a payload just over MAX_MESSAGE_BYTES in binary exceeds the limit', () => {
    assert.ok(approximateSize({ offer: Buffer.alloc(MAX_MESSAGE_BYTES + 1) }) > MAX_MESSAGE_BYTES);
  });

  test('approximateSize() of a cyclic or BigInt payload is infinite (refused as too large)', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    assert.equal(approximateSize(cyclic), Number.POSITIVE_INFINITY);
    assert.equal(approximateSize({ n: BigInt(1) }), Number.POSITIVE_INFINITY);
  });
});

describe('worker messages', () => {
  const session = { sessionId: 'abc123', frames: 10, renderMsTotal: 30, motionAccepted: 0, motionDropped: { invalid: 0, oversized: 0, late: 0, flood: 0 }, views: 1 };
  const tap = { decoded: 500, late: 1, duplicate: 0, invalid: 0, undecodable: 0, concealedMs: 10 };

  test('worker:stats accepts voice sessions with audio-tap counters and early frames, and older workers without them', () => {
    const parsed = workerRequestSchemas['worker:stats'].parse({ sessions: [{ ...session, audioDelayMs: 60, audioTap: tap, earlyFrames: 7 }, session] });
    assert.deepEqual(parsed.sessions[0]!.audioTap, tap);
    assert.equal(parsed.sessions[1]!.earlyFrames, 0, 'defaults to 0');
    assert.equal(parsed.sessions[1]!.audioTap, undefined);
  });

  test('worker:stats refuses negative or fractional tap counters and unknown tap fields', () => {
    for (const bad of [{ ...tap, late: -1 }, { ...tap, decoded: 1.5 }, { ...tap, extra: 1 }]) {
      assert.equal(workerRequestSchemas['worker:stats'].safeParse({ sessions: [{ ...session, audioTap: bad }] }).success, false, JSON.stringify(bad));
    }
  });
});
