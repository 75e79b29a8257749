/**
 * A room routes every participant's producers to every other participant (mediasoup's Router, plus
 * membership). Avatar peers (see Peer) are routed differently: they receive their owner's data
 * channels, and their video is presented to everyone as the owner's, each viewer getting the
 * rendering of its personal view when one exists.
 */
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import { AppError, InvalidStateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Config } from '../config.ts';
import { Peer, type PeerRole } from './Peer.ts';
import type { Producer } from '../sfu/Producer.ts';
import type { DataProducer } from '../sfu/DataProducer.ts';
import { AudioTap } from '../sfu/AudioTap.ts';

export type RoomEvents = {
  close: [];
  peerjoined: [Peer];
  peerleft: [Peer];
  producerstate: [Peer, Producer];
  producerclosed: [Peer, Producer];
  /** An avatar peer published its first video: the owner's avatar is on screen. */
  avatarlive: [avatar: Peer];
  avatarpeerleft: [avatar: Peer];
};

export interface RoomOptions {
  id: string;
  config: Config;
  logger: Logger;
  metrics: Metrics;
}

/** The view key of an avatar video producer: "default", or the key of a personal view. */
export function viewKeyOf(producer: Producer): string {
  return producer.appData.viewKey ?? 'default';
}

export class Room extends EnhancedEventEmitter<RoomEvents> {
  readonly id: string;
  readonly createdAt = Date.now();
  readonly #config: Config;
  /** Voice avatars' microphones as data messages, by producer id (they close with the producer). */
  readonly #audioTaps = new Map<string, AudioTap>();
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

  /** Every peer, avatar peers included. */
  get peers(): ReadonlyMap<string, Peer> {
    return this.#peers;
  }

