/** A media source received from a peer on its send transport (one per incoming track). */
import { randomUUID } from 'node:crypto';
import type { MediaStreamTrack, RTCRtpTransceiver, RtpPacket } from 'werift';
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import { InvalidStateError } from '../errors.ts';
import type { MediaKind } from '../../../protocol/src/signaling.ts';

export type RtpListener = (packet: RtpPacket) => void;

export type ProducerEvents = {
  close: [];
  pause: [];
  resume: [];
};

/** Minimum interval between two PLIs sent upstream: many consumers asking at once cost one keyframe. */
const KEYFRAME_MIN_INTERVAL_MS = 300;

export class Producer extends EnhancedEventEmitter<ProducerEvents> {
  readonly id = randomUUID().replaceAll('-', '').slice(0, 16);
  readonly kind: MediaKind;
  /** The media section (mid) of the send transport this producer arrives on. */
  readonly mid: string | null;
  /**
   * Data attached by whoever composes the transport: `slot`, the opaque presentation slot the
   * publisher labelled this producer with (see Room.present); `source`, "screen" for a screen share.
   */
  readonly appData: { slot?: string; source?: 'screen' } = {};
  readonly #track: MediaStreamTrack;
  readonly #transceiver: RTCRtpTransceiver;
  readonly #listeners = new Set<RtpListener>();
  readonly #unsubscribe: () => void;
  #ssrc: number | undefined;
  #paused = false;
  #closed = false;
  #lastKeyFrameRequest = 0;
  #pendingKeyFrame: NodeJS.Timeout | undefined;
  packets = 0;
  bytes = 0;

  constructor(track: MediaStreamTrack, transceiver: RTCRtpTransceiver) {
    super();
    if (track.kind !== 'audio' && track.kind !== 'video') throw new TypeError(`unsupported track kind ${String(track.kind)}`);
    this.kind = track.kind;
    this.mid = transceiver.mid;
    this.#track = track;
    this.#transceiver = transceiver;
    const { unSubscribe } = track.onReceiveRtp.subscribe((packet) => this.#onRtp(packet));
    this.#unsubscribe = unSubscribe;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /**
   * The id the publisher negotiated for a one-byte/two-byte RTP header extension on this producer's
   * media section (e.g. RFC 6464 audio level), or undefined when it was not negotiated.
   */
  headerExtensionId(uri: string): number | undefined {
    const ext = (this.#transceiver as { headerExtensions?: { uri: string; id: number }[] }).headerExtensions?.find((e) => e.uri === uri);
    return ext?.id;
  }

  get ssrc(): number | undefined {
    return this.#ssrc ?? this.#track.ssrc;
  }

  /** Subscribe to this producer's RTP; returns the unsubscribe function. */
  addRtpListener(listener: RtpListener): () => void {
    if (this.#closed) throw new InvalidStateError('producer closed');
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  get listenerTotal(): number {
    return this.#listeners.size;
  }

  pause(): void {
    if (this.#closed) throw new InvalidStateError('producer closed');
    if (this.#paused) return;
    this.#paused = true;
    this.safeEmit('pause');
  }

  resume(): void {
    if (this.#closed) throw new InvalidStateError('producer closed');
    if (!this.#paused) return;
    this.#paused = false;
    this.safeEmit('resume');
    this.requestKeyFrame();
  }

  /** Ask the sender for a keyframe (PLI), coalescing bursts of requests. Returns true if one is sent or scheduled. */
  requestKeyFrame(): boolean {
    if (this.#closed || this.kind !== 'video') return false;
    if (this.#pendingKeyFrame) return true;
    const wait = this.#lastKeyFrameRequest + KEYFRAME_MIN_INTERVAL_MS - performance.now();
    if (wait > 0) {
      this.#pendingKeyFrame = setTimeout(() => {
        this.#pendingKeyFrame = undefined;
        this.#sendPli();
      }, wait);
      return true;
    }
    this.#sendPli();
    return true;
  }

  #sendPli(): void {
    const ssrc = this.ssrc;
    if (this.#closed || ssrc === undefined) return;
    this.#lastKeyFrameRequest = performance.now();
    this.#transceiver.receiver.sendRtcpPLI(ssrc).catch(() => undefined);
  }

  #onRtp(packet: RtpPacket): void {
    if (this.#closed) return;
    this.#ssrc = packet.header.ssrc;
    this.packets++;
    this.bytes += packet.payload.length;
    if (this.#paused) return;
    for (const l of this.#listeners) l(packet);
  }

  /** Idempotent. Consumers of this producer are told through the "close" event. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#pendingKeyFrame) clearTimeout(this.#pendingKeyFrame);
    this.#unsubscribe();
    this.#listeners.clear();
    this.safeEmit('close');
    this.removeAllListeners();
  }
}
