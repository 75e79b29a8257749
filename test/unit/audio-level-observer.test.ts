/**
 * AudioLevelObserver (RFC 6464 levels from RTP header extensions, per interval) on real Producer
 * objects fed with synthetic RTP packets, and ActiveSpeaker's choice from its reports.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RtpHeader, RtpPacket } from 'werift';
import { Producer } from '../../server/src/sfu/Producer.ts';
import { AUDIO_LEVEL_URI, AudioLevelObserver, type AudioVolume } from '../../server/src/sfu/AudioLevelObserver.ts';
import { InvalidStateError } from '../../server/src/errors.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { EventEmitter } from 'node:events';
import { ActiveSpeaker } from '../../server/src/speaker/ActiveSpeaker.ts';

const EXT_ID = 3;

/** A producer whose publisher negotiated the audio-level extension as EXT_ID (or not), and a way to feed it packets. */
function fakeProducer(opts: { kind?: 'audio' | 'video'; negotiated?: boolean } = {}): { producer: Producer; send(levelDbov: number): void } {
  let deliver: ((p: RtpPacket) => void) | undefined;
  const track = { kind: opts.kind ?? 'audio', ssrc: 1234, onReceiveRtp: { subscribe: (cb: (p: RtpPacket) => void) => ((deliver = cb), { unSubscribe: () => (deliver = undefined) }) } };
  const transceiver = { mid: '0', headerExtensions: opts.negotiated === false ? [] : [{ uri: AUDIO_LEVEL_URI, id: EXT_ID }], receiver: { sendRtcpPLI: async () => undefined } };
  const producer = new Producer(track as never, transceiver as never);
  let seq = 0;
  return {
    producer,
    send(levelDbov: number): void {
      const header = new RtpHeader({ ssrc: 1234, sequenceNumber: seq++, payloadType: 111, extensions: [{ id: 1, payload: Buffer.from('0') }, { id: EXT_ID, payload: Buffer.from([0x80 | Math.round(-levelDbov)]) }] });
      deliver?.(new RtpPacket(header, Buffer.alloc(20)));
    },
  };
}

async function nextReport(observer: AudioLevelObserver): Promise<AudioVolume[] | 'silence'> {
  return new Promise((resolve) => {
    const onVolumes = (v: AudioVolume[]): void => done(v);
    const onSilence = (): void => done('silence');
    function done(r: AudioVolume[] | 'silence'): void {
      observer.off('volumes', onVolumes);
      observer.off('silence', onSilence);
      resolve(r);
    }
    observer.on('volumes', onVolumes);
    observer.on('silence', onSilence);
  });
}

describe('AudioLevelObserver', () => {
  test('each interval reports the producers above the threshold, loudest first, with their average dBov', async () => {
    const observer = await AudioLevelObserver.create({ intervalMs: 60, threshold: -60, maxEntries: 3 });
    const loud = fakeProducer();
    const quiet = fakeProducer();
    const silent = fakeProducer();
    for (const p of [loud, quiet, silent]) observer.addProducer(p.producer);
    const feed = setInterval(() => {
      loud.send(-20);
      loud.send(-30);
      quiet.send(-45);
      silent.send(-127);
    }, 10);
    try {
      await nextReport(observer); // a partial first window
      const report = await nextReport(observer);
      assert.notEqual(report, 'silence');
      if (report === 'silence') return;
      assert.deepEqual(report.map((v) => v.producer), [loud.producer, quiet.producer], 'the silent one is left out');
      assert.ok(Math.abs(report[0]!.volume - -25) < 0.01, `average of -20 and -30 dBov, got ${report[0]!.volume}`);
      assert.ok(Math.abs(report[1]!.volume - -45) < 0.01);
    } finally {
      clearInterval(feed);
      observer.close();
    }
  });

  test('maxEntries bounds a report; silence is emitted once when everyone goes quiet; paused and closed producers are not heard', async () => {
    const observer = await AudioLevelObserver.create({ intervalMs: 50, threshold: -50, maxEntries: 1 });
    const a = fakeProducer();
    const b = fakeProducer();
    observer.addProducer(a.producer);
    observer.addProducer(b.producer);
    let level = -10;
    const feed = setInterval(() => {
      a.send(level);
      b.send(level - 5);
    }, 10);
    try {
      await nextReport(observer);
      const r = await nextReport(observer);
      assert.ok(r !== 'silence' && r.length === 1 && r[0]!.producer === a.producer);
      level = -90;
      let silences = 0;
      observer.on('silence', () => silences++);
      await waitReports(observer, 4);
      assert.equal(silences, 1, 'silence once, not every interval');
      level = -10;
      a.producer.pause();
      const r2 = await waitNonSilence(observer);
      assert.equal(r2[0]!.producer, b.producer, 'a paused producer is not heard');
      b.producer.close();
      assert.deepEqual(observer.producers, [a.producer], 'a closed producer is dropped');
    } finally {
      clearInterval(feed);
      observer.close();
    }
  });

  test('packets without the negotiated extension are not counted', async () => {
    const observer = await AudioLevelObserver.create({ intervalMs: 40, threshold: -60 });
    const p = fakeProducer({ negotiated: false });
    observer.addProducer(p.producer);
    let volumes = 0;
    observer.on('volumes', () => volumes++);
    const feed = setInterval(() => p.send(-10), 5);
    await sleep(200);
    clearInterval(feed);
    observer.close();
    assert.equal(volumes, 0);
  });

  test('bad arguments are TypeErrors, and a closed observer refuses producers with InvalidStateError; close() is idempotent', async () => {
    await assert.rejects(AudioLevelObserver.create({ intervalMs: 0 }), TypeError);
    await assert.rejects(AudioLevelObserver.create({ threshold: 5 }), TypeError);
    await assert.rejects(AudioLevelObserver.create({ maxEntries: 0 }), TypeError);
    const observer = await AudioLevelObserver.create();
    assert.throws(() => observer.addProducer(fakeProducer({ kind: 'video' }).producer), TypeError);
    const p = fakeProducer();
    observer.addProducer(p.producer);
    observer.close();
    observer.close();
    assert.equal(observer.closed, true);
    assert.equal(p.producer.listenerTotal, 0, 'its RTP listener is gone');
    assert.throws(() => observer.addProducer(fakeProducer().producer), InvalidStateError);
  });
});