  /** The people in the room (what clients list). */
  get participants(): Peer[] {
    return [...this.#peers.values()].filter((p) => p.role === 'participant');
  }

  avatarPeersOf(owner: Peer): Peer[] {
    return [...this.#peers.values()].filter((p) => p.avatarOf === owner && !p.closed);
  }

  /** Create a peer and subscribe it to what is already published in the room. */
  async join(displayName: string, opts: { role?: PeerRole; avatarOf?: Peer } = {}): Promise<Peer> {
    if (this.#closed) throw new InvalidStateError('room closed');
    const role = opts.role ?? 'participant';
    if (role === 'avatar' && (!opts.avatarOf || opts.avatarOf.closed || this.#peers.get(opts.avatarOf.id) !== opts.avatarOf)) {
      throw new InvalidStateError('the avatar owner is not in this room');
    }
    if (role === 'participant' && this.participants.length >= this.#config.limits.maxPeersPerRoom) {
      throw new AppError('ROOM_FULL', `room "${this.id}" is full (${this.#config.limits.maxPeersPerRoom} peers)`);
    }
    const peer = await Peer.create({
      displayName,
      role,
      ...(opts.avatarOf ? { avatarOf: opts.avatarOf } : {}),
      logger: this.#logger,
      transport: {
        rtc: this.#config.rtc,
        pacer: { bitrateBps: this.#config.limits.pacerBitrateBps, maxQueuePackets: this.#config.limits.pacerMaxQueuePackets },
        metrics: this.#metrics,
      },
    });
    if (this.#closed || (opts.avatarOf && opts.avatarOf.closed)) {
      peer.close();
      throw new InvalidStateError('room or avatar owner closed');
    }
    this.#peers.set(peer.id, peer);
    this.#metrics.peers.inc();
    peer.on('producer', (producer) => this.#onProducer(peer, producer));
    peer.on('producerstate', (producer) => this.safeEmit('producerstate', peer, producer));
    peer.on('dataproducer', (dp) => this.#onDataProducer(peer, dp));
    peer.on('close', () => this.#onPeerClosed(peer));
    if (role === 'participant') {
      for (const other of this.participants) {
        if (other === peer) continue;
        for (const producer of other.producers) peer.consume(producer, other.id);
      }
      for (const avatar of this.#peers.values()) if (avatar.role === 'avatar') this.#routeAvatarVideo(avatar);
      this.#logger.info({ peerId: peer.id, displayName, participants: this.participants.length }, 'peer joined');
      this.safeEmit('peerjoined', peer);
    } else {
      const owner = opts.avatarOf!;
      for (const dp of owner.dataProducers) peer.consumeData(dp, owner.id);
      // A voice avatar listens to its owner's microphone.
      if (owner.avatar?.driver === 'voice') for (const p of owner.producers) if (p.kind === 'audio') this.#feedVoice(peer, p);
      this.#logger.info({ peerId: peer.id, ownerPeerId: owner.id }, 'avatar peer joined');
    }
    return peer;
  }

  /** A viewer chose (or cleared, with undefined) its personal view of `owner`'s avatar. */
  setViewKey(viewer: Peer, owner: Peer, key: string | undefined): void {
    if (key === undefined || key === 'default') viewer.viewKeys.delete(owner.id);
    else viewer.viewKeys.set(owner.id, key);
    for (const avatar of this.avatarPeersOf(owner)) this.#routeAvatarVideo(avatar);
  }

  #onProducer(owner: Peer, producer: Producer): void {
    producer.on('close', () => {
      this.safeEmit('producerclosed', owner, producer);
      if (owner.role === 'avatar' && !owner.closed) this.#routeAvatarVideo(owner);
    });
    if (owner.role === 'avatar') {
      this.#routeAvatarVideo(owner);
      if (producer.kind === 'video' && viewKeyOf(producer) === 'default') this.safeEmit('avatarlive', owner);
      return;
    }
    this.safeEmit('producerstate', owner, producer);
    // While a voice avatar republishes this microphone in sync with its video, viewers get that instead.
    const avatarAudio = producer.kind === 'audio' ? this.avatarPeersOf(owner).flatMap((a) => a.producers).find((p) => p.kind === 'audio' && !p.closed) : undefined;
    for (const other of this.participants) {
      if (other === owner || other.closed) continue;
      other.consume(avatarAudio ?? producer, owner.id, { keepOnProducerClose: avatarAudio !== undefined });
      other.renegotiate();
    }
    if (producer.kind === 'audio' && owner.avatar?.driver === 'voice') {
      for (const avatar of this.avatarPeersOf(owner)) {
        this.#feedVoice(avatar, producer);
        avatar.renegotiate();
      }
    }
  }

  /**
   * Give a voice avatar's worker its owner's microphone: the Opus packets on an "audio-tap" data
   * channel (one AudioTap per microphone, shared by the owner's avatar peers), or an audio track
   * (config workers.voiceInput).
   */
  #feedVoice(avatar: Peer, microphone: Producer): void {
    const owner = avatar.avatarOf!;
    if (this.#config.workers.voiceInput === 'track') {
      avatar.consume(microphone, owner.id);
      return;
    }
    let tap = this.#audioTaps.get(microphone.id);
    if (!tap || tap.closed) {
      const created = new AudioTap(microphone);
      created.on('close', () => {
        if (this.#audioTaps.get(microphone.id) === created) this.#audioTaps.delete(microphone.id);
      });
      this.#audioTaps.set(microphone.id, created);
      tap = created;
    }
    avatar.consumeData(tap, owner.id);
  }

  #onDataProducer(owner: Peer, dp: DataProducer): void {
    for (const avatar of this.avatarPeersOf(owner)) {
      avatar.consumeData(dp, owner.id);
      avatar.renegotiate();
    }
  }

  /**
   * Make every participant's consumer of `avatar`'s owner video point at the right rendering: its
   * personal view if the worker publishes it, else the shared default. Switching reuses the consumer.
   */
  #routeAvatarVideo(avatar: Peer): void {
    const owner = avatar.avatarOf;
    if (!owner || avatar.closed || this.#closed) return;
    this.#routeAvatarAudio(owner);
    const byKey = new Map<string, Producer>();
    for (const p of avatar.producers) if (p.kind === 'video' && !p.closed) byKey.set(viewKeyOf(p), p);
    if (byKey.size === 0) return;
    for (const viewer of this.participants) {
      if (viewer.closed) continue;
      const want = byKey.get(viewer.viewKeys.get(owner.id) ?? 'default') ?? byKey.get('default');
      if (want) this.#present(viewer, owner, want);
    }
  }

  /**
   * Voice avatars republish their owner's microphone delayed to match the rendered lips: viewers
   * (not the owner) hear that stream while it exists, and the owner's own microphone otherwise.
   */
  #routeAvatarAudio(owner: Peer): void {
    const republished = this.avatarPeersOf(owner).flatMap((a) => a.producers).find((p) => p.kind === 'audio' && !p.closed);
    const want = republished ?? owner.producers.find((p) => p.kind === 'audio' && !p.closed);
    if (!want) return;
    for (const viewer of this.participants) if (viewer !== owner && !viewer.closed) this.#present(viewer, owner, want);
  }

  /** Make `viewer`'s consumer of `owner`'s media of that kind forward `want` (switching, or a new consumer). */
  #present(viewer: Peer, owner: Peer, want: Producer): void {
    const current = viewer.consumers.find((c) => c.kind === want.kind && c.producerPeerId === owner.id && !c.closed);
    if (current) {
      // From now on it presents an avatar's media: a worker that dies is replaced, not the consumer.
      current.keepOnProducerClose = true;
      if (current.producer !== want) current.switchProducer(want);
      return;
    }
    viewer.consume(want, owner.id, { keepOnProducerClose: true, ...(want.kind === 'video' ? { syncGroup: avatarVideoSyncGroup(owner) } : {}) });
    viewer.renegotiate();
  }

  #onPeerClosed(peer: Peer): void {
    if (!this.#peers.delete(peer.id)) return;
    this.#metrics.peers.dec();
    if (peer.role === 'avatar') {
      this.#logger.info({ peerId: peer.id, ownerPeerId: peer.avatarOf?.id }, 'avatar peer left');
      // Its republished voice is gone: viewers hear the owner's microphone until a replacement publishes.
      const owner = peer.avatarOf;
      if (owner && !owner.closed && !this.#closed) this.#routeAvatarAudio(owner);
      this.safeEmit('avatarpeerleft', peer);
      return;
    }
    for (const avatar of this.avatarPeersOf(peer)) avatar.close();
    if (peer.avatar) for (const p of this.participants) p.closeConsumersOf(peer.id);
    this.#logger.info({ peerId: peer.id, participants: this.participants.length }, 'peer left');
    this.safeEmit('peerleft', peer);
    if (this.participants.length === 0) this.close();
  }

  /** Idempotent; closes every peer. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const peer of [...this.#peers.values()]) peer.close();
    for (const tap of [...this.#audioTaps.values()]) tap.close();
    this.#metrics.rooms.dec();
    this.#logger.info('room closed');
    this.safeEmit('close');
    this.removeAllListeners();
  }
}

/**
 * The receiver's lip-sync group of an avatar's video. A voice avatar's video goes with its audio (the
 * worker republishes the voice already aligned with the lips; receivers keep it so). A keypoint
 * avatar's video is rendered from motion captured ~100 ms before the frame reaches the SFU, which
 * sender reports cannot express: syncing it with the owner's microphone would only hold the video
 * back to the audio's jitter buffer without bringing the lips any closer to the voice, so it plays
 * on its own.
 */
function avatarVideoSyncGroup(owner: Peer): string {
  return owner.avatar?.driver === 'keypoint' ? `peer-${owner.id}-avatar-video` : `peer-${owner.id}`;
}
