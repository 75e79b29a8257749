/**
 * Lifecycle of Room / Peer / RoomManager / WebRtcTransport / Producer / Consumer with real werift
 * connections on loopback. npm test runs this inside a loopback-only network namespace.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../server/src/config.ts';
import { AppError, InvalidStateError } from '../../server/src/errors.ts';
import { Metrics } from '../../server/src/metrics.ts';
import { Room } from '../../server/src/rooms/Room.ts';
import { Peer } from '../../server/src/rooms/Peer.ts';
import { RoomManager } from '../../server/src/rooms/RoomManager.ts';
import { AvatarRouting } from '../../server/src/avatar/service/AvatarRouting.ts';
import { WebRtcTransport, type WebRtcTransportOptions } from '../../server/src/sfu/WebRtcTransport.ts';
import type { Producer } from '../../server/src/sfu/Producer.ts';
import { ntpNow, ntpToUnixMs } from '../../server/src/sfu/senderClock.ts';
import { AUDIO_TAP_LABEL, decodeAudioTapPacket } from '../../protocol/src/audioTap.ts';
import { WeriftBrowser } from '../helpers/weriftBrowser.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const logger = pino({ level: process.env['LOG_LEVEL'] ?? 'silent' });
const baseConfig = loadConfig({ HOST: '127.0.0.1', RTC_LISTEN_IP: '127.0.0.1', RTC_ANNOUNCED_IP: '127.0.0.1', LOG_LEVEL: 'silent' });

function configWith(limits: Partial<Config['limits']> = {}): Config {
  return { ...baseConfig, limits: { ...baseConfig.limits, ...limits } };
}

function newMetrics(): Metrics {
  return new Metrics({ defaultMetrics: false });
}

type Readable = { get(): Promise<{ values: { value: number }[] }> };
async function total(gauge: Readable): Promise<number> {
  return (await gauge.get()).values.reduce((sum, v) => sum + v.value, 0);
}

async function gauges(metrics: Metrics): Promise<Record<'rooms' | 'peers' | 'transports' | 'producers' | 'consumers', number>> {
  return {
    rooms: await total(metrics.rooms),
    peers: await total(metrics.peers),
    transports: await total(metrics.transports),
    producers: await total(metrics.producers),
    consumers: await total(metrics.consumers),
  };
}

const ZERO = { rooms: 0, peers: 0, transports: 0, producers: 0, consumers: 0 };

function udpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}

function transportOptions(metrics: Metrics, direction: 'send' | 'recv'): WebRtcTransportOptions {
  return { direction, rtc: baseConfig.rtc, pacer: { bitrateBps: 10_000_000, maxQueuePackets: 100 }, logger, metrics };
}

function assertInvalidState(fn: () => unknown, what: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidStateError, `${what}: got ${String(err)}`);
    assert.equal(err.code, 'INVALID_STATE');
    assert.equal(err.status, 409);
    return true;
  });
}

/** A peer of `room` whose werift "browser" publishes audio+video and answers every receive offer. */
async function joinAndPublish(room: Room, name: string): Promise<{ peer: Peer; browser: WeriftBrowser }> {
  const peer = await room.join(name);
  const browser = new WeriftBrowser();
  peer.setOfferSignal((offer) => browser.answer(offer));
  const { answer, producers } = await peer.publish(await browser.publishOffer());
  await browser.applyPublishAnswer(answer);
  assert.deepEqual(producers.map((p) => p.kind).sort(), ['audio', 'video']);
  // A werift transport closed in the middle of its DTLS handshake keeps retransmitting its last flight
  // for ~33 s (and keeps the process alive): wait until both ends are connected.
  await browser.waitSendConnected();
  await waitFor(() => peer.sendTransport.connectionState === 'connected', { timeoutMs: 10_000, intervalMs: 5, what: 'server send transport connected' });
  // What the signaling layer does after join: offer what is already published in the room.
  if (peer.consumers.length > 0) peer.renegotiate();
  return { peer, browser };
}

/** What AvatarService composes in the room for a participant who joined as a voice avatar. */
function routeAsVoiceAvatar(room: Room, owner: Peer, config: Config = configWith()): AvatarRouting {
  return new AvatarRouting({ room, owner, driver: 'voice', config });
}

/** `peer` publishes audio + video from a new werift "browser", which also answers its receive offers. */
async function publishFromBrowser(peer: Peer): Promise<WeriftBrowser> {
  const browser = new WeriftBrowser();
  browsers.push(browser);
  peer.setOfferSignal((offer) => browser.answer(offer));
  await browser.applyPublishAnswer((await peer.publish(await browser.publishOffer())).answer);
  await browser.waitSendConnected();
  return browser;
}

