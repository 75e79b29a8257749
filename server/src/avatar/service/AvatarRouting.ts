/**
 * How one avatar owner's media is composed from the room's generic primitives (server/src/rooms,
 * server/src/sfu). The avatar peers of an owner are the room's delegates of that owner (one at a
 * time, but a replacement may join before the previous one has left):
 * - they receive the owner's data channels (the keypoint avatar's motion) and, for a voice avatar, its
 *   microphone: as audio-tap messages (one AudioTap per microphone, shared by them) or as an audio
 *   track (config workers.voiceInput);
 * - their video is presented as the owner's, to everyone (the owner sees its own avatar), each viewer
 *   getting the rendering of its personal view (the view key, a presentation slot, that
 *   AvatarService gives the viewer) when the worker publishes it, else the default view;
 * - a voice avatar's republished, lip-aligned voice is presented as the owner's audio to the others
 *   while it exists, and the owner's own microphone otherwise;
 * - a voice avatar's audio drives its lips: shorter audio packets (config rtc.voiceAudioPtimeMs) from
 *   the owner (into the worker) and from the worker (its republished voice) take time out of
 *   mic-to-lips.
 * Emits "live" when an avatar peer publishes its default view. close() is idempotent; it also
 * closes with the room.
 */
import { EnhancedEventEmitter } from '../../util/EnhancedEventEmitter.ts';
import type { Config } from '../../config.ts';
import type { Logger } from '../../logger.ts';
import { DEFAULT_SLOT, slotOf, type Room, type RoomEvents } from '../../rooms/Room.ts';
import type { Peer } from '../../rooms/Peer.ts';
import type { Producer } from '../../sfu/Producer.ts';
import type { DataProducer } from '../../sfu/DataProducer.ts';
import { AudioTap } from '../../sfu/AudioTap.ts';
import { defaultSyncGroup } from '../../sfu/WebRtcTransport.ts';

export type AvatarDriver = 'keypoint' | 'voice';

export type AvatarRoutingEvents = {
  /** An avatar peer published its default view: the owner's avatar is on screen. */
  live: [avatarPeer: Peer];
  close: [];
};

export interface AvatarRoutingOptions {
  room: Room;
  owner: Peer;
  driver: AvatarDriver;
  config: Pick<Config, 'workers' | 'rtc'>;
  logger?: Logger;
}

export class AvatarRouting extends EnhancedEventEmitter<AvatarRoutingEvents> {
  readonly room: Room;
  readonly owner: Peer;
  readonly driver: AvatarDriver;
  readonly #voiceInput: Config['workers']['voiceInput'];
  readonly #voicePtimeMs: number;
  readonly #logger: Logger | undefined;
  /** The owner's microphones as data messages, by producer id (they close with the producer). */
  readonly #audioTaps = new Map<string, AudioTap>();
  readonly #cleanups: (() => void)[] = [];
  #closed = false;

  constructor(opts: AvatarRoutingOptions) {
    super();
    if (!opts?.room || !opts.owner) throw new TypeError('AvatarRouting needs a room and an owner');
    if (opts.driver !== 'keypoint' && opts.driver !== 'voice') throw new TypeError(`invalid avatar driver ${String(opts.driver)}`);
    this.room = opts.room;
    this.owner = opts.owner;
    this.driver = opts.driver;
    this.#voiceInput = opts.config.workers.voiceInput;
    this.#voicePtimeMs = opts.config.rtc.voiceAudioPtimeMs;
    this.#logger = opts.logger;
    if (this.driver === 'voice' && !this.owner.closed) this.owner.sendTransport.setAudioPtime(this.#voicePtimeMs);
    this.#listen('delegatejoined', (peer) => this.#onAvatarPeerJoined(peer));
    this.#listen('delegateleft', (peer) => this.#onAvatarPeerLeft(peer));
    this.#listen('producer', (peer, producer) => this.#onProducer(peer, producer));
    this.#listen('producerclosed', (peer) => this.#onProducerClosed(peer));
    this.#listen('dataproducer', (peer, dp) => this.#onDataProducer(peer, dp));
    this.#listen('close', () => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The owner's open avatar peers, in the order they joined. */
  get avatarPeers(): Peer[] {
    return this.room.delegatesOf(this.owner);
  }

  #listen<E extends keyof RoomEvents & string>(event: E, listener: (...args: RoomEvents[E]) => void): void {
    this.room.on(event, listener);
    this.#cleanups.push(() => this.room.off(event, listener));
  }

  #isAvatarPeer(peer: Peer): boolean {
    return peer.role === 'delegate' && peer.principal === this.owner;
  }

