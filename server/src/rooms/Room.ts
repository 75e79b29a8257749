/** A room routes every peer's producers to every other peer (mediasoup's Router, plus membership). */
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import { AppError, InvalidStateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Config } from '../config.ts';
import { Peer } from './Peer.ts';
import type { Producer } from '../sfu/Producer.ts';

export type RoomEvents = {
  close: [];
  peerjoined: [Peer];
  peerleft: [Peer];
  producerstate: [Peer, Producer];
  producerclosed: [Peer, Producer];
};

export interface RoomOptions {
  id: string;
  config: Config;
  logger: Logger;
  metrics: Metrics;
}

export class Room extends EnhancedEventEmitter<RoomEvents> {
  readonly id: string;
  readonly createdAt = Date.now();
  readonly #config: Config;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #peers = new Map<string, Peer>();
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

  get peers(): ReadonlyMap<string, Peer> {
    return this.#peers;
  }

  /** Create a peer and subscribe it to everything already published in the room. */
  async join(displayName: string): Promise<Peer> {
    if (this.#closed) throw new InvalidStateError('room closed');
    if (this.#peers.size >= this.#config.limits.maxPeersPerRoom) throw new AppError('ROOM_FULL', `room "${this.id}" is full (${this.#config.limits.maxPeersPerRoom} peers)`, 403);
    const peer = await Peer.create({
      displayName,
      logger: this.#logger,
      transport: {
        rtc: this.#config.rtc,
        pacer: { bitrateBps: this.#config.limits.pacerBitrateBps, maxQueuePackets: this.#config.limits.pacerMaxQueuePackets },
        metrics: this.#metrics,
      },
    });
    if (this.#closed) {
      peer.close();
      throw new InvalidStateError('room closed');
    }
    this.#peers.set(peer.id, peer);
    this.#metrics.peers.inc();
    peer.on('producer', (producer) => this.#onProducer(peer, producer));
    peer.on('producerstate', (producer) => this.safeEmit('producerstate', peer, producer));
    peer.on('close', () => this.#onPeerClosed(peer));
    for (const other of this.#peers.values()) {
      if (other === peer) continue;
      for (const producer of other.producers) peer.consume(producer, other.id);
    }
    this.#logger.info({ peerId: peer.id, displayName, peers: this.#peers.size }, 'peer joined');
    this.safeEmit('peerjoined', peer);
    return peer;
  }

  #onProducer(owner: Peer, producer: Producer): void {
    producer.on('close', () => this.safeEmit('producerclosed', owner, producer));
    this.safeEmit('producerstate', owner, producer);
    for (const other of this.#peers.values()) {
      if (other === owner || other.closed) continue;
      other.consume(producer, owner.id);
      other.renegotiate();
    }
  }

  #onPeerClosed(peer: Peer): void {
    if (!this.#peers.delete(peer.id)) return;
    this.#metrics.peers.dec();
    this.#logger.info({ peerId: peer.id, peers: this.#peers.size }, 'peer left');
    this.safeEmit('peerleft', peer);
    if (this.#peers.size === 0) this.close();
  }

  /** Idempotent; closes every peer. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const peer of [...this.#peers.values()]) peer.close();
    this.#metrics.rooms.dec();
    this.#logger.info('room closed');
    this.safeEmit('close');
    this.removeAllListeners();
  }
}
