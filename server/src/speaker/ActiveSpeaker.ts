/**
 * The active speaker of a room (an application feature composed on the media plane): the
 * participant whose microphone an {@link AudioLevelObserver} hears loudest. Someone starts speaking
 * while the current speaker is silent: they take over at the next report. While the current speaker
 * still speaks, another must be the loudest in `holdReports` reports in a row to take over (no
 * flapping between two people talking at once). In silence the last speaker stays highlighted; a
 * speaker who mutes the microphone (its producer paused) or leaves is no longer the speaker (null).
 * Avatar owners publish their real microphone too, so they are speakers like everyone else;
 * delegates' (avatar workers') audio is not watched: it is the owner's voice again.
 */
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import { AudioLevelObserver, type AudioLevelObserverOptions, type AudioVolume } from '../sfu/AudioLevelObserver.ts';
import type { Room } from '../rooms/Room.ts';
import type { Peer } from '../rooms/Peer.ts';
import type { Producer } from '../sfu/Producer.ts';

export type ActiveSpeakerEvents = {
  /** The active speaker changed (null: none, e.g. the speaker left). */
  change: [peerId: string | null];
};

export interface ActiveSpeakerOptions extends Omit<AudioLevelObserverOptions, 'maxEntries'> {
  /** Reports in a row another speaker must be loudest in to take over from one still speaking (default 2). */
  holdReports?: number;
}

export class ActiveSpeaker extends EnhancedEventEmitter<ActiveSpeakerEvents> {
  readonly #observer: AudioLevelObserver;
  readonly #owners = new Map<Producer, Peer>();
  readonly #holdReports: number;
  #peerId: string | null = null;
  #challenger: { peerId: string; reports: number } | undefined;
  #closed = false;

  private constructor(room: Room, observer: AudioLevelObserver, holdReports: number) {
    super();
    this.#observer = observer;
    this.#holdReports = holdReports;
    for (const peer of room.participants) for (const p of peer.producers) this.#watch(peer, p);
    room.on('producer', (peer, producer) => this.#watch(peer, producer));
    room.on('peerleft', (peer) => {
      if (peer.id === this.#peerId) this.#set(null);
    });
    room.on('close', () => this.close());
    observer.on('volumes', (volumes) => this.#onVolumes(volumes));
  }

  static async create(room: Room, opts: ActiveSpeakerOptions = {}): Promise<ActiveSpeaker> {
    const holdReports = opts.holdReports ?? 2;
    if (!Number.isInteger(holdReports) || holdReports < 1) throw new TypeError(`holdReports must be an integer >= 1, got ${String(holdReports)}`);
    const observer = await AudioLevelObserver.create({ ...opts, maxEntries: 4 });
    return new ActiveSpeaker(room, observer, holdReports);
  }

  /** The current active speaker's peer id, or null. */
  get peerId(): string | null {
    return this.#peerId;
  }

  #watch(peer: Peer, producer: Producer): void {
    if (this.#closed || peer.role !== 'participant' || producer.kind !== 'audio' || producer.closed) return;
    this.#owners.set(producer, peer);
    producer.on('close', () => this.#owners.delete(producer));
    producer.on('pause', () => {
      if (!this.#closed && peer.id === this.#peerId) this.#set(null);
    });
    this.#observer.addProducer(producer);
  }

  #onVolumes(volumes: AudioVolume[]): void {
    const speakers = volumes.map((v) => this.#owners.get(v.producer)).filter((p): p is Peer => p !== undefined && !p.closed);
    const loudest = speakers[0];
    if (!loudest || loudest.id === this.#peerId) {
      this.#challenger = undefined;
      return;
    }
    const currentSpeaks = speakers.some((p) => p.id === this.#peerId);
    if (!currentSpeaks) return this.#set(loudest.id);
    this.#challenger = this.#challenger?.peerId === loudest.id ? { peerId: loudest.id, reports: this.#challenger.reports + 1 } : { peerId: loudest.id, reports: 1 };
    if (this.#challenger.reports >= this.#holdReports) this.#set(loudest.id);
  }

  #set(peerId: string | null): void {
    this.#challenger = undefined;
    if (peerId === this.#peerId) return;
    this.#peerId = peerId;
    this.safeEmit('change', peerId);
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#observer.close();
    this.#owners.clear();
    this.removeAllListeners();
  }
}
