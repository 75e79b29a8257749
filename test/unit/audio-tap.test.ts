/**
 * The voice avatar's audio tap: the wire format (protocol/src/audioTap.ts) and the worker's receiver
 * (real Opus decoding of a committed fixture, manual clock).
 *
 * Fixture test/fixtures/audio/librivox-0930-opus10ms.bin: the first 2 s of librivox-0930.wav encoded
 * by `ffmpeg -i librivox-0930.wav -t 2.0 -ac 1 -ar 48000 -c:a libopus -b:a 32k -frame_duration 10
 * -application voip out.ogg`, the Ogg pages' audio packets stored as [u16 BE length][packet] (201 packets).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AUDIO_TAP_HEADER_BYTES, decodeAudioTapPacket, encodeAudioTapPacket } from '../../protocol/src/audioTap.ts';
import { AudioTapReceiver } from '../../worker/src/AudioTapReceiver.ts';
import type { AudioChunk } from '../../worker/src/VoiceDriver.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/audio/librivox-0930-opus10ms.bin', import.meta.url));

function opusPackets(): Uint8Array[] {
  const buf = fs.readFileSync(FIXTURE);
  const out: Uint8Array[] = [];
  for (let pos = 0; pos < buf.length; ) {
    const len = buf.readUInt16BE(pos);
    out.push(new Uint8Array(buf.subarray(pos + 2, pos + 2 + len)));
    pos += 2 + len;
  }
  return out;
}

const PACKETS = opusPackets();

function message(i: number, seqBase = 1000, tsBase = 90_000): Uint8Array {
  return encodeAudioTapPacket({ codec: 'opus', sequenceNumber: (seqBase + i) & 0xffff, timestamp: (tsBase + i * 480) >>> 0, payload: PACKETS[i]! });
}

/** A receiver on a manual clock; `advance` moves the clock and runs the receiver's timer work. */
async function receiver(t: import('node:test').TestContext): Promise<{ r: AudioTapReceiver; chunks: AudioChunk[]; advance(ms: number): void; pcm(): Int16Array }> {
  let clock = 0;
  const chunks: AudioChunk[] = [];
  const r = await AudioTapReceiver.create((c) => chunks.push(c), { now: () => clock });
  t.after(() => r.close());
  return {
    r,
    chunks,
    advance(ms: number) {
      for (let i = 0; i < ms; i++) {
        clock++;
        r.tick();
      }
    },
    pcm() {
      const all = new Int16Array(chunks.length * 480);
      chunks.forEach((c, i) => all.set(c.samples, i * 480));
      return all;
    },
  };
}

test('audio tap messages round-trip, and malformed ones are refused with a TypeError saying why', () => {
  const payload = new Uint8Array([0x78, 1, 2, 3]);
  const m = encodeAudioTapPacket({ codec: 'opus', sequenceNumber: 65535, timestamp: 0xfffffff0, payload });
  assert.equal(m.length, AUDIO_TAP_HEADER_BYTES + 4);
  const back = decodeAudioTapPacket(m.buffer as ArrayBuffer);
  assert.deepEqual({ ...back, payload: Array.from(back.payload) }, { codec: 'opus', sequenceNumber: 65535, timestamp: 0xfffffff0, payload: [0x78, 1, 2, 3] });
  assert.deepEqual(Array.from(decodeAudioTapPacket(Buffer.from(m)).payload), [0x78, 1, 2, 3], 'Buffers (Node) decode too');
  const bad: [unknown, RegExp][] = [
    ['text', /binary/],
    [new Uint8Array(8), /too short/],
    [new Uint8Array(8 + 1276), /too long/],
    [Uint8Array.from([2, 1, 0, 0, 0, 0, 0, 0, 9]), /version 2/],
    [Uint8Array.from([1, 7, 0, 0, 0, 0, 0, 0, 9]), /codec 7/],
  ];
  for (const [input, why] of bad) assert.throws(() => decodeAudioTapPacket(input as ArrayBuffer), (e: unknown) => e instanceof TypeError && why.test(e.message));
  assert.throws(() => encodeAudioTapPacket({ codec: 'opus', sequenceNumber: 70000, timestamp: 0, payload }), TypeError);
  assert.throws(() => encodeAudioTapPacket({ codec: 'opus', sequenceNumber: 1, timestamp: -1, payload }), TypeError);
  assert.throws(() => encodeAudioTapPacket({ codec: 'opus', sequenceNumber: 1, timestamp: 0, payload: new Uint8Array(0) }), TypeError);
});

