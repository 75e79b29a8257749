/**
 * One WebRTC connection between the SFU and a peer, in one direction (mediasoup's WebRtcTransport):
 * - "send": the peer publishes; its offer creates {@link Producer}s.
 * - "recv": the SFU offers one sendonly transceiver per {@link Consumer}; the peer answers.
 * close() is idempotent and closes its producers and consumers.
 */
import { randomUUID } from 'node:crypto';
import type { Socket as DgramSocket } from 'node:dgram';
import { MediaStream, RTCPeerConnection, type MediaStreamTrack, type PeerConfig, type RTCDataChannel } from 'werift';
import { EnhancedEventEmitter } from '../util/EnhancedEventEmitter.ts';
import { InvalidStateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Config } from '../config.ts';
import type { ConsumerInfo, DataConsumerInfo, SessionDescription } from '../../../protocol/src/signaling.ts';
import { Producer } from './Producer.ts';
import { Consumer } from './Consumer.ts';
import { withAudioPtime, withBundleOnlyPorts, withSessionIceLite, withoutRejectedInBundle } from './sdp.ts';
import { Pacer } from './Pacer.ts';
import { DataProducer, type DataProducerLimits, type DataSource } from './DataProducer.ts';
import { DataConsumer } from './DataConsumer.ts';
import { sfuCodecs, sfuHeaderExtensions } from './codecs.ts';

export type TransportDirection = 'send' | 'recv';

export type WebRtcTransportEvents = {
  close: [];
  producer: [Producer];
  dataproducer: [DataProducer];
  connectionstatechange: [string];
  /** ICE or DTLS failed (werift's connection state "failed"); the transport carries nothing more. */
  connectionfailed: [];
  /** Connected once, then nothing (RTP, RTCP, DTLS/SCTP, STUN consent) arrived for rtc.iceConsentTimeoutMs. */
  icetimeout: [silentMs: number];
  /** Connected, then silent for rtc.iceInactiveMs (inactive), or receiving again (active). */
  activity: [active: boolean];
};

export interface WebRtcTransportOptions {
  direction: TransportDirection;
  rtc: Config['rtc'];
  pacer: { bitrateBps: number; maxQueuePackets: number };
  data?: DataProducerLimits;
  logger: Logger;
  metrics: Metrics;
}

/** Sends an offer to the remote side and resolves with its answer. */
export type OfferSignal = (offer: SessionDescription, consumers: ConsumerInfo[], dataConsumers: DataConsumerInfo[]) => Promise<SessionDescription>;

/** The sync group (msid) of a presented peer's media unless its consumers are given another. */
export function defaultSyncGroup(peerId: string): string {
  return `peer-${peerId}`;
}

export function peerConfig(rtc: Config['rtc']): Partial<PeerConfig> {
  const config: Partial<PeerConfig> = {
    codecs: sfuCodecs(),
    headerExtensions: sfuHeaderExtensions(),
    iceUseIpv6: false,
    // One ICE/DTLS transport per connection. (With "balanced", werift gathers a transport per media
    // section and leaks the UDP sockets of the ones that bundling drops.)
    bundlePolicy: 'max-bundle',
    // ICE-lite, as mediasoup: the SFU has host candidates only and waits for the peer (always the
    // controlling agent then) to nominate a pair, instead of checking the peer's candidates itself. As a
    // full agent werift checks the pairs it has when the description arrives; with a peer whose own
    // candidates it cannot reach (Firefox's mDNS names) and none of its checks in yet, that was no pair,
    // and ICE failed at once (always when answering a send offer, racily on a recv transport).
    iceLite: true,
  };
  if (rtc.listenIp) config.iceInterfaceAddresses = { udp4: rtc.listenIp };
  if (rtc.announcedIp) config.iceAdditionalHostAddresses = [rtc.announcedIp];
  if (rtc.portRange) config.icePortRange = rtc.portRange;
  return config;
}

/** What the liveness check reads of a werift ICE socket (its StunProtocol): the events of what it receives. */
interface LivenessProtocol {
  onRequestReceived?: { subscribe(f: () => void): unknown };
  onDataReceived?: { subscribe(f: () => void): unknown };
}

