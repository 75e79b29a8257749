/**
 * A room routes every participant's producers to every other participant (mediasoup's Router, plus
 * membership). Two generic primitives let an application layer compose more on top:
 * - delegates (see Peer): peers that act for a participant. They are not listed, receive only what
 *   the application routes to them (consume / consumeData), and close when their principal leaves.
 * - presentations ({@link Room.present}): what viewers receive as one peer's media of one kind when
 *   other producers (usually a delegate's) stand in for it: an alias with its own sync group (msid).
 *   A presentation holds producers by opaque slot key; each viewer gets the producer of the slot it
 *   chose ({@link Room.setSlot}), else the default slot's, on one consumer per presented peer and
 *   kind that switches between producers without renegotiation and outlives their close.
 * The room emits events for everything published in it, so the application decides what to present.
 */
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import { AppError, InvalidStateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Config } from '../config.ts';
import { Peer, type PeerRole } from './Peer.ts';
import type { Producer } from '../sfu/Producer.ts';
import type { DataProducer } from '../sfu/DataProducer.ts';
import type { MediaKind } from '../../../protocol/src/signaling.ts';

export type RoomEvents = {
  close: [];
  peerjoined: [Peer];
  peerleft: [Peer];
  delegatejoined: [delegate: Peer];
  delegateleft: [delegate: Peer];
  /** Any peer's new producer, after the room forwarded it (a participant's) to the others. */
  producer: [Peer, Producer];
  producerstate: [Peer, Producer];
  producerclosed: [Peer, Producer];
  /** Any peer's new data producer; the room forwards data to nobody by itself. */
  dataproducer: [Peer, DataProducer];
};

/** The settings the media plane reads. */
export type RoomConfig = Pick<Config, 'limits' | 'rtc'>;

export interface RoomOptions {
  id: string;
  config: RoomConfig;
  logger: Logger;
  metrics: Metrics;
}

/** The slot of a viewer that chose none, and of a producer labelled with none. */
export const DEFAULT_SLOT = 'default';

/** The slot key a producer was published with (Peer.publish `slotsByMid`). */
export function slotOf(producer: Producer): string {
  return producer.appData.slot ?? DEFAULT_SLOT;
}

export interface Presentation {
  /** Producers of the presentation's kind by slot key; a viewer without a producer for its slot gets DEFAULT_SLOT's. */
  sources: ReadonlyMap<string, Producer>;
  /** The msid viewers see (tracks of one group are lip-synced); default: the presented peer's own. */
  syncGroup?: string;
  /** "others" (default): every participant but the presented peer; "everyone": the presented peer too (it sees itself). */
  audience?: 'others' | 'everyone';
}

export class Room extends EnhancedEventEmitter<RoomEvents> {
  readonly id: string;
  readonly createdAt = Date.now();
  readonly #config: RoomConfig;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #peers = new Map<string, Peer>();
  /** Presented peer id → kind → what viewers receive as that peer's media. */
  readonly #presentations = new Map<string, Map<MediaKind, Presentation>>();
  /** Viewer → presented peer id → the slot the viewer chose. */
  readonly #slots = new Map<Peer, Map<string, string>>();
  #closed = false;

  private constructor(opts: RoomOptions) {
    super();
    this.id = opts.id;
    this.#config = opts.config;
    this.#logger = opts.logger.child({ roomId: opts.id });
    this.#metrics = opts.metrics;
    this.#metrics.rooms.inc();
  }

