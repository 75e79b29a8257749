/**
 * Polls getStats every 2 s and shows a good/fair/poor indicator on each remote tile (what this browser
 * receives from that peer) and for the user's own uplink (what the SFU reports receiving from us, in
 * remote-inbound-rtp). Thresholds: ConnectionQuality.ts.
 */
import type { CallClient } from '../../../call/src/CallClient.ts';
import { lossBetween, qualityOf, type Counters, type Quality, type QualitySample } from './ConnectionQuality.ts';

type Stat = Record<string, unknown>;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export class QualityMonitor {
  #timer: ReturnType<typeof setInterval> | undefined;
  #previous = new Map<string, Counters>();

  constructor(
    private readonly tiles: HTMLElement,
    private readonly uplink: HTMLElement,
  ) {}

  start(client: CallClient, periodMs = 2000): void {
    this.stop();
    this.#timer = setInterval(() => void this.poll(client).catch(() => undefined), periodMs);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#previous.clear();
    this.uplink.hidden = true;
  }

  async poll(client: CallClient): Promise<void> {
    const recv = client.receivePeerConnection;
    if (recv) {
      const report = await recv.getStats();
      const byMid = new Map(client.remoteTracks.map((t) => [t.mid, t.peerId]));
      const rtt = selectedRttMs(report);
      const perPeer = new Map<string, { received: number; lost: number; jitterMs: number; fps: number | undefined }>();
      report.forEach((s: Stat) => {
        if (s['type'] !== 'inbound-rtp') return;
        const peerId = byMid.get(String(s['mid']));
        if (!peerId) return;
        const e = perPeer.get(peerId) ?? { received: 0, lost: 0, jitterMs: 0, fps: undefined };
        e.received += num(s['packetsReceived']) ?? 0;
        e.lost += num(s['packetsLost']) ?? 0;
        e.jitterMs = Math.max(e.jitterMs, (num(s['jitter']) ?? 0) * 1000);
        if (s['kind'] === 'video' && num(s['framesPerSecond']) !== undefined) e.fps = num(s['framesPerSecond']);
        perPeer.set(peerId, e);
      });
      for (const [peerId, e] of perPeer) {
        const tile = this.tiles.querySelector<HTMLElement>(`.tile[data-peer-id="${CSS.escape(peerId)}"]`);
        if (!tile) continue;
        const counters = { packetsReceived: e.received, packetsLost: e.lost };
        const sample: QualitySample = {
          loss: lossBetween(this.#previous.get(peerId), counters),
          rttMs: rtt,
          jitterMs: e.jitterMs,
          // A camera that is off sends no frames on purpose.
          fps: tile.dataset['videoMuted'] === 'true' ? undefined : e.fps,
        };
        this.#previous.set(peerId, counters);
        show(indicator(tile), qualityOf(sample), sample);
      }
    }
    const send = client.sendPeerConnection;
    if (send) {
      const report = await send.getStats();
      let received = 0;
      let lost = 0;
      let jitterMs = 0;
      let rttMs: number | undefined;
      let fps: number | undefined;
      let any = false;
      report.forEach((s: Stat) => {
        if (s['type'] === 'remote-inbound-rtp') {
          any = true;
          lost += num(s['packetsLost']) ?? 0;
          jitterMs = Math.max(jitterMs, (num(s['jitter']) ?? 0) * 1000);
          const r = num(s['roundTripTime']);
          if (r !== undefined) rttMs = Math.max(rttMs ?? 0, r * 1000);
        }
        if (s['type'] === 'outbound-rtp') {
          received += num(s['packetsSent']) ?? 0;
          if (s['kind'] === 'video' && num(s['framesPerSecond']) !== undefined) fps = num(s['framesPerSecond']);
        }
      });
      const counters = { packetsReceived: received, packetsLost: lost };
      const sample: QualitySample = { loss: any ? lossBetween(this.#previous.get('uplink'), counters) : undefined, rttMs: rttMs ?? selectedRttMs(report), jitterMs: any ? jitterMs : undefined, fps };
      this.#previous.set('uplink', counters);
      this.uplink.hidden = false;
      show(this.uplink, qualityOf(sample), sample, 'Your connection');
    }
  }
}

/** The RTT of the ICE candidate pair in use (ms). */
function selectedRttMs(report: RTCStatsReport): number | undefined {
  let rtt: number | undefined;
  report.forEach((s: Stat) => {
    if (s['type'] === 'candidate-pair' && (s['nominated'] || s['selected']) && s['state'] === 'succeeded') {
      const r = num(s['currentRoundTripTime']);
      if (r !== undefined) rtt = r * 1000;
    }
  });
  return rtt;
}

function indicator(tile: HTMLElement): HTMLElement {
  let el = tile.querySelector<HTMLElement>(':scope > .conn');
  if (!el) {
    el = document.createElement('span');
    el.className = 'conn';
    el.setAttribute('role', 'img');
    tile.append(el);
  }
  return el;
}

function show(el: HTMLElement, q: Quality, s: QualitySample, prefix = 'Connection'): void {
  const parts = [
    s.loss !== undefined ? `loss ${(s.loss * 100).toFixed(1)} %` : '',
    s.rttMs !== undefined ? `RTT ${Math.round(s.rttMs)} ms` : '',
    s.jitterMs !== undefined ? `jitter ${Math.round(s.jitterMs)} ms` : '',
    s.fps !== undefined ? `${Math.round(s.fps)} fps` : '',
  ].filter(Boolean);
  const text = `${prefix}: ${q}${parts.length ? ` (${parts.join(', ')})` : ''}`;
  if (el.dataset['quality'] !== q) el.dataset['quality'] = q;
  if (el.title !== text) {
    el.title = text;
    el.setAttribute('aria-label', text);
  }
  if (el.textContent !== q) el.textContent = q;
}