export class WebRtcTransport extends EnhancedEventEmitter<WebRtcTransportEvents> {
  readonly id = randomUUID().replaceAll('-', '').slice(0, 16);
  readonly direction: TransportDirection;
  readonly #pc: RTCPeerConnection;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #pacer: Pacer;
  readonly #producers = new Map<string, Producer>();
  readonly #consumers = new Map<string, Consumer>();
  readonly #dataProducers = new Map<string, DataProducer>();
  readonly #dataConsumers = new Map<string, DataConsumer>();
  readonly #dataLimits: DataProducerLimits;
  readonly #socketBufferBytes: number;
  #audioPtimeMs: number | undefined;
  #slotsByMid: Record<string, string> = {};
  #sourcesByMid: Record<string, 'screen'> = {};
  #closed = false;
  #negotiating: Promise<void> | undefined;
  #negotiationPending = false;
  readonly #consentTimeoutMs: number;
  readonly #inactiveMs: number;
  #inactive = false;
  #lastReceivedAt = 0;
  #livenessTimer: NodeJS.Timeout | undefined;
  readonly #watchedProtocols = new WeakSet<object>();
  #failed = false;

  private constructor(opts: WebRtcTransportOptions) {
    super();
    this.direction = opts.direction;
    this.#logger = opts.logger.child({ transportId: this.id, direction: opts.direction });
    this.#metrics = opts.metrics;
    this.#pc = new RTCPeerConnection(peerConfig(opts.rtc));
    this.#pacer = new Pacer({ ...opts.pacer, onDrop: (n) => this.#metrics.droppedPackets.inc(n) });
    this.#pc.connectionStateChange.subscribe((state) => {
      this.#logger.debug({ state }, 'connection state');
      this.safeEmit('connectionstatechange', state);
      if (state === 'connected') {
        for (const c of this.#consumers.values()) c.requestKeyFrame('new-consumer');
        this.#startLiveness();
      }
      if (state === 'failed') this.#checkFailed();
    });
    this.#pc.iceConnectionStateChange.subscribe((state) => {
      if (state === 'failed') this.#checkFailed();
    });
    this.#dataLimits = opts.data ?? { maxMessageBytes: 16 * 1024, maxMessagesPerSecond: 200 };
    this.#socketBufferBytes = opts.rtc.socketBufferBytes;
    this.#consentTimeoutMs = opts.rtc.iceConsentTimeoutMs;
    this.#inactiveMs = opts.rtc.iceInactiveMs;
    if (opts.direction === 'send') {
      this.#pc.onTrack.subscribe((track) => this.#onTrack(track));
      this.#pc.onDataChannel.subscribe((channel) => this.#onDataChannel(channel));
    }
    this.#metrics.transports.inc();
  }

  static async create(opts: WebRtcTransportOptions): Promise<WebRtcTransport> {
    if (opts.direction !== 'send' && opts.direction !== 'recv') throw new TypeError(`invalid direction ${String(opts.direction)}`);
    return new WebRtcTransport(opts);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get connectionState(): string {
    return this.#pc.connectionState;
  }

  get producers(): ReadonlyMap<string, Producer> {
    return this.#producers;
  }

  get consumers(): ReadonlyMap<string, Consumer> {
    return this.#consumers;
  }

  get dataProducers(): ReadonlyMap<string, DataProducer> {
    return this.#dataProducers;
  }

  get dataConsumers(): ReadonlyMap<string, DataConsumer> {
    return this.#dataConsumers;
  }

  get pacerQueue(): number {
    return this.#pacer.queued;
  }

  /** Send transport: the audio packet time (a=ptime) every answer asks of the peer; undefined = the peer's default. */
  get audioPtimeMs(): number | undefined {
    return this.#audioPtimeMs;
  }

  /**
   * Set by whoever composes the transport: shorter audio packets from the peer take their duration
   * out of the latency of whatever consumes the audio, at more packets per second. Applies from the
   * next offer on.
   */
  setAudioPtime(ms: number | undefined): void {
    this.#assertOpen();
    if (ms !== undefined && (!Number.isInteger(ms) || ms < 1 || ms > 120)) throw new TypeError(`audio ptime must be an integer from 1 to 120 ms, got ${String(ms)}`);
    this.#audioPtimeMs = ms;
  }

  /**
   * Send transport: apply the peer's offer, return the answer. New tracks become producers; those of
   * the media sections (mids) in `slotsByMid` carry that opaque slot key (Producer.appData.slot),
   * the video sections in `sourcesByMid` that source (Producer.appData.source, e.g. "screen").
   */
  async processOffer(offer: SessionDescription, slotsByMid: Record<string, string> = {}, sourcesByMid: Record<string, 'screen'> = {}): Promise<SessionDescription> {
    this.#assertOpen();
    if (this.direction !== 'send') throw new InvalidStateError('processOffer() on a recv transport');
    if (offer.type !== 'offer') throw new TypeError('expected an offer');
    this.#slotsByMid = slotsByMid;
    this.#sourcesByMid = sourcesByMid;
    await this.#pc.setRemoteDescription({ type: 'offer', sdp: withBundleOnlyPorts(offer.sdp) });
    const answer = await this.#pc.createAnswer();
    await this.#pc.setLocalDescription(answer);
    await this.#gatheringComplete();
    this.#growSocketBuffers();
    const local = this.#pc.localDescription;
    if (!local) throw new InvalidStateError('no local description');
    const sdp = withSessionIceLite(local.sdp);
    return { type: 'answer', sdp: this.#audioPtimeMs ? withAudioPtime(sdp, this.#audioPtimeMs) : sdp };
  }

  /**
   * Recv transport: start forwarding `producer` to this peer. Takes effect after {@link negotiate}.
   * `syncGroup` is the MediaStream id (msid) the receiver sees: tracks in one group are lip-synced
   * from our sender reports. Default: one group per presented peer.
   */
  consume(producer: Producer, producerPeerId: string, syncGroup = defaultSyncGroup(producerPeerId)): Consumer {
    this.#assertOpen();
    if (this.direction !== 'recv') throw new InvalidStateError('consume() on a send transport');
    if (producer.closed) throw new InvalidStateError('producer closed');
    const transceiver = this.#pc.addTransceiver(producer.kind, { direction: 'sendonly', streams: [new MediaStream({ id: syncGroup })] });
    const consumer = new Consumer({ producer, producerPeerId, transceiver, pacer: this.#pacer, metrics: this.#metrics });
    this.#consumers.set(consumer.id, consumer);
    consumer.on('close', () => this.#consumers.delete(consumer.id));
    return consumer;
  }

  /**
   * Recv transport: forward a data producer to this peer on a new data channel with the same label and
   * reliability. Needs a negotiation when it is the transport's first data channel.
   */
  consumeData(dataProducer: DataSource, producerPeerId: string): DataConsumer {
    this.#assertOpen();
    if (this.direction !== 'recv') throw new InvalidStateError('consumeData() on a send transport');
    if (dataProducer.closed) throw new InvalidStateError('data producer closed');
    const channel = this.#pc.createDataChannel(dataProducer.label, {
      ordered: dataProducer.ordered,
      ...(dataProducer.maxRetransmits !== null ? { maxRetransmits: dataProducer.maxRetransmits } : {}),
    });
    const dataConsumer = new DataConsumer({ dataProducer, producerPeerId, channel });
    this.#dataConsumers.set(dataConsumer.id, dataConsumer);
    dataConsumer.on('close', () => this.#dataConsumers.delete(dataConsumer.id));
    return dataConsumer;
  }

  /**
   * Recv transport: (re)negotiate with the peer. Calls are serialized and coalesced: while one offer is
   * in flight, any number of further calls cause exactly one more round.
   */
  negotiate(signal: OfferSignal): Promise<void> {
    this.#assertOpen();
    if (this.#negotiating) {
      this.#negotiationPending = true;
      return this.#negotiating;
    }
    const run = async (): Promise<void> => {
      do {
        this.#negotiationPending = false;
        if (this.#closed) return;
        const offer = await this.#pc.createOffer();
        await this.#pc.setLocalDescription(offer);
        await this.#gatheringComplete();
        this.#growSocketBuffers();
        const local = this.#pc.localDescription;
        if (!local) throw new InvalidStateError('no local description');
        const consumers = [...this.#consumers.values()].filter((c) => !c.closed).map((c) => c.info());
        const dataConsumers = [...this.#dataConsumers.values()].filter((c) => !c.closed).map((c) => ({ dataConsumerId: c.id, peerId: c.producerPeerId, label: c.label }));
        const answer = await signal({ type: 'offer', sdp: withoutRejectedInBundle(withSessionIceLite(local.sdp)) }, consumers, dataConsumers);
        if (this.#closed) return;
        if (answer.type !== 'answer') throw new TypeError('expected an answer');
        await this.#pc.setRemoteDescription(answer);
        for (const c of this.#consumers.values()) c.requestKeyFrame('new-consumer');
      } while (this.#negotiationPending);
    };
    this.#negotiating = run().finally(() => {
      this.#negotiating = undefined;
    });
    return this.#negotiating;
  }

  /**
   * werift's ICE sockets keep the kernel's default receive buffer (~208 KiB): when the event loop
   * stalls (a busy host), bursts overflow it and packets lost before the SFU cannot be NACK-repaired.
   * Measured: 3,489 kernel drops per 15 s window at 5 participants on a loaded host → 0 with 4 MiB.
   * The kernel caps the size at net.core.rmem_max / wmem_max.
   */
  #growSocketBuffers(): void {
    const bytes = this.#socketBufferBytes;
    if (bytes <= 0) return;
    for (const ice of this.#pc.iceTransports) {
      const protocols = (ice.connection as unknown as { protocols?: { transport?: { socket?: DgramSocket } }[] }).protocols ?? [];
      for (const p of protocols) {
        const socket = p.transport?.socket;
        if (!socket) continue;
        try {
          if (socket.getRecvBufferSize() < bytes) socket.setRecvBufferSize(bytes);
          if (socket.getSendBufferSize() < bytes) socket.setSendBufferSize(bytes);
        } catch {
          // not bound yet, or closed
        }
      }
    }
  }

  /**
   * werift also reports connectionState "failed" when a renegotiation's connect() rejects on a live
   * transport (media keeps flowing): only an ICE transport or a DTLS transport that really failed counts.
   */
  #checkFailed(): void {
    if (this.#failed || this.#closed) return;
    const ice = this.#pc.iceTransports.some((t) => t.state === 'failed') || this.#pc.iceConnectionState === 'failed';
    const dtls = this.#pc.dtlsTransports.some((t) => t.state === 'failed');
    if (!ice && !dtls) {
      this.#logger.debug({ ice: this.#pc.iceConnectionState }, 'connection state "failed" with live ICE and DTLS: ignored');
      return;
    }
    this.#failed = true;
    this.#logger.warn({ ice, dtls }, 'ICE/DTLS failed');
    this.safeEmit('connectionfailed');
  }

  /** When anything last arrived on the transport's sockets (ms since the epoch; 0: never watched). */
  get lastReceivedAt(): number {
    return this.#lastReceivedAt;
  }

  /** Count every datagram werift's ICE sockets receive: STUN requests (consent) and everything else. */
  #watchReceive(): void {
    for (const ice of this.#pc.iceTransports) {
      const protocols = (ice.connection as unknown as { protocols?: LivenessProtocol[] }).protocols ?? [];
      for (const p of protocols) {
        if (this.#watchedProtocols.has(p)) continue;
        this.#watchedProtocols.add(p);
        const seen = (): void => {
          this.#lastReceivedAt = Date.now();
        };
        p.onRequestReceived?.subscribe(seen);
        p.onDataReceived?.subscribe(seen);
      }
    }
  }

  /** From the first "connected" on: a transport silent for iceConsentTimeoutMs emits "icetimeout" (once). */
  #startLiveness(): void {
    this.#watchReceive();
    if ((this.#consentTimeoutMs <= 0 && this.#inactiveMs <= 0) || this.#livenessTimer || this.#closed) return;
    this.#lastReceivedAt = Date.now();
    const bounds = [this.#consentTimeoutMs, this.#inactiveMs].filter((b) => b > 0);
    const every = Math.max(50, Math.min(500, Math.floor(Math.min(...bounds) / 4)));
    this.#livenessTimer = setInterval(() => {
      this.#watchReceive();
      const silentMs = Date.now() - this.#lastReceivedAt;
      if (this.#closed) return;
      if (this.#inactiveMs > 0) {
        const inactive = silentMs >= this.#inactiveMs;
        if (inactive !== this.#inactive) {
          this.#inactive = inactive;
          this.#logger.info({ silentMs, inactive }, inactive ? 'transport inactive' : 'transport active again');
          this.safeEmit('activity', !inactive);
        }
      }
      if (this.#consentTimeoutMs <= 0 || silentMs < this.#consentTimeoutMs) return;
      clearInterval(this.#livenessTimer);
      this.#logger.warn({ silentMs }, 'nothing received within the ICE consent timeout');
      this.safeEmit('icetimeout', silentMs);
    }, every);
    this.#livenessTimer.unref?.();
  }

  /** Signaling is not trickled: descriptions carry all candidates (host candidates only, so this is quick). */
  async #gatheringComplete(timeoutMs = 5000): Promise<void> {
    if (this.#pc.iceGatheringState === 'complete') return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const sub = this.#pc.iceGatheringStateChange.subscribe((state) => {
        if (state === 'complete') done();
      });
      function done(): void {
        clearTimeout(timer);
        sub.unSubscribe();
        resolve();
      }
    });
  }

  #onTrack(track: MediaStreamTrack): void {
    if (this.#closed) return;
    const transceiver = this.#pc.getTransceivers().find((t) => t.receiver.tracks.includes(track));
    if (!transceiver) return;
    // A re-offer repeats existing tracks: one producer per media section.
    for (const p of this.#producers.values()) if (p.mid === transceiver.mid) return;
    const producer = new Producer(track, transceiver);
    const slot = transceiver.mid ? this.#slotsByMid[transceiver.mid] : undefined;
    if (slot) producer.appData.slot = slot;
    const source = transceiver.mid ? this.#sourcesByMid[transceiver.mid] : undefined;
    if (source === 'screen' && producer.kind === 'video') producer.appData.source = source;
    this.#producers.set(producer.id, producer);
    this.#metrics.producers.inc({ kind: producer.kind });
    producer.on('close', () => {
      this.#producers.delete(producer.id);
      this.#metrics.producers.dec({ kind: producer.kind });
    });
    this.#logger.info({ producerId: producer.id, kind: producer.kind, mid: transceiver.mid }, 'producer created');
    this.safeEmit('producer', producer);
  }

  #onDataChannel(channel: RTCDataChannel): void {
    if (this.#closed) return;
    const dataProducer = new DataProducer(channel, this.#dataLimits);
    dataProducer.on('drop', (reason) => this.#metrics.dataDropped.inc({ label: dataProducer.label.slice(0, 32), reason }));
    this.#dataProducers.set(dataProducer.id, dataProducer);
    dataProducer.on('close', () => this.#dataProducers.delete(dataProducer.id));
    this.#logger.info({ dataProducerId: dataProducer.id, label: dataProducer.label }, 'data producer created');
    this.safeEmit('dataproducer', dataProducer);
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError('transport closed');
  }

  /** Idempotent; closes producers and consumers first. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#livenessTimer);
    this.#livenessTimer = undefined;
    for (const c of [...this.#consumers.values()]) c.close();
    for (const c of [...this.#dataConsumers.values()]) c.close();
    for (const p of [...this.#producers.values()]) p.close();
    for (const p of [...this.#dataProducers.values()]) p.close();
    this.#pacer.close();
    this.#pc.close().catch((err: unknown) => this.#logger.debug({ err }, 'peer connection close failed'));
    this.#metrics.transports.dec();
    this.safeEmit('close');
    this.removeAllListeners();
  }
}