const browsers: WeriftBrowser[] = [];
after(async () => {
  await Promise.all(browsers.map((b) => b.close()));
});

describe('ntpNow', () => {
  test('ntpNow() puts the sub-second part in the 32-bit NTP fraction (half a second is 2^31) and round-trips to the millisecond', () => {
    const ms = Date.UTC(2026, 10, 21, 12, 0, 0, 500);
    const ntp = ntpNow(ms);
    assert.equal(Number(ntp & 0xffffffffn), 2 ** 31);
    assert.equal(Number(ntp >> 32n), ms / 1000 - 0.5 + 2_208_988_800);
    for (const t of [ms + 1, ms + 123.456, ms + 999.999]) assert.ok(Math.abs(ntpToUnixMs(ntpNow(t)) - t) < 0.001);
  });
});

describe('WebRtcTransport', () => {
  test('WebRtcTransport.create() with an invalid direction is refused with a TypeError', async () => {
    const metrics = newMetrics();
    await assert.rejects(WebRtcTransport.create({ ...transportOptions(metrics, 'send'), direction: 'both' as 'send' }), TypeError);
    assert.equal(await total(metrics.transports), 0, 'nothing was counted for the refused transport');
  });

  test('close() on a WebRtcTransport is idempotent, emits close once and returns the gauge to 0', async () => {
    const metrics = newMetrics();
    const t = await WebRtcTransport.create(transportOptions(metrics, 'recv'));
    assert.equal(await total(metrics.transports), 1);
    let closes = 0;
    t.on('close', () => closes++);
    assert.equal(t.closed, false);
    t.close();
    t.close();
    t.close();
    assert.equal(t.closed, true);
    assert.equal(closes, 1);
    assert.equal(await total(metrics.transports), 0);
  });

  test('methods on a closed WebRtcTransport throw InvalidStateError', async () => {
    const metrics = newMetrics();
    const send = await WebRtcTransport.create(transportOptions(metrics, 'send'));
    const recv = await WebRtcTransport.create(transportOptions(metrics, 'recv'));
    send.close();
    recv.close();
    await assert.rejects(send.processOffer({ type: 'offer', sdp: 'v=0' }), InvalidStateError);
    assertInvalidState(() => recv.negotiate(async () => ({ type: 'answer', sdp: 'v=0' })), 'negotiate');
  });

  test('processOffer() on a recv transport and consume() on a send transport throw InvalidStateError', async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'wrong-direction', config: configWith(), logger, metrics });
    const { peer, browser } = await joinAndPublish(room, 'ada');
    browsers.push(browser);
    await assert.rejects(peer.recvTransport.processOffer({ type: 'offer', sdp: 'v=0' }), InvalidStateError);
    assertInvalidState(() => peer.sendTransport.consume(peer.producers[0]!, peer.id), 'consume on send');
    await assert.rejects(peer.sendTransport.processOffer({ type: 'answer', sdp: 'v=0' }), TypeError);
    room.close();
    assert.deepEqual(await gauges(metrics), ZERO);
  });
});

describe('Peer', () => {
  test('Peer.create() without a display name is refused with a TypeError', async () => {
    const metrics = newMetrics();
    const transport = { rtc: baseConfig.rtc, pacer: { bitrateBps: 1_000_000, maxQueuePackets: 10 }, metrics };
    await assert.rejects(Peer.create({ displayName: '', logger, transport }), TypeError);
    await assert.rejects(Peer.create({ displayName: undefined as unknown as string, logger, transport }), TypeError);
    await assert.rejects(Peer.create({ displayName: 'bot', role: 'delegate', logger, transport }), TypeError, 'an avatar peer needs its owner');
    assert.equal(await total(metrics.transports), 0, 'no transport was created for a refused peer');
  });

  test('close() on a Peer is idempotent and closes both of its transports', async () => {
    const metrics = newMetrics();
    const peer = await Peer.create({ displayName: 'ada', logger, transport: { rtc: baseConfig.rtc, pacer: { bitrateBps: 1_000_000, maxQueuePackets: 10 }, metrics } });
    assert.equal(await total(metrics.transports), 2);
    let closes = 0;
    peer.on('close', () => closes++);
    peer.close();
    peer.close();
    assert.equal(closes, 1);
    assert.equal(peer.closed, true);
    assert.equal(peer.sendTransport.closed, true);
    assert.equal(peer.recvTransport.closed, true);
    assert.equal(await total(metrics.transports), 0);
  });

  test('methods on a closed Peer throw InvalidStateError', async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'closed-peer', config: configWith(), logger, metrics });
    const a = await joinAndPublish(room, 'ada');
    const b = await room.join('bob');
    browsers.push(a.browser);
    const producer = a.peer.producers[0]!;
    b.close();
    await assert.rejects(b.publish({ type: 'offer', sdp: 'v=0' }), InvalidStateError);
    assertInvalidState(() => b.setProducerPaused('audio', true), 'setProducerPaused');
    assertInvalidState(() => b.consume(producer, a.peer.id), 'consume');
    b.renegotiate(); // a no-op, not a throw
    room.close();
  });

  test('setProducerPaused() for a kind the peer has not published throws InvalidStateError', async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'nothing-published', config: configWith(), logger, metrics });
    const peer = await room.join('ada');
    assertInvalidState(() => peer.setProducerPaused('video', true), 'no producer');
    room.close();
  });
});

