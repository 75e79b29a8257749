/**
 * The owner's microphone as it reaches a voice avatar's worker on the "audio-tap" data channel
 * (protocol/src/audioTap.ts): Opus packets → 10 ms PCM chunks (48 kHz mono Int16, what VoiceDriver
 * and wrtc's RTCAudioSource take), without a playout jitter buffer.
 *
 * - Packets are released in sequence order as soon as they are next. A gap holds later packets for
 *   at most `maxReorderWaitMs`, then the missing time becomes silence (from the RTP timestamps).
 * - Late packets (behind what was released) and duplicates are dropped; garbage is counted, never thrown.
 * - Once packets have flowed, `starvationMs` without one (muted microphone, DTX, a stalled network)
 *   starts silence in real time, so the mouth closes and the audio clock keeps going; the next packet
 *   restarts the stream. Nothing is emitted before the first packet.
 */
import { OpusDecoder } from 'opus-decoder';
import { decodeAudioTapPacket, type AudioTapPacket } from '../../protocol/src/audioTap.ts';
import type { AudioChunk } from './VoiceDriver.ts';

const RATE = 48000;
const CHUNK = RATE / 100;
/** A gap longer than this (ms) is not concealed sample for sample: the stream restarts. */
const MAX_CONCEAL_MS = 200;
/** Packets held while waiting for a missing one; beyond this the gap is concealed at once. */
const MAX_PENDING = 50;

export interface AudioTapReceiverOptions {
  /** How long a missing packet may hold the ones after it (default 20 ms). */
  maxReorderWaitMs?: number;
  /** After this long without packets, real-time silence (default 100 ms). */
  starvationMs?: number;
  now?: () => number;
}

export interface AudioTapStats {
  packets: number;
  decoded: number;
  decodedMs: number;
  concealedMs: number;
  silenceMs: number;
  late: number;
  duplicates: number;
  invalid: number;
  decodeErrors: number;
}

interface Pending {
  packet: AudioTapPacket;
  arrivedAt: number;
}

export class AudioTapReceiver {
  readonly stats: AudioTapStats = { packets: 0, decoded: 0, decodedMs: 0, concealedMs: 0, silenceMs: 0, late: 0, duplicates: 0, invalid: 0, decodeErrors: 0 };
  readonly #decoder: OpusDecoder<48000>;
  readonly #onAudio: (chunk: AudioChunk) => void;
  readonly #maxWait: number;
  readonly #starvation: number;
  readonly #now: () => number;
  readonly #pending = new Map<number, Pending>();
  readonly #carry = new Int16Array(CHUNK);
  #carryLen = 0;
  /** Extended (unwrapped) sequence number of the next packet to release; undefined = (re)start. */
  #nextSeq: number | undefined;
  /** RTP timestamp the next packet should have (end of the last decoded one). */
  #expectedTs: number | undefined;
  #lastPacketAt = Number.NEGATIVE_INFINITY;
  /** Real-time silence emitted up to this instant while starving. */
  #silenceUntil = 0;
  #timer: NodeJS.Timeout;
  #closed = false;

  private constructor(decoder: OpusDecoder<48000>, onAudio: (chunk: AudioChunk) => void, opts: AudioTapReceiverOptions) {
    this.#decoder = decoder;
    this.#onAudio = onAudio;
    this.#maxWait = opts.maxReorderWaitMs ?? 20;
    this.#starvation = opts.starvationMs ?? 100;
    this.#now = opts.now ?? (() => performance.now());
    this.#timer = setInterval(() => this.tick(), 5);
    this.#timer.unref?.();
  }

  static async create(onAudio: (chunk: AudioChunk) => void, opts: AudioTapReceiverOptions = {}): Promise<AudioTapReceiver> {
    const decoder = new OpusDecoder({ channels: 1, sampleRate: 48000 });
    await decoder.ready;
    return new AudioTapReceiver(decoder, onAudio, opts);
  }

