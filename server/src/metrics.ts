/** Prometheus metrics, one registry per server instance (tests run several servers per process). */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly rooms = new Gauge({ name: 'avatar_sfu_rooms', help: 'Open rooms', registers: [this.registry] });
  readonly peers = new Gauge({ name: 'avatar_sfu_peers', help: 'Joined peers', registers: [this.registry] });
  readonly transports = new Gauge({ name: 'avatar_sfu_transports', help: 'Open WebRTC transports', registers: [this.registry] });
  readonly producers = new Gauge({ name: 'avatar_sfu_producers', help: 'Open producers', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly consumers = new Gauge({ name: 'avatar_sfu_consumers', help: 'Open consumers', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly forwardedPackets = new Counter({ name: 'avatar_sfu_forwarded_packets_total', help: 'RTP packets forwarded to consumers', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly forwardedBytes = new Counter({ name: 'avatar_sfu_forwarded_bytes_total', help: 'RTP payload bytes forwarded to consumers', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly droppedPackets = new Counter({ name: 'avatar_sfu_dropped_packets_total', help: 'RTP packets dropped by a full pacer queue', registers: [this.registry] });
  readonly dataDropped = new Counter({ name: 'avatar_sfu_data_messages_dropped_total', help: 'Data channel messages dropped by the SFU (oversized, flooding)', labelNames: ['label', 'reason'] as const, registers: [this.registry] });
  readonly keyFrameRequests = new Counter({ name: 'avatar_sfu_keyframe_requests_total', help: 'PLI sent to producers', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly signalingMessages = new Counter({ name: 'avatar_sfu_signaling_messages_total', help: 'Signaling requests by event and outcome', labelNames: ['event', 'outcome'] as const, registers: [this.registry] });
  readonly signalingDisconnects = new Counter({ name: 'avatar_sfu_signaling_abuse_disconnects_total', help: 'Sockets disconnected for abuse', registers: [this.registry] });

  constructor({ defaultMetrics = true }: { defaultMetrics?: boolean } = {}) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