  #onAvatarPeerJoined(avatar: Peer): void {
    if (this.#closed || !this.#isAvatarPeer(avatar)) return;
    if (this.driver === 'voice') avatar.sendTransport.setAudioPtime(this.#voicePtimeMs);
    for (const dp of this.owner.dataProducers) avatar.consumeData(dp, this.owner.id);
    // A voice avatar listens to its owner's microphone.
    if (this.driver === 'voice') for (const p of this.owner.producers) if (p.kind === 'audio') this.#feedVoice(avatar, p);
    this.#logger?.info({ peerId: avatar.id, ownerPeerId: this.owner.id }, 'avatar peer joined');
  }

  #onAvatarPeerLeft(avatar: Peer): void {
    if (this.#closed || !this.#isAvatarPeer(avatar)) return;
    this.#logger?.info({ peerId: avatar.id, ownerPeerId: this.owner.id }, 'avatar peer left');
    // Its republished voice is gone: viewers hear the owner's microphone until a replacement publishes.
    if (!this.owner.closed && !this.room.closed) this.#presentAudio();
  }

  #onProducer(peer: Peer, producer: Producer): void {
    if (this.#closed) return;
    if (this.#isAvatarPeer(peer)) {
      this.#presentMedia();
      if (producer.kind === 'video' && slotOf(producer) === DEFAULT_SLOT) this.safeEmit('live', peer);
      return;
    }
    if (peer !== this.owner || producer.kind !== 'audio') return;
    // While a voice avatar republishes this microphone in sync with its video, viewers get that instead.
    this.#presentAudio();
    if (this.driver === 'voice') {
      for (const avatar of this.avatarPeers) {
        this.#feedVoice(avatar, producer);
        avatar.renegotiate();
      }
    }
  }

  #onProducerClosed(peer: Peer): void {
    if (this.#closed || !this.#isAvatarPeer(peer) || peer.closed) return;
    this.#presentMedia();
  }

  #onDataProducer(peer: Peer, dp: DataProducer): void {
    if (this.#closed || peer !== this.owner) return;
    for (const avatar of this.avatarPeers) {
      avatar.consumeData(dp, this.owner.id);
      avatar.renegotiate();
    }
  }

  /**
   * Give a voice avatar's worker its owner's microphone: the Opus packets on an "audio-tap" data
   * channel (one AudioTap per microphone, shared by the owner's avatar peers), or an audio track
   * (config workers.voiceInput).
   */
  #feedVoice(avatar: Peer, microphone: Producer): void {
    if (this.#voiceInput === 'track') {
      avatar.consume(microphone, this.owner.id);
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
    avatar.consumeData(tap, this.owner.id);
  }

  #presentMedia(): void {
    if (this.owner.closed || this.room.closed) return;
    this.#presentAudio();
    this.#presentVideo();
  }

  /**
   * Every participant's consumer of the owner's video points at the right rendering: its personal
   * view if the worker publishes it, else the shared default. Switching reuses the consumer.
   */
  #presentVideo(): void {
    const byKey = new Map<string, Producer>();
    // A rendering's view key ("default", or a personal view's) is its producer's presentation slot.
    for (const avatar of this.avatarPeers) for (const p of avatar.producers) if (p.kind === 'video' && !p.closed) byKey.set(slotOf(p), p);
    if (byKey.size === 0) return;
    this.room.present(this.owner, 'video', { sources: byKey, audience: 'everyone', syncGroup: this.#videoSyncGroup() });
  }

  /**
   * Voice avatars republish their owner's microphone delayed to match the rendered lips: viewers
   * (not the owner) hear that stream while it exists, and the owner's own microphone otherwise.
   */
  #presentAudio(): void {
    if (this.owner.closed || this.room.closed) return;
    const republished = this.avatarPeers.flatMap((a) => a.producers).find((p) => p.kind === 'audio' && !p.closed);
    const want = republished ?? this.owner.producers.find((p) => p.kind === 'audio' && !p.closed);
    if (!want) return;
    this.room.present(this.owner, 'audio', { sources: new Map([[DEFAULT_SLOT, want]]), audience: 'others' });
  }

  /**
   * The receiver's lip-sync group of an avatar's video. A voice avatar's video goes with its audio (the
   * worker republishes the voice already aligned with the lips; receivers keep it so). A keypoint
   * avatar's video is rendered from motion captured ~100 ms before the frame reaches the SFU, which
   * sender reports cannot express: syncing it with the owner's microphone would only hold the video
   * back to the audio's jitter buffer without bringing the lips any closer to the voice, so it plays
   * on its own.
   */
  #videoSyncGroup(): string {
    const ownGroup = defaultSyncGroup(this.owner.id);
    return this.driver === 'keypoint' ? `${ownGroup}-avatar-video` : ownGroup;
  }

  /** Idempotent: stops composing and presenting (viewers' consumers stay as they are) and closes the audio taps. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#cleanups.splice(0)) c();
    this.room.stopPresenting(this.owner, 'audio');
    this.room.stopPresenting(this.owner, 'video');
    for (const tap of [...this.#audioTaps.values()]) tap.close();
    this.#audioTaps.clear();
    this.safeEmit('close');
    this.removeAllListeners();
  }
}
