/** Forwards a {@link DataSource}'s messages (a DataProducer's, an AudioTap's) to one peer over a data channel of its receive transport. */
import { randomUUID } from 'node:crypto';
import type { RTCDataChannel } from 'werift';
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import type { DataSource } from './DataProducer.ts';

export type DataConsumerEvents = {
  close: [];
  producerclose: [];
};

/** A receiver this far behind gets its messages dropped (unreliable channels carry messages that are only useful when fresh). */
const MAX_BUFFERED_BYTES = 64 * 1024;

export class DataConsumer extends EnhancedEventEmitter<DataConsumerEvents> {
  readonly id = randomUUID().replaceAll('-', '').slice(0, 16);
  readonly dataProducer: DataSource;
  readonly producerPeerId: string;
  readonly #channel: RTCDataChannel;
  readonly #cleanups: (() => void)[] = [];
  #closed = false;
  sent = 0;
  dropped = 0;

  constructor(opts: { dataProducer: DataSource; producerPeerId: string; channel: RTCDataChannel }) {
    super();
    this.dataProducer = opts.dataProducer;
    this.producerPeerId = opts.producerPeerId;
    this.#channel = opts.channel;
    this.#cleanups.push(this.dataProducer.addListener((m) => this.#forward(m)));
    const onClose = (): void => {
      this.safeEmit('producerclose');
    };
    this.dataProducer.on('close', onClose);
    this.#cleanups.push(() => {
      this.dataProducer.off('close', onClose);
    });
  }

  get label(): string {
    return this.#channel.label;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #forward(message: Buffer | string): void {
    if (this.#closed || this.#channel.readyState !== 'open') return;
    if (this.#channel.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.dropped++;
      return;
    }
    try {
      this.#channel.send(message);
      this.sent++;
    } catch {
      this.dropped++;
    }
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#cleanups.splice(0)) c();
    try {
      if (this.#channel.readyState !== 'closed') this.#channel.close();
    } catch {
      // transport already gone
    }
    this.safeEmit('close');
    this.removeAllListeners();
  }
}
