/**
 * A werift RTCPeerConnection pair standing in for a browser in tests: a send connection that publishes
 * an audio and a video transceiver, and a receive connection that answers the server's offers.
 * Loopback only (127.0.0.1), like test/helpers/server.ts.
 */
import { RTCPeerConnection, RtpHeader, RtpPacket, type MediaStreamTrack, type RTCRtpTransceiver } from 'werift';
import { sfuCodecs, sfuHeaderExtensions } from '../../server/src/sfu/codecs.ts';
import type { SessionDescription } from '../../protocol/src/signaling.ts';

function loopbackPc(): RTCPeerConnection {
  return new RTCPeerConnection({
    codecs: sfuCodecs(),
    headerExtensions: sfuHeaderExtensions(),
    iceUseIpv6: false,
    bundlePolicy: 'max-bundle',
    iceInterfaceAddresses: { udp4: '127.0.0.1' },
    iceAdditionalHostAddresses: ['127.0.0.1'],
  });
}

async function gathered(pc: RTCPeerConnection, timeoutMs = 5000): Promise<void> {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    const sub = pc.iceGatheringStateChange.subscribe((s) => {
      if (s === 'complete') done();
    });
    function done(): void {
      clearTimeout(timer);
      sub.unSubscribe();
      resolve();
    }
  });
}

function waitConnected(pc: RTCPeerConnection, what: string, timeoutMs: number): Promise<void> {
  if (pc.connectionState === 'connected') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unSubscribe();
      reject(new Error(`${what} not connected after ${timeoutMs} ms (state ${pc.connectionState})`));
    }, timeoutMs);
    const sub = pc.connectionStateChange.subscribe((s) => {
      if (s === 'connected') {
        clearTimeout(timer);
        sub.unSubscribe();
        resolve();
      } else if (s === 'failed' || s === 'closed') {
        clearTimeout(timer);
        sub.unSubscribe();
        reject(new Error(`${what} ${s}`));
      }
    });
  });
}

export class WeriftBrowser {
  readonly sendPc = loopbackPc();
  readonly recvPc = loopbackPc();
  readonly audio: RTCRtpTransceiver;
  readonly video: RTCRtpTransceiver;
  /** Tracks received on the receive connection, by mid. */
  readonly received = new Map<string, MediaStreamTrack>();
  /** RTP packets received per mid. */
  readonly receivedPackets = new Map<string, number>();
  offersAnswered = 0;

  constructor() {
    this.audio = this.sendPc.addTransceiver('audio', { direction: 'sendonly' });
    this.video = this.sendPc.addTransceiver('video', { direction: 'sendonly' });
    this.recvPc.onTrack.subscribe((track) => {
      const transceiver = this.recvPc.getTransceivers().find((t) => t.receiver.tracks.includes(track));
      const mid = transceiver?.mid ?? '?';
      if (this.received.has(mid)) return;
      this.received.set(mid, track);
      track.onReceiveRtp.subscribe(() => this.receivedPackets.set(mid, (this.receivedPackets.get(mid) ?? 0) + 1));
    });
  }

  /** Offer for the server's send transport (audio + video, sendonly, all candidates included). */
  async publishOffer(): Promise<SessionDescription> {
    await this.sendPc.setLocalDescription(await this.sendPc.createOffer());
    await gathered(this.sendPc);
    return { type: 'offer', sdp: this.sendPc.localDescription!.sdp };
  }

  async applyPublishAnswer(answer: SessionDescription): Promise<void> {
    await this.sendPc.setRemoteDescription(answer);
  }

  /** Answer an offer of the server's receive transport. */
  async answer(offer: SessionDescription): Promise<SessionDescription> {
    // werift 0.24 as the answerer recycles an inactive transceiver for a new remote m-section and renames
    // its mid, so the next offer (which still lists the old, inactive mid) fails with "Transceiver with
    // mid=… not found". Browsers keep the m-section; so do we.
    for (const t of this.recvPc.getTransceivers()) if (t.currentDirection === 'inactive') t.usedForSender = true;
    await this.recvPc.setRemoteDescription(offer);
    await this.recvPc.setLocalDescription(await this.recvPc.createAnswer());
    await gathered(this.recvPc);
    this.offersAnswered++;
    return { type: 'answer', sdp: this.recvPc.localDescription!.sdp };
  }

  waitSendConnected(timeoutMs = 10_000): Promise<void> {
    return waitConnected(this.sendPc, 'send connection', timeoutMs);
  }

  waitRecvConnected(timeoutMs = 10_000): Promise<void> {
    return waitConnected(this.recvPc, 'receive connection', timeoutMs);
  }

  /** Send one dummy RTP packet on the audio or video transceiver (the SFU forwards payloads opaquely). */
  sendRtp(kind: 'audio' | 'video', seq: number, payloadBytes = 200): void {
    const header = new RtpHeader({ sequenceNumber: seq & 0xffff, timestamp: (seq * 960) >>> 0, marker: true });
    const payload = Buffer.alloc(payloadBytes, seq & 0xff);
    const t = kind === 'audio' ? this.audio : this.video;
    t.sender.sendRtp(new RtpPacket(header, payload)).catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.sendPc.close(), this.recvPc.close()]);
  }
}
