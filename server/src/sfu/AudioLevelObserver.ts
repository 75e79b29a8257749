/**
 * Watches the audio levels of audio producers (mediasoup's AudioLevelObserver), from the RFC 6464
 * `urn:ietf:params:rtp-hdrext:ssrc-audio-level` header extension each publisher puts on its packets,
 * without decoding. Every `intervalMs` it averages each producer's levels (dBov, 0 = loudest,
 * -127 = silence) and emits `volumes` with the producers above `threshold`, loudest first (at most
 * `maxEntries`), or `silence` once when none is. Paused producers are silent. A generic media-plane
 * primitive: what the levels mean (e.g. an active speaker) is the application's.
 */
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import { InvalidStateError } from '../errors.ts';
import type { Producer } from './Producer.ts';
import type { RtpPacket } from 'werift';

export const AUDIO_LEVEL_URI = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';

export interface AudioLevelObserverOptions {
  /** Averaging window and report interval, ms (default 300). */
  intervalMs?: number;
  /** Volumes at or below it (dBov, -127..0) are silence (default -60). */
  threshold?: number;
  /** At most this many producers per `volumes` report (default 1). */
  maxEntries?: number;
}

export interface AudioVolume {
  producer: Producer;
  /** Average level over the interval, dBov (-127..0). */
  volume: number;
}

export type AudioLevelObserverEvents = {
  volumes: [AudioVolume[]];
  silence: [];
  close: [];
};

interface Watched {
  unsubscribe: () => void;
  sum: number;
  count: number;
}

export class AudioLevelObserver extends EnhancedEventEmitter<AudioLevelObserverEvents> {
  readonly intervalMs: number;
  readonly threshold: number;
  readonly maxEntries: number;
  readonly #watched = new Map<Producer, Watched>();
  readonly #timer: NodeJS.Timeout;
  #silent = true;
  #closed = false;

  private constructor(intervalMs: number, threshold: number, maxEntries: number) {
    super();
    this.intervalMs = intervalMs;
    this.threshold = threshold;
    this.maxEntries = maxEntries;
    this.#timer = setInterval(() => this.#report(), intervalMs);
    this.#timer.unref?.();
  }

  static async create(opts: AudioLevelObserverOptions = {}): Promise<AudioLevelObserver> {
    const intervalMs = opts.intervalMs ?? 300;
    const threshold = opts.threshold ?? -60;
    const maxEntries = opts.maxEntries ?? 1;
    if (!Number.isInteger(intervalMs) || intervalMs < 20 || intervalMs > 60_000) throw new TypeError(`intervalMs must be an integer from 20 to 60000, got ${String(intervalMs)}`);
    if (typeof threshold !== 'number' || !(threshold >= -127 && threshold <= 0)) throw new TypeError(`threshold must be a dBov from -127 to 0, got ${String(threshold)}`);
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new TypeError(`maxEntries must be an integer >= 1, got ${String(maxEntries)}`);
    return new AudioLevelObserver(intervalMs, threshold, maxEntries);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get producers(): Producer[] {
    return [...this.#watched.keys()];
  }

  /** Watch an audio producer (idempotent); it is dropped when it closes. */
  addProducer(producer: Producer): void {
    if (this.#closed) throw new InvalidStateError('audio level observer closed');
    if (!producer || producer.kind !== 'audio') throw new TypeError('an AudioLevelObserver watches audio producers only');
    if (producer.closed) throw new InvalidStateError('producer closed');
    if (this.#watched.has(producer)) return;
    const entry: Watched = { unsubscribe: () => undefined, sum: 0, count: 0 };
    const off = producer.addRtpListener((packet) => this.#onRtp(producer, entry, packet));
    const onClose = (): void => this.removeProducer(producer);
    producer.on('close', onClose);
    entry.unsubscribe = () => {
      off();
      producer.off('close', onClose);
    };
    this.#watched.set(producer, entry);
  }

  removeProducer(producer: Producer): void {
    const entry = this.#watched.get(producer);
    if (!entry) return;
    entry.unsubscribe();
    this.#watched.delete(producer);
  }

  #onRtp(producer: Producer, entry: Watched, packet: RtpPacket): void {
    const id = producer.headerExtensionId(AUDIO_LEVEL_URI);
    if (id === undefined) return;
    const ext = packet.header.extensions.find((e) => e.id === id);
    const byte = ext?.payload[0];
    if (byte === undefined) return;
    // RFC 6464: the V flag in the top bit, the level as -dBov in the low 7 bits.
    entry.sum += -(byte & 0x7f);
    entry.count++;
  }

  #report(): void {
    if (this.#closed) return;
    const volumes: AudioVolume[] = [];
    for (const [producer, entry] of this.#watched) {
      if (entry.count > 0) {
        const volume = entry.sum / entry.count;
        if (volume > this.threshold && !producer.paused) volumes.push({ producer, volume });
      }
      entry.sum = 0;
      entry.count = 0;
    }
    if (volumes.length > 0) {
      volumes.sort((a, b) => b.volume - a.volume);
      this.#silent = false;
      this.safeEmit('volumes', volumes.slice(0, this.maxEntries));
    } else if (!this.#silent) {
      this.#silent = true;
      this.safeEmit('silence');
    }
  }

  /** Idempotent; stops watching every producer. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const p of [...this.#watched.keys()]) this.removeProducer(p);
    this.safeEmit('close');
    this.removeAllListeners();
  }
}