test('in-order Opus packets come out at once as 10 ms 48 kHz chunks of the speech', async (t) => {
  const { r, chunks, pcm } = await receiver(t);
  for (let i = 0; i < PACKETS.length; i++) r.push(message(i));
  assert.equal(chunks.length, PACKETS.length, 'one 10 ms chunk per packet, nothing held back');
  assert.ok(chunks.every((c) => c.sampleRate === 48000 && c.channelCount === 1 && c.numberOfFrames === 480 && c.samples.length === 480));
  const all = pcm();
  let peak = 0;
  for (const v of all) peak = Math.max(peak, Math.abs(v));
  assert.ok(peak > 3000, `decoded speech, not silence (peak ${peak})`);
  assert.equal(r.stats.decodeErrors, 0);
  assert.equal(r.stats.decoded, PACKETS.length);
  assert.equal(r.stats.concealedMs, 0);
});

test('reordered and duplicated packets give exactly the in-order audio; the sequence number may wrap', async (t) => {
  const ref = await receiver(t);
  for (let i = 0; i < 60; i++) ref.r.push(message(i, 65500));
  const got = await receiver(t);
  const order = Array.from({ length: 60 }, (_, i) => i);
  // (the very first packet starts the stream: what arrives before it in sequence is late)
  for (let i = 1; i + 1 < 60; i += 3) [order[i], order[i + 1]] = [order[i + 1]!, order[i]!];
  for (const i of order) {
    got.r.push(message(i, 65500));
    if (i % 7 === 0) got.r.push(message(i, 65500));
  }
  assert.deepEqual(got.pcm(), ref.pcm());
  assert.ok(got.r.stats.duplicates + got.r.stats.late >= 8, "repeats are dropped (held ones as duplicates, released ones as late)");
});

test('a lost packet becomes 10 ms of silence once the reorder wait is over; the packet arriving later is dropped', async (t) => {
  const { r, chunks, advance } = await receiver(t);
  for (let i = 0; i < 20; i++) r.push(message(i));
  r.push(message(21));
  r.push(message(22));
  assert.equal(chunks.length, 20, 'held while packet 20 may still come');
  advance(25);
  assert.equal(chunks.length, 23, 'concealed: 20 decoded + 10 ms silence + 2 decoded');
  assert.ok(chunks[20]!.samples.every((v) => v === 0));
  assert.equal(r.stats.concealedMs, 10);
  r.push(message(20));
  assert.equal(r.stats.late, 1);
  assert.equal(chunks.length, 23);
});

test('without packets the receiver produces real-time silence, and a new talk spurt restarts cleanly', async (t) => {
  const { r, chunks, advance } = await receiver(t);
  advance(500);
  assert.equal(chunks.length, 0, 'nothing before the first packet');
  for (let i = 0; i < 10; i++) r.push(message(i));
  advance(400);
  const silent = chunks.length - 10;
  assert.ok(silent >= 29 && silent <= 31, `~300 ms of silence after 100 ms of starvation (${silent} chunks)`);
  // The stream resumes 5 s later in RTP time, with a jump in sequence numbers: no concealment of the pause.
  for (let i = 0; i < 10; i++) r.push(encodeAudioTapPacket({ codec: 'opus', sequenceNumber: 3000 + i, timestamp: 500_000 + i * 480, payload: PACKETS[50 + i]! }));
  assert.equal(chunks.length, 10 + silent + 10);
  assert.equal(r.stats.concealedMs, 0);
});

test('garbage messages and undecodable payloads are counted, never thrown, and do not stop the stream', async (t) => {
  const { r, chunks } = await receiver(t);
  r.push(new Uint8Array([1, 2, 3]));
  r.push(new TextEncoder().encode('hello world, not opus'));
  r.push(encodeAudioTapPacket({ codec: 'opus', sequenceNumber: 999, timestamp: 0, payload: new Uint8Array([0xff, 0xff, 0xff, 0xff]) }));
  for (let i = 0; i < 5; i++) r.push(message(i));
  assert.ok(r.stats.invalid >= 1);
  assert.ok(r.stats.decodeErrors + r.stats.invalid >= 2);
  assert.ok(chunks.length >= 5);
  r.close();
  r.close();
  r.push(message(5));
});