describe('Room and RoomManager', () => {
  test('Room.create() without an id is refused with a TypeError', async () => {
    const metrics = newMetrics();
    await assert.rejects(Room.create({ id: '', config: configWith(), logger, metrics }), TypeError);
    await assert.rejects(Room.create({ id: 42 as unknown as string, config: configWith(), logger, metrics }), TypeError);
    assert.equal(await total(metrics.rooms), 0);
  });

  test('joining a full room is refused with ROOM_FULL 403 and creates nothing', async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'tiny', config: configWith({ maxPeersPerRoom: 2 }), logger, metrics });
    await room.join('ada');
    await room.join('bob');
    const before = await gauges(metrics);
    await assert.rejects(room.join('cyd'), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'ROOM_FULL');
      assert.equal(err.status, 403);
      assert.match(err.message, /tiny.*full.*2/);
      return true;
    });
    assert.deepEqual(await gauges(metrics), before);
    assert.equal(room.peers.size, 2);
    room.close();
    assert.deepEqual(await gauges(metrics), ZERO);
  });

  test('close() on a Room is idempotent, and join() on a closed room throws InvalidStateError', async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'r', config: configWith(), logger, metrics });
    let closes = 0;
    room.on('close', () => closes++);
    room.close();
    room.close();
    assert.equal(closes, 1);
    assert.equal(room.closed, true);
    await assert.rejects(room.join('late'), InvalidStateError);
    assert.deepEqual(await gauges(metrics), ZERO);
  });

  test('a room closes itself when its last peer leaves', async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'r', config: configWith(), logger, metrics });
    const left: string[] = [];
    room.on('peerleft', (p) => left.push(p.id));
    const a = await room.join('ada');
    const b = await room.join('bob');
    a.close();
    assert.equal(room.closed, false);
    assert.deepEqual(left, [a.id]);
    b.close();
    assert.equal(room.closed, true);
    assert.deepEqual(left, [a.id, b.id]);
    assert.deepEqual(await gauges(metrics), ZERO);
  });

  test('RoomManager creates a room once for concurrent joins and removes it when it empties', async () => {
    const metrics = newMetrics();
    const manager = new RoomManager(configWith(), logger, metrics);
    const [r1, r2] = await Promise.all([manager.getOrCreate('same'), manager.getOrCreate('same')]);
    assert.equal(r1, r2);
    assert.equal(await total(metrics.rooms), 1);
    const peer = await r1.join('ada');
    assert.deepEqual(manager.list().map((r) => [r.roomId, r.peers]), [['same', 1]]);
    assert.ok(!Number.isNaN(Date.parse(manager.list()[0]!.createdAt)));
    peer.close();
    assert.equal(r1.closed, true);
    assert.equal(manager.rooms.size, 0);
    assert.deepEqual(manager.list(), []);
    const r3 = await manager.getOrCreate('same');
    assert.notEqual(r3, r1, 'a new room replaces the closed one');
    manager.close();
    assert.deepEqual(await gauges(metrics), ZERO);
  });

  test('RoomManager refuses rooms beyond maxRooms with AT_CAPACITY 503, also when asked concurrently', async () => {
    const metrics = newMetrics();
    const manager = new RoomManager(configWith({ maxRooms: 2 }), logger, metrics);
    const results = await Promise.allSettled(['a', 'b', 'c', 'd'].map((id) => manager.getOrCreate(id)));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2);
    for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
      assert.ok(r.reason instanceof AppError);
      assert.equal(r.reason.code, 'AT_CAPACITY');
      assert.equal(r.reason.status, 503);
    }
    assert.equal(manager.rooms.size, 2);
    assert.equal(await total(metrics.rooms), 2);
    // An existing room is still reachable at the limit.
    assert.equal(await manager.getOrCreate('a'), manager.rooms.get('a'));
    manager.close();
  });

  test('close() on a RoomManager is idempotent, closes its rooms and refuses later getOrCreate()', async () => {
    const metrics = newMetrics();
    const manager = new RoomManager(configWith(), logger, metrics);
    const room = await manager.getOrCreate('x');
    const peer = await room.join('ada');
    const pending = manager.getOrCreate('being-created');
    manager.close();
    manager.close();
    await assert.rejects(pending, InvalidStateError, 'a room being created while the manager closes is not left open');
    assert.equal(room.closed, true);
    assert.equal(peer.closed, true);
    await assert.rejects(manager.getOrCreate('y'), InvalidStateError);
    assert.deepEqual(await gauges(metrics), ZERO);
  });
});

