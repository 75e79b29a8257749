/**
 * A member of a room: one send and one receive transport, its producers and its consumers.
 * role "participant": a person (browser). role "avatar": an avatar worker's peer that renders the
 * avatar of `avatarOf`; it is not listed to others, and its video is presented as its owner's.
 */
import { randomUUID } from 'node:crypto';
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import { InvalidStateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { WebRtcTransport, type OfferSignal, type WebRtcTransportOptions } from '../sfu/WebRtcTransport.ts';
import type { Producer } from '../sfu/Producer.ts';
import type { Consumer } from '../sfu/Consumer.ts';
import type { DataProducer, DataSource } from '../sfu/DataProducer.ts';
import type { DataConsumer } from '../sfu/DataConsumer.ts';
import type { MediaKind, PeerInfo, ProducerInfo, SessionDescription, ViewOffsetDeg } from '../../../protocol/src/signaling.ts';

export type PeerEvents = {
  close: [];
  producer: [Producer];
  producerstate: [Producer];
  dataproducer: [DataProducer];
};

export type PeerRole = 'participant' | 'avatar';

/** What an avatar owner shows instead of a camera. */
export interface AvatarState {
  identityId: string;
  sessionId: string;
  driver: 'keypoint' | 'voice';
  state: 'starting' | 'live' | 'recovering' | 'failed';
  /** Why a failed avatar failed (shown in its tile). */
  reason?: string;
  /** The owner stopped the camera that drives it (keypoint avatars): it idles. */
  paused?: boolean;
  defaultView: ViewOffsetDeg;
}

export interface PeerOptions {
  displayName: string;
  role?: PeerRole;
  /** For role "avatar": the participant whose avatar this peer renders. */
  avatarOf?: Peer;
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
  readonly role: PeerRole;
  readonly avatarOf: Peer | undefined;
  /** Set on a participant who joined as an avatar. */
  avatar: AvatarState | undefined;
  /** Per avatar owner id: this viewer's personal view key (absent = the shared default view). */
  readonly viewKeys = new Map<string, string>();
  #offerSignal: OfferSignal | undefined;
  #closed = false;

  private constructor(id: string, displayName: string, logger: Logger, send: WebRtcTransport, recv: WebRtcTransport, role: PeerRole, avatarOf: Peer | undefined) {
    super();
    this.role = role;
    this.avatarOf = avatarOf;
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
    send.on('dataproducer', (dp) => this.safeEmit('dataproducer', dp));
  }

  static async create(opts: PeerOptions): Promise<Peer> {
    if (typeof opts.displayName !== 'string' || opts.displayName.length === 0) throw new TypeError('displayName required');
    const role = opts.role ?? 'participant';
    if (role === 'avatar' && !opts.avatarOf) throw new TypeError('an avatar peer needs avatarOf');
    const id = randomUUID().replaceAll('-', '').slice(0, 12);
    const logger = opts.logger.child({ peerId: id, ...(role === 'avatar' ? { role, avatarOf: opts.avatarOf?.id } : {}) });
    const send = await WebRtcTransport.create({ ...opts.transport, direction: 'send', logger });
    const recv = await WebRtcTransport.create({ ...opts.transport, direction: 'recv', logger });
    return new Peer(id, opts.displayName, logger, send, recv, role, opts.avatarOf);
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
    const info: PeerInfo = { peerId: this.id, displayName: this.displayName, producers: this.producers.map(producerInfo) };
    if (this.avatar) {
      info.avatar = { identityId: this.avatar.identityId, driver: this.avatar.driver, state: this.avatar.state, defaultView: this.avatar.defaultView };
      if (this.avatar.reason !== undefined) info.avatar.reason = this.avatar.reason;
      if (this.avatar.paused) info.avatar.paused = true;
    }
    return info;
  }

  /** How offers for the receive transport reach the client (set by the signaling layer). */
  setOfferSignal(signal: OfferSignal): void {
    this.#offerSignal = signal;
  }

  async publish(offer: SessionDescription, trackViews?: Record<string, string>): Promise<{ answer: SessionDescription; producers: ProducerInfo[] }> {
    this.#assertOpen();
    // A voice avatar's audio drives its lips: shorter audio packets from the owner (into the worker)
    // and from the worker (its republished, lip-aligned voice) take time out of mic-to-lips.
    const voice = this.avatar?.driver === 'voice' || (this.role === 'avatar' && this.avatarOf?.avatar?.driver === 'voice');
    const answer = await this.sendTransport.processOffer(offer, this.role === 'avatar' ? trackViews : undefined, voice ? { audioPtimeMs: this.sendTransport.voiceAudioPtimeMs } : {});
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

  /**
   * @param opts.keepOnProducerClose keep the consumer (frozen on its last frame) when its producer
   *   closes, so that a replacement can be switched in without renegotiation (avatar videos: a new
   *   worker takes over the session).
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
  return { producerId: p.id, kind: p.kind, paused: p.paused };
}
