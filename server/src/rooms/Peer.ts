/**
 * A member of a room: one send and one receive transport, its producers and its consumers.
 * role "participant": a person (browser), listed to the others.
 * role "delegate": a peer that acts for a participant, its `principal` (LiveKit's agents): it is not
 * listed to others, receives only what the application routes to it, and what it publishes reaches
 * others only where the application presents it (Room.present).
 */
import { randomUUID } from 'node:crypto';
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import { AppError, InvalidStateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { WebRtcTransport, type OfferSignal, type WebRtcTransportOptions } from '../sfu/WebRtcTransport.ts';
import type { Producer } from '../sfu/Producer.ts';
import type { Consumer } from '../sfu/Consumer.ts';
import type { DataProducer, DataSource } from '../sfu/DataProducer.ts';
import type { DataConsumer } from '../sfu/DataConsumer.ts';
import type { MediaKind, PeerInfo, ProducerInfo, SessionDescription } from '../../../protocol/src/signaling.ts';

export type PeerEvents = {
  close: [];
  producer: [Producer];
  producerstate: [Producer];
  dataproducer: [DataProducer];
  /** One of its transports died (ICE/DTLS failed, or silent past the consent timeout); see restartTransports(). */
  transportfailed: [transport: WebRtcTransport, reason: 'connectionfailed' | 'icetimeout'];
  /** One of its transports went silent for rtc.iceInactiveMs (false), or receives again (true). */
  transportactivity: [transport: WebRtcTransport, active: boolean];
  /** restartTransports() is about to close both transports (their producers close next). */
  transportsrestarting: [];
  /** restartTransports() replaced both transports: the peer publishes again and is routed afresh. */
  transportsrestarted: [];
};

export type PeerRole = 'participant' | 'delegate';

/**
 * What the application layer tells every client about a peer besides its id, name and producers
 * (LiveKit's participant attributes): the optional fields of the protocol's PeerInfo.
 */
export type PeerAttributes = Omit<PeerInfo, 'peerId' | 'displayName' | 'producers'>;

export interface PeerOptions {
  displayName: string;
  role?: PeerRole;
  /** For role "delegate": the participant this peer acts for. */
  principal?: Peer;
  /** A participant that does not subscribe receives no one's media (default true). */
  subscribe?: boolean;
  logger: Logger;
  transport: Omit<WebRtcTransportOptions, 'direction' | 'logger'>;
}

export class Peer extends EnhancedEventEmitter<PeerEvents> {
  readonly id: string;
  readonly displayName: string;
  readonly joinedAt = Date.now();
  readonly logger: Logger;
  #send: WebRtcTransport;
  #recv: WebRtcTransport;
  readonly #transportOptions: Omit<WebRtcTransportOptions, 'direction'>;
  readonly role: PeerRole;
  /** For a delegate: the participant it acts for. */
  readonly principal: Peer | undefined;
  /** Whether the room routes the others' media to this participant (Room.join `subscribe`). */
  readonly subscribes: boolean;
  /** Copied into info(); set by the application layer, which tells clients when it changes. */
  attributes: PeerAttributes = {};
  #offerSignal: OfferSignal | undefined;
  #closed = false;

  private constructor(id: string, displayName: string, logger: Logger, send: WebRtcTransport, recv: WebRtcTransport, role: PeerRole, principal: Peer | undefined, subscribes: boolean, transportOptions: Omit<WebRtcTransportOptions, 'direction'>) {
    super();
    this.subscribes = subscribes;
    this.role = role;
    this.principal = principal;
    this.id = id;
    this.displayName = displayName;
    this.logger = logger;
    this.#transportOptions = transportOptions;
    this.#send = send;
    this.#recv = recv;
    this.#wire(send, recv);
  }

  #wire(send: WebRtcTransport, recv: WebRtcTransport): void {
    send.on('producer', (producer) => {
      producer.on('pause', () => this.safeEmit('producerstate', producer));
      producer.on('resume', () => this.safeEmit('producerstate', producer));
      this.safeEmit('producer', producer);
    });
    send.on('dataproducer', (dp) => this.safeEmit('dataproducer', dp));
    for (const t of [send, recv]) {
      t.on('connectionfailed', () => this.safeEmit('transportfailed', t, 'connectionfailed'));
      t.on('icetimeout', () => this.safeEmit('transportfailed', t, 'icetimeout'));
      t.on('activity', (active) => this.safeEmit('transportactivity', t, active));
    }
  }

  get sendTransport(): WebRtcTransport {
    return this.#send;
  }

  get recvTransport(): WebRtcTransport {
    return this.#recv;
  }

  /**
   * Replace both transports with fresh ones (a client whose connection died reconnects on new ones):
   * the old ones close, with their producers and consumers; the peer keeps its id. Listeners of
   * "transportsrestarted" (the room) route media to it again; the client publishes again.
   */
  async restartTransports(): Promise<void> {
    this.#assertOpen();
    const send = await WebRtcTransport.create({ ...this.#transportOptions, direction: 'send' });
    const recv = await WebRtcTransport.create({ ...this.#transportOptions, direction: 'recv' });
    if (this.#closed) {
      send.close();
      recv.close();
      throw new InvalidStateError('peer closed');
    }
    this.safeEmit('transportsrestarting');
    const oldSend = this.#send;
    const oldRecv = this.#recv;
    this.#send = send;
    this.#recv = recv;
    this.#wire(send, recv);
    oldSend.close();
    oldRecv.close();
    this.logger.info('transports restarted');
    this.safeEmit('transportsrestarted');
  }

  static async create(opts: PeerOptions): Promise<Peer> {
    if (typeof opts.displayName !== 'string' || opts.displayName.length === 0) throw new TypeError('displayName required');
    const role = opts.role ?? 'participant';
    if (role !== 'participant' && role !== 'delegate') throw new TypeError(`invalid peer role ${String(role)}`);
    if (role === 'delegate' && !opts.principal) throw new TypeError('a delegate peer needs its principal');
    const id = randomUUID().replaceAll('-', '').slice(0, 12);
    const logger = opts.logger.child({ peerId: id, ...(role === 'delegate' ? { role, principalPeerId: opts.principal?.id } : {}) });
    const send = await WebRtcTransport.create({ ...opts.transport, direction: 'send', logger });
    const recv = await WebRtcTransport.create({ ...opts.transport, direction: 'recv', logger });
    return new Peer(id, opts.displayName, logger, send, recv, role, role === 'delegate' ? opts.principal : undefined, opts.subscribe !== false, { ...opts.transport, logger });
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

  get dataProducers(): DataProducer[] {
    return [...this.sendTransport.dataProducers.values()];
  }

  info(): PeerInfo {
    return { peerId: this.id, displayName: this.displayName, producers: this.producers.map(producerInfo), ...this.attributes };
  }

  /** How offers for the receive transport reach the client (set by the signaling layer). */
  setOfferSignal(signal: OfferSignal): void {
    this.#offerSignal = signal;
  }

  /**
   * Apply the client's offer on the send transport (with its codec parameters, e.g. audio ptime).
   * `slotsByMid` labels the producers of those media sections with an opaque slot key (Room.present).
   */
  async publish(offer: SessionDescription, slotsByMid?: Record<string, string>, sourcesByMid?: Record<string, 'screen'>): Promise<{ answer: SessionDescription; producers: ProducerInfo[] }> {
    this.#assertOpen();
    const answer = await this.sendTransport.processOffer(offer, slotsByMid, sourcesByMid);
    return { answer, producers: this.producers.map(producerInfo) };
  }

  setProducerPaused(kind: MediaKind, paused: boolean): ProducerInfo {
    this.#assertOpen();
    // The camera or microphone, not an additional source such as a screen share.
    const producer = this.producers.find((p) => p.kind === kind && !p.appData.source);
    if (!producer) throw new InvalidStateError(`no ${kind} producer published`);
    if (paused) producer.pause();
    else producer.resume();
    return producerInfo(producer);
  }

  /** Close one of this peer's producers (its consumers close with it). Unknown id: AppError NOT_FOUND. */
  closeProducer(producerId: string): void {
    this.#assertOpen();
    const producer = this.sendTransport.producers.get(producerId);
    if (!producer) throw new AppError('NOT_FOUND', `you have no producer ${producerId}`);
    producer.close();
  }

  /**
   * @param opts.keepOnProducerClose keep the consumer (frozen on its last frame) when its producer
   *   closes, so that a replacement can be switched in without renegotiation (presented media: a
   *   new delegate takes over).
   */
  consume(producer: Producer, producerPeerId: string, opts: { keepOnProducerClose?: boolean; syncGroup?: string } = {}): Consumer {
    this.#assertOpen();
    const consumer = this.recvTransport.consume(producer, producerPeerId, opts.syncGroup);
    consumer.keepOnProducerClose = opts.keepOnProducerClose ?? false;
    consumer.on('producerclose', () => {
      if (consumer.keepOnProducerClose) return;
      consumer.close();
      this.renegotiate();
    });
    return consumer;
  }

  /** Close every consumer of what `producerPeerId` presents (it left the room). */
  closeConsumersOf(producerPeerId: string): void {
    let closed = 0;
    for (const c of this.consumers) {
      if (c.producerPeerId !== producerPeerId) continue;
      c.close();
      closed++;
    }
    if (closed > 0) this.renegotiate();
  }

  consumeData(dataProducer: DataSource, producerPeerId: string): DataConsumer {
    this.#assertOpen();
    const dataConsumer = this.recvTransport.consumeData(dataProducer, producerPeerId);
    dataConsumer.on('producerclose', () => dataConsumer.close());
    return dataConsumer;
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
  return { producerId: p.id, kind: p.kind, paused: p.paused, ...(p.appData.source ? { source: p.appData.source } : {}) };
}