describe('negotiated peers', () => {
  test('closing a room closes its peers, their transports, producers and consumers, and the gauges return to 0', async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'call', config: configWith(), logger, metrics });
    const a = await joinAndPublish(room, 'ada');
    const b = await joinAndPublish(room, 'bob');
    browsers.push(a.browser, b.browser);
    await Promise.all([a.browser.waitSendConnected(), b.browser.waitSendConnected(), a.browser.waitRecvConnected(), b.browser.waitRecvConnected()]);
    assert.deepEqual(await gauges(metrics), { rooms: 1, peers: 2, transports: 4, producers: 4, consumers: 4 });
    for (const peer of [a.peer, b.peer]) {
      assert.equal(peer.sendTransport.connectionState, 'connected');
      assert.equal(peer.recvTransport.connectionState, 'connected');
      assert.deepEqual(peer.consumers.map((c) => c.kind).sort(), ['audio', 'video']);
    }
    const producers = [...a.peer.producers, ...b.peer.producers];
    const consumers = [...a.peer.consumers, ...b.peer.consumers];
    const transports = [a.peer.sendTransport, a.peer.recvTransport, b.peer.sendTransport, b.peer.recvTransport];

    room.close();
    room.close();
    assert.ok(a.peer.closed && b.peer.closed, 'peers closed');
    for (const t of transports) assert.equal(t.closed, true, `transport ${t.direction} closed`);
    for (const p of producers) assert.equal(p.closed, true, `producer ${p.kind} closed`);
    for (const c of consumers) assert.equal(c.closed, true, `consumer ${c.kind} closed`);
    for (const p of producers) p.close(); // idempotent
    for (const c of consumers) c.close();
    assert.deepEqual(await gauges(metrics), ZERO);
    assert.throws(() => producers[0]!.addRtpListener(() => undefined), InvalidStateError);
    assert.throws(() => producers[0]!.pause(), InvalidStateError);
    assert.throws(() => producers[0]!.resume(), InvalidStateError);
    assert.equal(producers.find((p) => p.kind === 'video')!.requestKeyFrame(), false, 'no keyframe request on a closed producer');
  });

  test('RTP published by one peer reaches the other, stops while the producer is paused and resumes after', async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'media', config: configWith(), logger, metrics });
    const a = await joinAndPublish(room, 'ada');
    const b = await joinAndPublish(room, 'bob');
    browsers.push(a.browser, b.browser);
    await Promise.all([a.browser.waitSendConnected(), b.browser.waitRecvConnected()]);
    const byKind = new Map(b.peer.consumers.map((c) => [c.kind, c.mid!]));
    const received = (kind: 'audio' | 'video'): number => b.browser.receivedPackets.get(byKind.get(kind)!) ?? 0;
    let seq = 0;
    const sendSome = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        seq++;
        a.browser.sendRtp('audio', seq);
        a.browser.sendRtp('video', seq, 900);
        await sleep(2);
      }
    };
    await sendSome(30);
    await waitFor(() => received('audio') >= 20 && received('video') >= 20, { timeoutMs: 5000, what: 'forwarded RTP' });
    assert.ok((await total(metrics.forwardedPackets)) >= 40);
    const video = a.peer.producers.find((p) => p.kind === 'video')!;
    assert.ok(video.packets >= 20, 'the producer counts what it receives');

    a.peer.setProducerPaused('video', true);
    assert.equal(video.paused, true);
    await sleep(100);
    const pausedAt = received('video');
    const audioAt = received('audio');
    await sendSome(30);
    await waitFor(() => received('audio') >= audioAt + 20, { timeoutMs: 5000, what: 'audio still forwarded' });
    await sleep(100);
    assert.equal(received('video'), pausedAt, 'no video forwarded while paused');

    a.peer.setProducerPaused('video', false);
    await sendSome(30);
    await waitFor(() => received('video') >= pausedAt + 20, { timeoutMs: 5000, what: 'video forwarded again' });
    room.close();
    assert.deepEqual(await gauges(metrics), ZERO);
  });

  test('a voice-avatar owner is asked for short audio packets (a=ptime in the answer); other participants are not', async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'ptime', config: configWith(), logger, metrics });
    const audioPtimes = (sdp: string): string[] => sdp.split(/\r\n(?=m=)/).filter((m) => m.startsWith('m=audio')).map((m) => /a=ptime:(\d+)/.exec(m)?.[1] ?? 'none');
    const voice = await room.join('vera');
    routeAsVoiceAvatar(room, voice);
    const plain = await room.join('paul');
    const vb = new WeriftBrowser();
    const pb = new WeriftBrowser();
    browsers.push(vb, pb);
    voice.setOfferSignal((offer) => vb.answer(offer));
    plain.setOfferSignal((offer) => pb.answer(offer));
    const voiceAnswer = (await voice.publish(await vb.publishOffer())).answer;
    const plainAnswer = (await plain.publish(await pb.publishOffer())).answer;
    assert.deepEqual(audioPtimes(voiceAnswer.sdp), [String(baseConfig.rtc.voiceAudioPtimeMs)]);
    assert.deepEqual(audioPtimes(plainAnswer.sdp), ['none']);
    // let both handshakes finish (a transport closed mid-handshake lingers, see joinAndPublish)
    await Promise.all([vb.applyPublishAnswer(voiceAnswer), pb.applyPublishAnswer(plainAnswer)]);
    await Promise.all([vb.waitSendConnected(), pb.waitSendConnected()]);
    await Promise.all([vb.waitRecvConnected(), pb.waitRecvConnected()]);
    room.close();
  });

  for (const voiceInput of ['tap', 'track'] as const) {
    test(`AVATAR_VOICE_INPUT=${voiceInput}: a voice avatar's worker peer gets its owner's microphone ${voiceInput === 'tap' ? 'as audio-tap messages (sequence number, timestamp, payload intact)' : 'as an audio track'}`, async () => {
      const metrics = newMetrics();
      const config = configWith();
      const voiceConfig = { ...config, workers: { ...config.workers, voiceInput } };
      const room = await Room.create({ id: `voice-${voiceInput}`, config: voiceConfig, logger, metrics });
      const owner = await joinAndPublish(room, 'vera');
      routeAsVoiceAvatar(room, owner.peer, voiceConfig);
      const worker = await room.join('vera (avatar)', { role: 'delegate', principal: owner.peer });
      const wb = new WeriftBrowser();
      browsers.push(owner.browser, wb);
      const tapMessages: Buffer[] = [];
      wb.recvPc.onDataChannel.subscribe((channel) => {
        if (channel.label === AUDIO_TAP_LABEL) channel.onMessage.subscribe((m) => tapMessages.push(m as Buffer));
      });
      worker.setOfferSignal((offer) => wb.answer(offer));
      worker.renegotiate();
      await wb.waitRecvConnected();
      const audioConsumers = worker.consumers.filter((c) => c.kind === 'audio').length;
      const taps = [...worker.recvTransport.dataConsumers.values()].filter((d) => d.label === AUDIO_TAP_LABEL).length;
      assert.deepEqual({ audioConsumers, taps }, voiceInput === 'tap' ? { audioConsumers: 0, taps: 1 } : { audioConsumers: 1, taps: 0 });
      if (voiceInput === 'tap') {
        // the data channel opens after SCTP is up: send until messages arrive
        for (let seq = 1; seq <= 300 && tapMessages.length < 20; seq++) {
          owner.browser.sendRtp('audio', seq, 60);
          await sleep(5);
        }
        assert.ok(tapMessages.length >= 20, `tap messages received: ${tapMessages.length}`);
        const p = decodeAudioTapPacket(tapMessages.at(-1)!);
        assert.equal(p.codec, 'opus');
        assert.equal(p.timestamp, (p.sequenceNumber * 960) >>> 0, 'timestamp as the owner sent it');
        assert.equal(p.payload.length, 60);
        assert.ok(p.payload.every((b) => b === (p.sequenceNumber & 0xff)), 'payload as the owner sent it');
      }
      room.close();
      assert.deepEqual(await gauges(metrics), ZERO);
    });
  }

  test("a viewer keeps one audio consumer for a voice avatar: the worker's republished voice, the owner's microphone while no worker publishes, the next worker's voice", async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'voice-failover', config: configWith(), logger, metrics });
    const owner = await room.join('vera');
    routeAsVoiceAvatar(room, owner);
    await publishFromBrowser(owner);
    const viewer = await joinAndPublish(room, 'bob');
    browsers.push(viewer.browser);
    const mic = owner.producers.find((p) => p.kind === 'audio')!;
    const audioOf = (): { id: string; producer: string; open: boolean }[] =>
      viewer.peer.consumers.filter((c) => c.kind === 'audio' && c.producerPeerId === owner.id).map((c) => ({ id: c.id, producer: c.producer.id, open: !c.closed }));
    const first = audioOf();
    assert.equal(first.length, 1);
    assert.equal(first[0]!.producer, mic.id, "before any worker: the owner's microphone");
    const publishWorker = async (name: string): Promise<Peer> => {
      const avatar = await room.join(name, { role: 'delegate', principal: owner });
      await publishFromBrowser(avatar);
      return avatar;
    };
    const w1 = await publishWorker('worker 1');
    const voice1 = w1.producers.find((p) => p.kind === 'audio')!;
    assert.deepEqual(audioOf(), [{ id: first[0]!.id, producer: voice1.id, open: true }], "the worker's voice, same consumer");
    w1.close();
    assert.deepEqual(audioOf(), [{ id: first[0]!.id, producer: mic.id, open: true }], "worker gone: back to the owner's microphone, same consumer");
    const w2 = await publishWorker('worker 2');
    const voice2 = w2.producers.find((p) => p.kind === 'audio')!;
    assert.deepEqual(audioOf(), [{ id: first[0]!.id, producer: voice2.id, open: true }], "the next worker's voice, same consumer");
    room.close();
    assert.deepEqual(await gauges(metrics), ZERO);
  });

  test("a delegate's media reaches nobody until presented; a presentation shows it as its principal's, each viewer getting its slot's producer on one consumer that switches without renegotiation and outlives the producer", async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'presentation', config: configWith(), logger, metrics });
    const principal = await joinAndPublish(room, 'pia');
    const viewer = await joinAndPublish(room, 'vic');
    browsers.push(principal.browser, viewer.browser);
    await Promise.all([principal.browser.waitRecvConnected(), viewer.browser.waitRecvConnected()]);
    const publishDelegate = async (name: string, slot: string): Promise<Peer> => {
      const delegate = await room.join(name, { role: 'delegate', principal: principal.peer });
      const browser = new WeriftBrowser();
      browsers.push(browser);
      delegate.setOfferSignal((offer) => browser.answer(offer));
      const offer = await browser.publishOffer();
      await browser.applyPublishAnswer((await delegate.publish(offer, { [browser.video.mid!]: slot })).answer);
      await browser.waitSendConnected();
      return delegate;
    };
    const d1 = await publishDelegate('pia (d1)', 'default');
    const d2 = await publishDelegate('pia (d2)', 'alt');
    const videoOf = (d: Peer): Producer => d.producers.find((p) => p.kind === 'video')!;
    assert.deepEqual(room.participants.map((p) => p.id).sort(), [principal.peer.id, viewer.peer.id].sort(), 'delegates are not listed');
    assert.deepEqual(room.delegatesOf(principal.peer), [d1, d2]);
    const consumed = (p: Peer): string[] => p.consumers.filter((c) => !c.closed).map((c) => c.producer.id).sort();
    assert.deepEqual(consumed(viewer.peer), principal.peer.producers.map((p) => p.id).sort(), "the viewer gets the principal's own media, not the delegates'");

    const viewerVideo = viewer.peer.consumers.find((c) => c.kind === 'video')!;
    room.present(principal.peer, 'video', { sources: new Map([['default', videoOf(d1)], ['alt', videoOf(d2)]]), audience: 'everyone' });
    assert.equal(viewerVideo.producer, videoOf(d1), "the viewer's consumer of the principal now forwards the default slot's producer");
    assert.equal(viewerVideo.producerPeerId, principal.peer.id, "…as the principal's media");
    const own = principal.peer.consumers.filter((c) => c.kind === 'video' && c.producerPeerId === principal.peer.id);
    assert.deepEqual(own.map((c) => c.producer), [videoOf(d1)], 'audience "everyone": the principal receives it too');
    await waitFor(() => principal.browser.offersAnswered > 0 && viewer.browser.offersAnswered > 0, { timeoutMs: 5000, what: 'negotiations' });
    await sleep(300);
    const offers = viewer.browser.offersAnswered;
    room.setSlot(viewer.peer, principal.peer, 'alt');
    assert.equal(room.slotOf(viewer.peer, principal.peer), 'alt');
    assert.equal(viewerVideo.producer, videoOf(d2), "the viewer's slot");
    assert.equal(own[0]!.producer, videoOf(d1), 'other viewers keep the default slot');
    room.setSlot(viewer.peer, principal.peer, 'missing');
    assert.equal(viewerVideo.producer, videoOf(d1), 'a slot without a producer falls back to the default');
    room.setSlot(viewer.peer, principal.peer, 'alt');
    await sleep(300);
    assert.equal(viewer.browser.offersAnswered, offers, 'switching slots does not renegotiate');
    assert.deepEqual(viewer.peer.consumers.filter((c) => c.kind === 'video').map((c) => c.id), [viewerVideo.id], 'one video consumer of the principal');

    const d1Video = videoOf(d1);
    const d2Video = videoOf(d2);
    d2.close();
    assert.equal(d2Video.closed, true);
    assert.equal(viewerVideo.closed, false, 'a presenting consumer outlives its producer (frozen until a replacement is presented)');
    assert.deepEqual(room.delegatesOf(principal.peer), [d1]);
    assert.throws(() => room.present(d1, 'video', { sources: new Map() }), TypeError, 'a delegate is not presented');
    principal.peer.close();
    assert.equal(d1.closed, true, 'delegates close with their principal');
    assert.equal(viewerVideo.closed, true, 'presenting consumers end with the presented peer');
    assert.deepEqual(viewer.peer.consumers, []);
    assert.throws(() => room.present(viewer.peer, 'audio', { sources: new Map([['default', d1Video]]) }), TypeError, 'a producer of another kind is refused');
    room.close();
    assert.throws(() => room.present(viewer.peer, 'audio', { sources: new Map() }), InvalidStateError);
    assert.deepEqual(await gauges(metrics), ZERO);
  });

  test('a delegate needs its principal in the room, and the codec parameters of a send transport apply to its answers', async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'delegates', config: configWith(), logger, metrics });
    const other = await Room.create({ id: 'elsewhere', config: configWith(), logger, metrics });
    const stranger = await other.join('sam');
    await assert.rejects(room.join('d', { role: 'delegate', principal: stranger }), InvalidStateError);
    await assert.rejects(room.join('d', { role: 'delegate' }), InvalidStateError);
    const peer = await room.join('ada');
    assert.throws(() => peer.sendTransport.setAudioPtime(0), TypeError);
    assert.throws(() => peer.sendTransport.setAudioPtime(2.5), TypeError);
    peer.sendTransport.setAudioPtime(20);
    assert.equal(peer.sendTransport.audioPtimeMs, 20);
    const browser = new WeriftBrowser();
    browsers.push(browser);
    peer.setOfferSignal((offer) => browser.answer(offer));
    const { answer } = await peer.publish(await browser.publishOffer());
    assert.match(answer.sdp, /m=audio[^]*a=ptime:20/);
    await browser.applyPublishAnswer(answer);
    await browser.waitSendConnected();
    room.close();
    other.close();
    assert.throws(() => peer.sendTransport.setAudioPtime(10), InvalidStateError);
    assert.deepEqual(await gauges(metrics), ZERO);
  });

  test('sender reports and abs-send-time on forwarded media carry the wall-clock time to the millisecond (receivers lip-sync from them)', async () => {
    // werift's own NTP times are whole seconds; see server/src/sfu/senderClock.ts.
    const metrics = newMetrics();
    const room = await Room.create({ id: 'clock', config: configWith(), logger, metrics });
    const a = await joinAndPublish(room, 'ada');
    const b = await joinAndPublish(room, 'bob');
    browsers.push(a.browser, b.browser);
    await Promise.all([a.browser.waitSendConnected(), b.browser.waitRecvConnected()]);
    const srErrorsMs: number[] = [];
    const absErrorsMs: number[] = [];
    for (const t of b.browser.recvPc.getTransceivers()) {
      t.receiver.onRtcp.subscribe((packet) => {
        const sr = packet as { type: number; senderInfo?: { ntpTimestamp: bigint } };
        if (sr.type === 200 && sr.senderInfo) srErrorsMs.push(Date.now() - ntpToUnixMs(sr.senderInfo.ntpTimestamp));
      });
    }
    const videoMid = b.peer.consumers.find((c) => c.kind === 'video')!.mid!;
    b.browser.received.get(videoMid)!.onReceiveRtp.subscribe((rtp) => {
      const ext = rtp.header.extensions.find((e) => e.payload.length === 3);
      if (!ext) return;
      // 6.18 fixed-point seconds, modulo 64 s
      const sentS = ext.payload.readUIntBE(0, 3) / 2 ** 18;
      const nowS = (Number(ntpNow() >> 14n) & 0xffffff) / 2 ** 18;
      absErrorsMs.push((((nowS - sentS) % 64) + 64) % 64 * 1000);
    });
    for (let seq = 1; seq <= 400 && srErrorsMs.length < 4; seq++) {
      a.browser.sendRtp('audio', seq);
      a.browser.sendRtp('video', seq, 900);
      await sleep(10);
    }
    room.close();
    assert.ok(srErrorsMs.length >= 4, `sender reports received: ${srErrorsMs.length}`);
    // The report describes the last packet sent (≤ ~1.5 s old while packets flow every 10 ms, the
    // interval is 0.5–1.5 s): its time is never in the future and never a second behind.
    for (const e of srErrorsMs) assert.ok(e >= -5 && e < 100, `sender report time off by ${e.toFixed(1)} ms`);
    assert.ok(absErrorsMs.length >= 50, `abs-send-time stamps: ${absErrorsMs.length}`);
    for (const e of absErrorsMs) assert.ok(e < 100 || e > 63_995, `abs-send-time off by ${e.toFixed(1)} ms`);
  });

  test('when a peer leaves, the consumers of its producers close and the others renegotiate', async () => {
    const metrics = newMetrics();
    const room = await Room.create({ id: 'leave', config: configWith(), logger, metrics });
    const a = await joinAndPublish(room, 'ada');
    const b = await joinAndPublish(room, 'bob');
    browsers.push(a.browser, b.browser);
    await Promise.all([a.browser.waitRecvConnected(), b.browser.waitRecvConnected()]);
    const consumersOfB = a.peer.consumers;
    const offers = a.browser.offersAnswered;
    const closedProducers: string[] = [];
    room.on('producerclosed', (_peer, producer) => closedProducers.push(producer.id));
    const bProducers = b.peer.producers.map((p) => p.id).sort();
    b.peer.close();
    assert.deepEqual(closedProducers.sort(), bProducers);
    assert.ok(consumersOfB.every((c) => c.closed), 'consumers of the leaving peer closed');
    assert.equal(a.peer.consumers.length, 0);
    await waitFor(() => a.browser.offersAnswered > offers, { timeoutMs: 5000, what: 'renegotiation after leave' });
    assert.deepEqual(await gauges(metrics), { rooms: 1, peers: 1, transports: 2, producers: 2, consumers: 0 });
    room.close();
    assert.deepEqual(await gauges(metrics), ZERO);
  });

  test('50 join/leave cycles with negotiated transports leave no transports, producers, consumers or UDP sockets behind', async () => {
    await sleep(200); // let sockets of earlier tests finish closing
    const udpBefore = udpSockets();
    const metrics = newMetrics();
    const manager = new RoomManager(configWith(), logger, metrics);
    for (let i = 0; i < 50; i++) {
      // Two peers publish audio+video, each receives the other's; then one leaves (the other renegotiates) and the other follows.
      const room = await manager.getOrCreate('churn');
      const [a, b] = await Promise.all([joinAndPublish(room, `ada ${i}`), joinAndPublish(room, `bob ${i}`)]);
      await Promise.all([a.browser.waitRecvConnected(), b.browser.waitRecvConnected()]);
      await waitFor(() => a.peer.consumers.length === 2 && b.peer.consumers.length === 2, { timeoutMs: 10_000, intervalMs: 5, what: `consumers in cycle ${i}` });
      for (const p of [a.peer, b.peer]) {
        assert.equal(p.sendTransport.connectionState, 'connected', `cycle ${i}: send transport`);
        assert.equal(p.recvTransport.connectionState, 'connected', `cycle ${i}: recv transport`);
      }
      const [first, second] = i % 2 === 0 ? [a, b] : [b, a];
      const offers = second.browser.offersAnswered;
      first.peer.close();
      await first.browser.close();
      await waitFor(() => second.browser.offersAnswered > offers, { timeoutMs: 10_000, intervalMs: 5, what: `renegotiation after a leave in cycle ${i}` });
      assert.deepEqual(await gauges(metrics), { rooms: 1, peers: 1, transports: 2, producers: 2, consumers: 0 }, `cycle ${i}, one peer left`);
      second.peer.close();
      await second.browser.close();
      assert.equal(manager.rooms.size, 0, `cycle ${i}: the empty room was removed`);
      assert.deepEqual(await gauges(metrics), ZERO, `after cycle ${i}`);
    }
    manager.close();
    await waitFor(() => udpSockets() <= udpBefore, { timeoutMs: 5000, intervalMs: 50, what: `UDP sockets back to ${udpBefore}` });
    await sleep(300);
    assert.equal(udpSockets(), udpBefore, 'no leaked UDP sockets after settling');
  });
});
