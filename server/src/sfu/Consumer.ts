/** Forwards one producer's RTP to one peer, over a sendonly transceiver of that peer's receive transport. */
import { randomUUID } from 'node:crypto';
import type { RTCRtpTransceiver, RtpPacket } from 'werift';
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import type { Producer } from './Producer.ts';
import type { Pacer } from './Pacer.ts';
import type { Metrics } from '../metrics.ts';
import { SenderClock } from './senderClock.ts';
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
  #producer: Producer;
  #unsubscribeProducer: () => void = () => undefined;
  /** Set when the source changed: the next packet re-bases sequence numbers and timestamps. */
  #sourceSwitched = false;
  /** Id of the peer that owns the producer. */
  readonly producerPeerId: string;
  readonly transceiver: RTCRtpTransceiver;
  readonly #pacer: Pacer;
  readonly #metrics: Metrics;
  readonly #cleanups: (() => void)[] = [];
  readonly #clock: SenderClock;
  #closed = false;
  packets = 0;
  /**
   * Survive the producer's close (frozen until a replacement is switched in): set on consumers that
   * present a peer's media produced by another peer, which may be replaced. Read by the owning Peer.
   */
  keepOnProducerClose = false;

  constructor(opts: { producer: Producer; producerPeerId: string; transceiver: RTCRtpTransceiver; pacer: Pacer; metrics: Metrics }) {
    super();
    this.#producer = opts.producer;
    this.kind = opts.producer.kind;
    this.producerPeerId = opts.producerPeerId;
    this.transceiver = opts.transceiver;
    this.#pacer = opts.pacer;
    this.#metrics = opts.metrics;
    const sender = this.transceiver.sender;
    this.#clock = new SenderClock(sender);
    this.#subscribe(opts.producer);
    this.#cleanups.push(() => this.#unsubscribeProducer());
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

  get producer(): Producer {
    return this.#producer;
  }

  #subscribe(producer: Producer): void {
    this.#unsubscribeProducer();
    const offRtp = producer.addRtpListener((packet) => this.#forward(packet));
    const onProducerClose = (): void => {
      if (producer === this.#producer) this.safeEmit('producerclose');
    };
    producer.on('close', onProducerClose);
    this.#unsubscribeProducer = () => {
      offRtp();
      producer.off('close', onProducerClose);
    };
    this.#producer = producer;
  }

  /**
   * Forward another producer of the same kind on the same transceiver (e.g. another slot of a
   * presented peer): no renegotiation, the receiver sees one continuous stream.
   */
  switchProducer(producer: Producer): void {
    if (this.#closed || producer === this.#producer) return;
    if (producer.kind !== this.kind) throw new TypeError(`cannot switch a ${this.kind} consumer to a ${producer.kind} producer`);
    this.#subscribe(producer);
    this.#sourceSwitched = true;
    this.requestKeyFrame('switch');
  }

  get mid(): string | null {
    return this.transceiver.mid;
  }

  info(): ConsumerInfo {
    const source = this.producer.appData.source;
    return { consumerId: this.id, producerId: this.producer.id, peerId: this.producerPeerId, kind: this.kind, mid: this.mid ?? '', ...(source ? { source } : {}) };
  }

  requestKeyFrame(reason: 'pli' | 'fir' | 'new-consumer' | 'client' | 'switch'): void {
    if (this.#closed || this.kind !== 'video') return;
    if (this.producer.requestKeyFrame()) this.#metrics.keyFrameRequests.inc({ reason });
  }

  #forward(packet: RtpPacket): void {
    if (this.#closed) return;
    // A copy per consumer: werift's sender rewrites ssrc/seq/pt in place and keeps the packet for NACKs.
    // Header extensions were negotiated with the producer's peer; the sender adds its own.
    const copy = packet.clone();
    copy.header.extensions = [];
    if (this.#sourceSwitched) {
      this.#sourceSwitched = false;
      // Continue the outgoing sequence numbers and timestamps right after the last ones sent: the new
      // source's first packet becomes last+1, one 30 fps frame later. (werift's own "discontinuity"
      // flag adds to the 32-bit timestamp offset with 16-bit arithmetic, making receivers stall.)
      const h = copy.header;
      const tsStep = this.kind === 'video' ? 3000 : 960;
      this.transceiver.sender.replaceRTP({ sequenceNumber: (h.sequenceNumber - 1) & 0xffff, timestamp: (h.timestamp - tsStep) >>> 0 }, false);
    }
    const bytes = copy.payload.length + 12;
    this.#pacer.enqueue(bytes, () => {
      if (this.#closed) return;
      this.packets++;
      this.#metrics.forwardedPackets.inc({ kind: this.kind });
      this.#metrics.forwardedBytes.inc({ kind: this.kind }, copy.payload.length);
      this.#clock.send(copy).catch(() => undefined);
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
