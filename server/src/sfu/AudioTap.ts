/**
 * A tap: an audio producer's RTP packets as data messages (protocol/src/audioTap.ts), for a consumer
 * that decodes them itself and gains nothing from a playout jitter buffer (e.g. one that analyses
 * the audio as it arrives). A {@link DataSource}: a peer's receive transport forwards it on an
 * unordered, no-retransmit data channel through a DataConsumer, like a DataProducer's messages.
 * Closes with its producer.
 */
import { randomUUID } from 'node:crypto';
import type { RtpPacket } from 'werift';
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import { InvalidStateError } from '../errors.ts';
import { AUDIO_TAP_LABEL, encodeAudioTapPacket } from '../../../protocol/src/audioTap.ts';
import type { DataListener, DataSource } from './DataProducer.ts';
import type { Producer } from './Producer.ts';

export type AudioTapEvents = {
  close: [];
};

export class AudioTap extends EnhancedEventEmitter<AudioTapEvents> implements DataSource {
  readonly id = randomUUID().replaceAll('-', '').slice(0, 16);
  readonly label = AUDIO_TAP_LABEL;
  readonly ordered = false;
  readonly maxRetransmits = 0;
  readonly producer: Producer;
  readonly #listeners = new Set<DataListener>();
  readonly #cleanups: (() => void)[] = [];
  #closed = false;
  packets = 0;
  /** Packets that could not be encoded (empty or oversized payloads). */
  skipped = 0;

  constructor(producer: Producer) {
    super();
    if (producer.kind !== 'audio') throw new TypeError(`an audio tap needs an audio producer, got ${producer.kind}`);
    if (producer.closed) throw new InvalidStateError('producer closed');
    this.producer = producer;
    this.#cleanups.push(producer.addRtpListener((packet) => this.#onRtp(packet)));
    const onClose = (): void => this.close();
    producer.on('close', onClose);
    this.#cleanups.push(() => producer.off('close', onClose));
  }

  get closed(): boolean {
    return this.#closed;
  }

  addListener(listener: DataListener): () => void {
    if (this.#closed) throw new InvalidStateError('audio tap closed');
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #onRtp(packet: RtpPacket): void {
    if (this.#closed || this.#listeners.size === 0) return;
    let message: Buffer;
    try {
      const bytes = encodeAudioTapPacket({ codec: 'opus', sequenceNumber: packet.header.sequenceNumber, timestamp: packet.header.timestamp, payload: packet.payload });
      message = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch {
      this.skipped++;
      return;
    }
    this.packets++;
    for (const l of this.#listeners) l(message);
  }

  /** Idempotent. Consumers are told through the "close" event. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#cleanups.splice(0)) c();
    this.#listeners.clear();
    this.safeEmit('close');
    this.removeAllListeners();
  }
}
