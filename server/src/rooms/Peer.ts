/** A participant in a room: one send and one receive transport, its producers and its consumers. */
import { randomUUID } from 'node:crypto';
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import { InvalidStateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { WebRtcTransport, type OfferSignal, type WebRtcTransportOptions } from '../sfu/WebRtcTransport.ts';
import type { Producer } from '../sfu/Producer.ts';
import type { Consumer } from '../sfu/Consumer.ts';
import type { MediaKind, PeerInfo, ProducerInfo, SessionDescription } from '../../../protocol/src/signaling.ts';

export type PeerEvents = {
  close: [];
  producer: [Producer];
  producerstate: [Producer];
};

export interface PeerOptions {
  displayName: string;
  logger: Logger;
  transport: Omit<WebRtcTransportOptions, 'direction' | 'logger'>;
}

export class Peer extends EnhancedEventEmitter<PeerEvents> {
  readonly id: string;
  readonly displayName: string;
  readonly joinedAt = Date.now();
  readonly logger: Logger;
  readonly sendTransport: WebRtcTransport;
  readonly recvTransport: WebRtcTransport;
  #offerSignal: OfferSignal | undefined;
  #closed = false;

  private constructor(id: string, displayName: string, logger: Logger, send: WebRtcTransport, recv: WebRtcTransport) {
    super();
    this.id = id;
    this.displayName = displayName;
    this.logger = logger;
    this.sendTransport = send;
    this.recvTransport = recv;
    send.on('producer', (producer) => {
      producer.on('pause', () => this.safeEmit('producerstate', producer));
      producer.on('resume', () => this.safeEmit('producerstate', producer));
      this.safeEmit('producer', producer);
    });
  }

  static async create(opts: PeerOptions): Promise<Peer> {
    if (typeof opts.displayName !== 'string' || opts.displayName.length === 0) throw new TypeError('displayName required');
    const id = randomUUID().replaceAll('-', '').slice(0, 12);
    const logger = opts.logger.child({ peerId: id });
    const send = await WebRtcTransport.create({ ...opts.transport, direction: 'send', logger });
    const recv = await WebRtcTransport.create({ ...opts.transport, direction: 'recv', logger });
    return new Peer(id, opts.displayName, logger, send, recv);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get producers(): Producer[] {
    return [...this.sendTransport.producers.values()];
  }

  get consumers(): Consumer[] {
    return [...this.recvTransport.consumers.values()];
  }

  info(): PeerInfo {
    return { peerId: this.id, displayName: this.displayName, producers: this.producers.map(producerInfo) };
  }

  /** How offers for the receive transport reach the client (set by the signaling layer). */
  setOfferSignal(signal: OfferSignal): void {
    this.#offerSignal = signal;
  }

  async publish(offer: SessionDescription): Promise<{ answer: SessionDescription; producers: ProducerInfo[] }> {
    this.#assertOpen();
    const answer = await this.sendTransport.processOffer(offer);
    return { answer, producers: this.producers.map(producerInfo) };
  }

  setProducerPaused(kind: MediaKind, paused: boolean): ProducerInfo {
    this.#assertOpen();
    const producer = this.producers.find((p) => p.kind === kind);
    if (!producer) throw new InvalidStateError(`no ${kind} producer published`);
    if (paused) producer.pause();
    else producer.resume();
    return producerInfo(producer);
  }

  consume(producer: Producer, producerPeerId: string): Consumer {
    this.#assertOpen();
    const consumer = this.recvTransport.consume(producer, producerPeerId);
    consumer.on('producerclose', () => {
      consumer.close();
      this.renegotiate();
    });
    return consumer;
  }

  /** Bring the client's receive transport up to date (coalesced; failures are logged, retried on the next change). */
  renegotiate(): void {
    if (this.#closed || !this.#offerSignal) return;
    this.recvTransport.negotiate(this.#offerSignal).catch((err: unknown) => {
      if (!this.#closed) this.logger.warn({ err: (err as Error)?.message }, 'receive transport negotiation failed');
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError('peer closed');
  }

  /** Idempotent; closes both transports (and so every producer and consumer of this peer). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.sendTransport.close();
    this.recvTransport.close();
    this.safeEmit('close');
    this.removeAllListeners();
  }
}

export function producerInfo(p: Producer): ProducerInfo {
  return { producerId: p.id, kind: p.kind, paused: p.paused };
}
