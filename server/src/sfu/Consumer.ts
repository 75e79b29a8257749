/** Forwards one producer's RTP to one peer, over a sendonly transceiver of that peer's receive transport. */
import { randomUUID } from 'node:crypto';
import type { RTCRtpTransceiver, RtpPacket } from 'werift';
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import type { Producer } from './Producer.ts';
import type { Pacer } from './Pacer.ts';
import type { Metrics } from '../metrics.ts';
import type { ConsumerInfo, MediaKind } from '../../../protocol/src/signaling.ts';

export type ConsumerEvents = {
  close: [];
  /** The producer went away; the owner should close this consumer and renegotiate. */
  producerclose: [];
};

/** FIR (RFC 5104) in a payload-specific feedback packet. */
const FIR_FMT = 4;

export class Consumer extends EnhancedEventEmitter<ConsumerEvents> {
  readonly id = randomUUID().replaceAll('-', '').slice(0, 16);
  readonly kind: MediaKind;
  readonly producer: Producer;
  /** Id of the peer that owns the producer. */
  readonly producerPeerId: string;
  readonly transceiver: RTCRtpTransceiver;
  readonly #pacer: Pacer;
  readonly #metrics: Metrics;
  readonly #cleanups: (() => void)[] = [];
  #closed = false;
  packets = 0;

  constructor(opts: { producer: Producer; producerPeerId: string; transceiver: RTCRtpTransceiver; pacer: Pacer; metrics: Metrics }) {
    super();
    this.producer = opts.producer;
    this.kind = opts.producer.kind;
    this.producerPeerId = opts.producerPeerId;
    this.transceiver = opts.transceiver;
    this.#pacer = opts.pacer;
    this.#metrics = opts.metrics;
    const sender = this.transceiver.sender;
    this.#cleanups.push(this.producer.addRtpListener((packet) => this.#forward(packet)));
    const onProducerClose = (): void => {
      this.safeEmit('producerclose');
    };
    this.producer.on('close', onProducerClose);
    this.#cleanups.push(() => {
      this.producer.off('close', onProducerClose);
    });
    const pli = sender.onPictureLossIndication.subscribe(() => this.requestKeyFrame('pli'));
    this.#cleanups.push(pli.unSubscribe);
    const rtcp = sender.onRtcp.subscribe((packet) => {
      const fb = packet as { type?: number; feedback?: { count?: number } };
      if (fb.type === 206 && fb.feedback?.count === FIR_FMT) this.requestKeyFrame('fir');
    });
    this.#cleanups.push(rtcp.unSubscribe);
    this.#metrics.consumers.inc({ kind: this.kind });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get mid(): string | null {
    return this.transceiver.mid;
  }

  info(): ConsumerInfo {
    return { consumerId: this.id, producerId: this.producer.id, peerId: this.producerPeerId, kind: this.kind, mid: this.mid ?? '' };
  }

  requestKeyFrame(reason: 'pli' | 'fir' | 'new-consumer' | 'client'): void {
    if (this.#closed || this.kind !== 'video') return;
    if (this.producer.requestKeyFrame()) this.#metrics.keyFrameRequests.inc({ reason });
  }

  #forward(packet: RtpPacket): void {
    if (this.#closed) return;
    // A copy per consumer: werift's sender rewrites ssrc/seq/pt in place and keeps the packet for NACKs.
    // Header extensions were negotiated with the producer's peer; the sender adds its own.
    const copy = packet.clone();
    copy.header.extensions = [];
    const bytes = copy.payload.length + 12;
    const sender = this.transceiver.sender;
    this.#pacer.enqueue(bytes, () => {
      if (this.#closed) return;
      this.packets++;
      this.#metrics.forwardedPackets.inc({ kind: this.kind });
      this.#metrics.forwardedBytes.inc({ kind: this.kind }, copy.payload.length);
      sender.sendRtp(copy).catch(() => undefined);
    });
  }

  /** Idempotent. The caller renegotiates the transport so the transceiver becomes inactive. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#cleanups.splice(0)) c();
    try {
      this.transceiver.setDirection('inactive');
    } catch {
      // transport already closed
    }
    this.#metrics.consumers.dec({ kind: this.kind });
    this.safeEmit('close');
    this.removeAllListeners();
  }
}