async function waitReports(observer: AudioLevelObserver, n: number): Promise<void> {
  await sleep(observer.intervalMs * n + observer.intervalMs / 2);
}

async function waitNonSilence(observer: AudioLevelObserver): Promise<AudioVolume[]> {
  for (;;) {
    const r = await nextReport(observer);
    if (r !== 'silence') {
      const next = await nextReport(observer); // the first may mix the old window
      if (next !== 'silence') return next;
    }
  }
}

describe('ActiveSpeaker', () => {
  /** A room-like emitter with participants whose audio producers are fake ones. */
  function fakeRoom(): { room: never; join(id: string): ReturnType<typeof fakeProducer>; leave(id: string): void; emitter: EventEmitter } {
    const emitter = new EventEmitter();
    const peers = new Map<string, { id: string; role: 'participant'; closed: boolean; producers: Producer[] }>();
    const room = Object.assign(emitter, { get participants() { return [...peers.values()]; } });
    return {
      room: room as never,
      emitter,
      join(id) {
        const p = fakeProducer();
        const peer = { id, role: 'participant' as const, closed: false, producers: [p.producer] };
        peers.set(id, peer);
        emitter.emit('producer', peer, p.producer);
        return p;
      },
      leave(id) {
        const peer = peers.get(id)!;
        peer.closed = true;
        peers.delete(id);
        emitter.emit('peerleft', peer);
      },
    };
  }

  test('the one speaking becomes the speaker; another takes over only after being loudest in holdReports reports; mute and leave clear it', async () => {
    const r = fakeRoom();
    const speaker = await ActiveSpeaker.create(r.room, { intervalMs: 40, threshold: -60, holdReports: 3 });
    const changes: (string | null)[] = [];
    speaker.on('change', (id) => changes.push(id));
    const ada = r.join('ada');
    const bob = r.join('bob');
    const levels = { ada: -127, bob: -127 };
    const feed = setInterval(() => {
      ada.send(levels.ada);
      bob.send(levels.bob);
    }, 8);
    try {
      levels.ada = -20;
      await waitFor(() => speaker.peerId === 'ada' || undefined, { timeoutMs: 1000, what: 'ada speaking' });
      levels.ada = -127;
      await sleep(200);
      assert.equal(speaker.peerId, 'ada', 'in silence the last speaker stays');
      levels.ada = -30;
      levels.bob = -15;
      const t0 = performance.now();
      await waitFor(() => speaker.peerId === 'bob' || undefined, { timeoutMs: 2000, what: 'bob taking over' });
      assert.ok(performance.now() - t0 >= 2 * 40, 'bob had to be loudest for several reports while ada still spoke');
      bob.producer.pause();
      await waitFor(() => speaker.peerId !== 'bob' || undefined, { timeoutMs: 1000, what: 'bob muted' });
      assert.ok(changes.includes(null), 'muting the speaker cleared it');
      await waitFor(() => speaker.peerId === 'ada' || undefined, { timeoutMs: 1000, what: 'ada again' });
      r.leave('ada');
      assert.equal(speaker.peerId, null, 'the speaker left');
    } finally {
      clearInterval(feed);
      speaker.close();
      speaker.close();
    }
    assert.deepEqual(changes.slice(0, 2), ['ada', 'bob']);
  });
});