  /** One data-channel message. Never throws. */
  push(message: ArrayBuffer | ArrayBufferView): void {
    if (this.#closed) return;
    let packet: AudioTapPacket;
    try {
      packet = decodeAudioTapPacket(message);
    } catch {
      this.stats.invalid++;
      return;
    }
    const now = this.#now();
    this.stats.packets++;
    if (this.#nextSeq === undefined || now - this.#lastPacketAt >= this.#starvation) this.#restart(packet);
    this.#lastPacketAt = now;
    const next = this.#nextSeq!;
    const delta = ((packet.sequenceNumber - (next & 0xffff) + 0x8000) & 0xffff) - 0x8000;
    const ext = next + delta;
    if (ext < next) {
      this.stats.late++;
      return;
    }
    if (this.#pending.has(ext)) {
      this.stats.duplicates++;
      return;
    }
    this.#pending.set(ext, { packet: { ...packet, payload: packet.payload.slice() }, arrivedAt: now });
    this.#release(now);
  }

  /** Releases what is due; called every 5 ms (public for tests with a manual clock). */
  tick(): void {
    if (this.#closed) return;
    const now = this.#now();
    this.#release(now);
    // Starving (after the stream has started): silence in real time, 10 ms at a time.
    if (this.stats.packets > 0 && this.#pending.size === 0 && now - this.#lastPacketAt >= this.#starvation) {
      if (this.#silenceUntil < this.#lastPacketAt + this.#starvation) this.#silenceUntil = this.#lastPacketAt + this.#starvation;
      // no backlog after a long stall of this timer
      if (now - this.#silenceUntil > 100) this.#silenceUntil = now - 100;
      while (now - this.#silenceUntil >= 10) {
        this.#emitSilence(CHUNK);
        this.stats.silenceMs += 10;
        this.#silenceUntil += 10;
      }
    }
  }

  #restart(packet: AudioTapPacket): void {
    this.#pending.clear();
    this.#nextSeq = packet.sequenceNumber;
    this.#expectedTs = undefined;
  }

  #release(now: number): void {
    for (;;) {
      const next = this.#nextSeq;
      if (next === undefined || this.#pending.size === 0) return;
      const p = this.#pending.get(next);
      if (p) {
        this.#pending.delete(next);
        this.#decode(p.packet);
        this.#nextSeq = next + 1;
        continue;
      }
      // A gap: wait for it while the oldest held packet is young, then conceal it.
      let first = Number.POSITIVE_INFINITY;
      let oldest = Number.POSITIVE_INFINITY;
      for (const [seq, q] of this.#pending) {
        if (seq < first) first = seq;
        if (q.arrivedAt < oldest) oldest = q.arrivedAt;
      }
      if (now - oldest < this.#maxWait && this.#pending.size < MAX_PENDING) return;
      const firstPacket = this.#pending.get(first)!.packet;
      const gapSamples = this.#expectedTs === undefined ? 0 : (firstPacket.timestamp - this.#expectedTs) >>> 0;
      if (gapSamples > 0 && gapSamples <= (MAX_CONCEAL_MS * RATE) / 1000) {
        this.#emitSilence(gapSamples);
        this.stats.concealedMs += (gapSamples / RATE) * 1000;
      }
      this.#nextSeq = first;
    }
  }

  #decode(packet: AudioTapPacket): void {
    let pcm: Float32Array | undefined;
    try {
      const out = this.#decoder.decodeFrame(packet.payload);
      if (out.errors.length > 0 || out.samplesDecoded === 0) throw new Error('undecodable');
      pcm = out.channelData[0];
    } catch {
      this.stats.decodeErrors++;
    }
    if (!pcm) return;
    this.#expectedTs = (packet.timestamp + pcm.length) >>> 0;
    this.stats.decoded++;
    this.stats.decodedMs += (pcm.length / RATE) * 1000;
    for (let i = 0; i < pcm.length; i++) {
      const v = pcm[i]!;
      this.#carry[this.#carryLen++] = v >= 1 ? 32767 : v <= -1 ? -32768 : v === v ? Math.round(v * 32767) : 0;
      if (this.#carryLen === CHUNK) this.#flushChunk();
    }
  }

  #emitSilence(samples: number): void {
    for (let i = 0; i < samples; i++) {
      this.#carry[this.#carryLen++] = 0;
      if (this.#carryLen === CHUNK) this.#flushChunk();
    }
  }

  #flushChunk(): void {
    const samples = this.#carry.slice();
    this.#carryLen = 0;
    try {
      this.#onAudio({ samples, sampleRate: RATE, channelCount: 1, numberOfFrames: CHUNK });
    } catch {
      // the consumer's failure is not the stream's
    }
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#pending.clear();
    this.#decoder.free();
  }
}