  static async create(opts: RoomOptions): Promise<Room> {
    if (typeof opts.id !== 'string' || opts.id.length === 0) throw new TypeError('room id required');
    return new Room(opts);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Every peer, delegates included. */
  get peers(): ReadonlyMap<string, Peer> {
    return this.#peers;
  }

  /** The people in the room (what clients list). */
  get participants(): Peer[] {
    return [...this.#peers.values()].filter((p) => p.role === 'participant');
  }

  /** The open delegates of `principal`, in the order they joined. */
  delegatesOf(principal: Peer): Peer[] {
    return [...this.#peers.values()].filter((p) => p.principal === principal && !p.closed);
  }

  /**
   * Create a peer. A participant is subscribed to what the other participants publish and to every
   * presentation (unless `subscribe` is false: it then receives nothing); a delegate (role
   * "delegate", with its principal in this room) to nothing.
   */
  async join(displayName: string, opts: { role?: PeerRole; principal?: Peer; subscribe?: boolean } = {}): Promise<Peer> {
    if (opts.subscribe !== undefined && typeof opts.subscribe !== 'boolean') throw new TypeError('subscribe must be a boolean');
    if (this.#closed) throw new InvalidStateError('room closed');
    const role = opts.role ?? 'participant';
    const principal = role === 'delegate' ? opts.principal : undefined;
    if (role === 'delegate' && (!principal || principal.closed || principal.role !== 'participant' || this.#peers.get(principal.id) !== principal)) {
      throw new InvalidStateError('the principal is not a participant of this room');
    }
    if (role === 'participant' && this.participants.length >= this.#config.limits.maxPeersPerRoom) {
      throw new AppError('ROOM_FULL', `room "${this.id}" is full (${this.#config.limits.maxPeersPerRoom} peers)`);
    }
    const peer = await Peer.create({
      displayName,
      role,
      ...(principal ? { principal } : {}),
      ...(opts.subscribe === false ? { subscribe: false } : {}),
      logger: this.#logger,
      transport: {
        rtc: this.#config.rtc,
        pacer: { bitrateBps: this.#config.limits.pacerBitrateBps, maxQueuePackets: this.#config.limits.pacerMaxQueuePackets },
        metrics: this.#metrics,
      },
    });
    if (this.#closed || (principal && principal.closed)) {
      peer.close();
      throw new InvalidStateError('room or principal closed');
    }
    this.#peers.set(peer.id, peer);
    this.#metrics.peers.inc();
    peer.on('producer', (producer) => this.#onProducer(peer, producer));
    peer.on('producerstate', (producer) => this.safeEmit('producerstate', peer, producer));
    peer.on('dataproducer', (dp) => this.safeEmit('dataproducer', peer, dp));
    peer.on('close', () => this.#onPeerClosed(peer));
    // A participant on new transports publishes again: the others keep their consumers of it (frozen
    // meanwhile) and get its new producers switched in, with no renegotiation and the same tracks.
    peer.on('transportsrestarting', () => {
      if (peer.role !== 'participant') return;
      for (const viewer of this.participants) {
        if (viewer === peer) continue;
        for (const c of viewer.consumers) if (c.producerPeerId === peer.id) c.keepOnProducerClose = true;
      }
    });
    peer.on('transportsrestarted', () => {
      if (peer.role === 'participant' && !this.#closed) this.#routeTo(peer);
    });
    if (role === 'participant') {
      this.#routeTo(peer);
      this.#logger.info({ peerId: peer.id, displayName, participants: this.participants.length }, 'peer joined');
      this.safeEmit('peerjoined', peer);
    } else {
      this.#logger.info({ peerId: peer.id, principalPeerId: principal!.id }, 'delegate peer joined');
      this.safeEmit('delegatejoined', peer);
    }
    return peer;
  }

  /** A (new, or restarted) participant receives what every other participant publishes and every presentation. */
  #routeTo(peer: Peer): void {
    for (const other of this.participants) {
      if (other === peer) continue;
      for (const producer of other.producers) this.#forward(peer, other, producer);
    }
    for (const [peerId, byKind] of this.#presentations) {
      const presented = this.#peers.get(peerId);
      if (presented) for (const kind of byKind.keys()) this.#routePresentation(presented, kind, [peer]);
    }
  }

  /**
   * Present `presentation.sources` as `peer`'s media of `kind` (replacing what was presented before):
   * every viewer in the audience gets the producer of its slot now, and later viewers when they join.
   * Producers `peer` publishes itself reach viewers only where the presentation has none for them.
   * A presentation without a producer for a viewer leaves that viewer's consumer as it is. Presenting
   * a peer that has closed does nothing.
   */
  present(peer: Peer, kind: MediaKind, presentation: Presentation): void {
    this.#assertOpen();
    if (kind !== 'audio' && kind !== 'video') throw new TypeError(`invalid media kind ${String(kind)}`);
    if (!(presentation?.sources instanceof Map)) throw new TypeError('a presentation needs its sources (a Map of slot key to producer)');
    for (const p of presentation.sources.values()) if (p?.kind !== kind) throw new TypeError(`cannot present ${p ? `a ${p.kind} producer` : String(p)} as ${kind}`);
    if (peer.closed) return;
    if (this.#peers.get(peer.id) !== peer || peer.role !== 'participant') throw new TypeError('only a participant of this room can be presented');
    let byKind = this.#presentations.get(peer.id);
    if (!byKind) this.#presentations.set(peer.id, (byKind = new Map()));
    byKind.set(kind, presentation);
    this.#routePresentation(peer, kind, this.participants);
  }

  /** Stop presenting `peer`'s media of `kind` (viewers' consumers stay as they are). */
  stopPresenting(peer: Peer, kind: MediaKind): void {
    this.#presentations.get(peer.id)?.delete(kind);
  }

  /** `viewer` chose (or cleared, with undefined) its slot of `peer`'s presentations; switches its consumers now. */
  setSlot(viewer: Peer, peer: Peer, slot: string | undefined): void {
    this.#assertOpen();
    if (slot !== undefined && (typeof slot !== 'string' || slot.length === 0)) throw new TypeError('a slot is a non-empty string');
    let slots = this.#slots.get(viewer);
    if (slot === undefined || slot === DEFAULT_SLOT) slots?.delete(peer.id);
    else {
      if (!slots) this.#slots.set(viewer, (slots = new Map()));
      slots.set(peer.id, slot);
    }
    for (const kind of this.#presentations.get(peer.id)?.keys() ?? []) this.#routePresentation(peer, kind, this.participants);
  }

  /** The slot `viewer` chose for `peer` (undefined: the default). */
  slotOf(viewer: Peer, peer: Peer): string | undefined {
    return this.#slots.get(viewer)?.get(peer.id);
  }

  #onProducer(peer: Peer, producer: Producer): void {
    producer.on('close', () => this.safeEmit('producerclosed', peer, producer));
    if (peer.role === 'participant') {
      this.safeEmit('producerstate', peer, producer);
      for (const other of this.participants) {
        if (other === peer || other.closed) continue;
        this.#forward(other, peer, producer);
        other.renegotiate();
      }
    }
    this.safeEmit('producer', peer, producer);
  }

  /** `viewer` receives `peer`'s `producer`, or what is presented instead of it. */
  #forward(viewer: Peer, peer: Peer, producer: Producer): void {
    if (!viewer.subscribes) return;
    const presentation = this.#presentations.get(peer.id)?.get(producer.kind);
    const instead = presentation && this.#sourceFor(viewer, peer, presentation);
    if (instead) {
      this.#present(viewer, peer, instead, presentation.syncGroup);
      return;
    }
    // The consumer the viewer kept while the peer restarted its transports takes the new producer.
    const kept = viewer.consumers.find((c) => c.producerPeerId === peer.id && c.kind === producer.kind && !c.closed && c.producer.closed && c.keepOnProducerClose);
    if (kept) {
      kept.switchProducer(producer);
      kept.keepOnProducerClose = false;
    }
    else viewer.consume(producer, peer.id);
  }

  #sourceFor(viewer: Peer, peer: Peer, presentation: Presentation): Producer | undefined {
    if (viewer === peer && presentation.audience !== 'everyone') return undefined;
    const open = (slot: string): Producer | undefined => {
      const p = presentation.sources.get(slot);
      return p && !p.closed ? p : undefined;
    };
    return open(this.slotOf(viewer, peer) ?? DEFAULT_SLOT) ?? open(DEFAULT_SLOT);
  }

  #routePresentation(peer: Peer, kind: MediaKind, viewers: Peer[]): void {
    const presentation = this.#presentations.get(peer.id)?.get(kind);
    if (!presentation || peer.closed || this.#closed) return;
    for (const viewer of viewers) {
      if (viewer.closed || !viewer.subscribes) continue;
      const want = this.#sourceFor(viewer, peer, presentation);
      if (want) this.#present(viewer, peer, want, presentation.syncGroup);
    }
  }

  /** Make `viewer`'s consumer of `peer`'s media of that kind forward `want` (switching, or a new consumer). */
  #present(viewer: Peer, peer: Peer, want: Producer, syncGroup: string | undefined): void {
    const current = viewer.consumers.find((c) => c.kind === want.kind && c.producerPeerId === peer.id && !c.closed);
    if (current) {
      // From now on it presents: a producer that goes away is replaced, not the consumer.
      current.keepOnProducerClose = true;
      if (current.producer !== want) current.switchProducer(want);
      return;
    }
    viewer.consume(want, peer.id, { keepOnProducerClose: true, ...(syncGroup !== undefined ? { syncGroup } : {}) });
    viewer.renegotiate();
  }

  #onPeerClosed(peer: Peer): void {
    if (!this.#peers.delete(peer.id)) return;
    this.#metrics.peers.dec();
    this.#slots.delete(peer);
    if (peer.role === 'delegate') {
      this.#logger.info({ peerId: peer.id, principalPeerId: peer.principal?.id }, 'delegate peer left');
      this.safeEmit('delegateleft', peer);
      return;
    }
    for (const delegate of this.delegatesOf(peer)) delegate.close();
    this.#presentations.delete(peer.id);
    for (const slots of this.#slots.values()) slots.delete(peer.id);
    // Consumers that presented it survived their producers' close: they end with the peer.
    for (const p of this.participants) p.closeConsumersOf(peer.id);
    this.#logger.info({ peerId: peer.id, participants: this.participants.length }, 'peer left');
    this.safeEmit('peerleft', peer);
    if (this.participants.length === 0) this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError('room closed');
  }

  /** Idempotent; closes every peer. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const peer of [...this.#peers.values()]) peer.close();
    this.#presentations.clear();
    this.#slots.clear();
    this.#metrics.rooms.dec();
    this.#logger.info('room closed');
    this.safeEmit('close');
    this.removeAllListeners();
  }
}
