/** Uplink of a Chromium page in the keypoint bench: its send RTCPeerConnection's stats and the kbit/s they make. */
import type { CallPage } from '../../test/helpers/callPage.ts';

export interface SendStats {
  now: number;
  timeOrigin: number;
  transportBytes: number;
  transportPackets: number;
  srtpCipher: string;
  dtlsCipher: string;
  audio: { bytes: number; header: number; packets: number };
  video: { bytes: number; header: number; packets: number; frames: number; width: number; height: number; encodeTime: number; target: number; limitation: string };
  dc: { bytes: number; messages: number };
  tracker: { fps: number; cameraFps: number; detectMsP50: number; detectMsP95: number; faceFoundRatio: number; motionFramesEmitted: number; framesDropped: number; backend: string } | null;
}

export function sendStats(page: CallPage): Promise<SendStats> {
  return page.page.evaluate(async () => {
    const out = {
      now: performance.now(),
      timeOrigin: performance.timeOrigin,
      transportBytes: 0,
      transportPackets: 0,
      srtpCipher: '',
      dtlsCipher: '',
      audio: { bytes: 0, header: 0, packets: 0 },
      video: { bytes: 0, header: 0, packets: 0, frames: 0, width: 0, height: 0, encodeTime: 0, target: 0, limitation: '' },
      dc: { bytes: 0, messages: 0 },
      tracker: null as null | { fps: number; cameraFps: number; detectMsP50: number; detectMsP95: number; faceFoundRatio: number; motionFramesEmitted: number; framesDropped: number; backend: string },
    };
    const pc = window.avatarSfu.client()?.sendPeerConnection;
    // (no named helper functions in here: tsx would wrap them in __name(), unknown in the page)
    (await pc?.getStats())?.forEach((s: Record<string, unknown>) => {
      if (s['type'] === 'transport') {
        out.transportBytes += Number(s['bytesSent'] ?? 0);
        out.transportPackets += Number(s['packetsSent'] ?? 0);
        out.srtpCipher = String(s['srtpCipher'] ?? '');
        out.dtlsCipher = String(s['dtlsCipher'] ?? '');
      } else if (s['type'] === 'outbound-rtp') {
        const k = s['kind'] === 'audio' ? out.audio : out.video;
        k.bytes += Number(s['bytesSent'] ?? 0);
        k.header += Number(s['headerBytesSent'] ?? 0);
        k.packets += Number(s['packetsSent'] ?? 0);
        if (s['kind'] === 'video') {
          out.video.frames += Number(s['framesEncoded'] ?? 0);
          out.video.width = Math.max(out.video.width, Number(s['frameWidth'] ?? 0));
          out.video.height = Math.max(out.video.height, Number(s['frameHeight'] ?? 0));
          out.video.encodeTime += Number(s['totalEncodeTime'] ?? 0);
          out.video.target += Number(s['targetBitrate'] ?? 0);
          out.video.limitation = String(s['qualityLimitationReason'] ?? '');
        }
      } else if (s['type'] === 'data-channel') {
        out.dc.bytes += Number(s['bytesSent'] ?? 0);
        out.dc.messages += Number(s['messagesSent'] ?? 0);
      }
    });
    const t = window.avatarSfu.tracker()?.stats();
    if (t) out.tracker = { fps: t.fps, cameraFps: t.cameraFps, detectMsP50: t.detectMsP50, detectMsP95: t.detectMsP95, faceFoundRatio: t.faceFoundRatio, motionFramesEmitted: t.motionFramesEmitted, framesDropped: t.framesDropped, backend: t.backend };
    return out;
  });
}

/** SRTP authentication tag bytes per packet for a cipher name from the transport stats. */
function srtpTagBytes(cipher: string): number {
  if (/GCM/i.test(cipher)) return 16;
  if (/_32$/.test(cipher)) return 4;
  return 10; // AES_CM_128_HMAC_SHA1_80 (and unknown: the common default)
}

export const IP_UDP_HEADER = 28;

export interface Uplink {
  seconds: number;
  /** everything the send transport carried minus the audio SRTP packets, + IPv4/UDP headers (kbit/s) */
  wireKbps: number;
  /** data-channel message payload only (kbit/s) */
  dcPayloadKbps: number;
  dcMessagesPerS: number;
  wireBytesPerMessage: number;
  /** outbound-rtp video bytesSent (payload only), kbit/s */
  videoPayloadKbps: number;
  /** video SRTP packets with RTP headers, tag and IPv4/UDP headers, kbit/s */
  videoWireKbps: number;
  videoFps: number;
  videoSize: string;
  videoEncodeMs: number;
  /** the encoder's target bitrate at the end of the window (kbit/s) and why it is limited */
  videoTargetKbps: number;
  videoLimitation: string;
  audioWireKbps: number;
  srtpCipher: string;
  dtlsCipher: string;
}

export function uplink(a: SendStats, b: SendStats): Uplink {
  const dt = (b.now - a.now) / 1000;
  const tag = srtpTagBytes(b.srtpCipher);
  const d = (f: (s: SendStats) => number): number => f(b) - f(a);
  const audioPackets = d((s) => s.audio.packets);
  const audioSrtp = d((s) => s.audio.bytes + s.audio.header) + audioPackets * tag;
  const videoPackets = d((s) => s.video.packets);
  const videoSrtp = d((s) => s.video.bytes + s.video.header) + videoPackets * tag;
  // rest = DTLS records (SCTP: data channel DATA chunks, SACKs, heartbeats) + RTCP
  const restBytes = d((s) => s.transportBytes) - audioSrtp - videoSrtp;
  const restPackets = d((s) => s.transportPackets) - audioPackets - videoPackets;
  const messages = d((s) => s.dc.messages);
  const wireBytes = restBytes + restPackets * IP_UDP_HEADER;
  const frames = d((s) => s.video.frames);
  return {
    seconds: dt,
    wireKbps: (wireBytes * 8) / dt / 1000,
    dcPayloadKbps: (d((s) => s.dc.bytes) * 8) / dt / 1000,
    dcMessagesPerS: messages / dt,
    wireBytesPerMessage: messages > 0 ? wireBytes / messages : NaN,
    videoPayloadKbps: (d((s) => s.video.bytes) * 8) / dt / 1000,
    videoWireKbps: ((videoSrtp + videoPackets * IP_UDP_HEADER) * 8) / dt / 1000,
    videoFps: frames / dt,
    videoSize: `${b.video.width}x${b.video.height}`,
    videoEncodeMs: frames > 0 ? (d((s) => s.video.encodeTime) * 1000) / frames : NaN,
    videoTargetKbps: b.video.target / 1000,
    videoLimitation: b.video.limitation,
    audioWireKbps: ((audioSrtp + audioPackets * IP_UDP_HEADER) * 8) / dt / 1000,
    srtpCipher: b.srtpCipher,
    dtlsCipher: b.dtlsCipher,
  };
}
