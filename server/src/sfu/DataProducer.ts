/**
 * A data channel opened by a peer on its send transport (e.g. a stream of small, frequent state updates).
 * Messages over `maxMessageBytes` or above `maxMessagesPerSecond` are dropped and counted here, before
 * they cost anything downstream; content is validated by whoever consumes it.
 */
import { randomUUID } from 'node:crypto';
import type { RTCDataChannel } from 'werift';
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import { InvalidStateError } from '../errors.ts';

export type DataListener = (message: Buffer | string) => void;

/**
 * What a DataConsumer forwards: a peer's data channel (DataProducer) or messages the SFU makes
 * itself (AudioTap). It closes through its "close" event.
 */
export interface DataSource {
  readonly id: string;
  readonly label: string;
  readonly ordered: boolean;
  readonly maxRetransmits: number | null;
  readonly closed: boolean;
  /** Returns the unsubscribe function. Throws InvalidStateError when closed. */
  addListener(listener: DataListener): () => void;
  on(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

export type DataProducerEvents = {
  close: [];
  drop: [reason: 'oversized' | 'rate'];
};

export interface DataProducerLimits {
  maxMessageBytes: number;
  maxMessagesPerSecond: number;
}

export class DataProducer extends EnhancedEventEmitter<DataProducerEvents> implements DataSource {
  readonly id = randomUUID().replaceAll('-', '').slice(0, 16);
  readonly label: string;
  readonly ordered: boolean;
  readonly maxRetransmits: number | null;
  readonly #channel: RTCDataChannel;
  readonly #listeners = new Set<DataListener>();
  readonly #limits: DataProducerLimits;
  readonly #unsubscribe: () => void;
  #windowStart = 0;
  #windowCount = 0;
  #closed = false;
  messages = 0;
  dropped = 0;

  constructor(channel: RTCDataChannel, limits: DataProducerLimits) {
    super();
    if (!(limits.maxMessageBytes > 0) || !(limits.maxMessagesPerSecond > 0)) throw new TypeError('invalid data producer limits');
    this.#channel = channel;
    this.#limits = limits;
    this.label = channel.label;
    this.ordered = channel.ordered;
    this.maxRetransmits = channel.maxRetransmits;
    const msg = channel.onMessage.subscribe((m) => this.#onMessage(m));
    const state = channel.stateChange.subscribe((s) => {
      if (s === 'closed') this.close();
    });
    this.#unsubscribe = () => {
      msg.unSubscribe();
      state.unSubscribe();
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  addListener(listener: DataListener): () => void {
    if (this.#closed) throw new InvalidStateError('data producer closed');
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #onMessage(message: Buffer | string): void {
    if (this.#closed) return;
    const size = typeof message === 'string' ? Buffer.byteLength(message) : message.length;
    if (size > this.#limits.maxMessageBytes) return this.#drop('oversized');
    const now = performance.now();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    if (++this.#windowCount > this.#limits.maxMessagesPerSecond) return this.#drop('rate');
    this.messages++;
    for (const l of this.#listeners) l(message);
  }

  #drop(reason: 'oversized' | 'rate'): void {
    this.dropped++;
    this.safeEmit('drop', reason);
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#listeners.clear();
    try {
      if (this.#channel.readyState !== 'closed') this.#channel.close();
    } catch {
      // transport already gone
    }
    this.safeEmit('close');
    this.removeAllListeners();
  }
}
