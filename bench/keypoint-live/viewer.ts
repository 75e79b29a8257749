/** A Node (wrtc) viewer in the keypoint bench: decoded frames of one peer's video and its receive stats. */
import wrtc from '@roamhq/wrtc';
import { CallClient, type RemoteTrack } from '../../call/src/CallClient.ts';
import type { PeerInfo } from '../../protocol/src/signaling.ts';
import { WrtcPeerConnection } from '../../test/helpers/avatarPeers.ts';
import { epochNow } from './clock.ts';

export interface RecordedFrame {
  /** epoch ms when wrtc delivered the decoded frame to JS */
  t: number;
  luma: Uint8Array;
}

/** Decoded frames of one remote peer's video at a wrtc CallClient, following track changes. */
export class FrameRecorder {
  count = 0;
  width = 0;
  height = 0;
  lastAt = 0;
  /** arrival times of every frame (numbers only) */
  readonly times: number[] = [];
  /** luma planes, kept only while `recording` (ring of `maxKeep`) */
  readonly frames: RecordedFrame[] = [];
  recording = false;
  latest: RecordedFrame | undefined;
  #sink: { stop(): void } | undefined;

  constructor(client: CallClient, private readonly peerId: () => string | undefined, private readonly maxKeep = 800) {
    client.on('track', (t: RemoteTrack) => {
      if (t.kind !== 'video' || t.peerId !== this.peerId()) return;
      this.#sink?.stop();
      const sink = new wrtc.nonstandard.RTCVideoSink(t.track as never);
      sink.onframe = ({ frame }: { frame: { width: number; height: number; data: Uint8Array } }) => {
        const t = epochNow();
        this.count++;
        this.lastAt = t;
        this.width = frame.width;
        this.height = frame.height;
        this.times.push(t);
        if (this.times.length > 20_000) this.times.splice(0, 10_000);
        const f = { t, luma: frame.data.slice(0, frame.width * frame.height) };
        this.latest = f;
        if (this.recording) {
          this.frames.push(f);
          if (this.frames.length > this.maxKeep) this.frames.splice(0, this.frames.length - this.maxKeep);
        }
      };
      this.#sink = sink as never;
    });
  }

  stop(): void {
    this.#sink?.stop();
  }
}

/** Video receive stats of a wrtc viewer: jitter-buffer delay, decode time, frames, NACK/PLI. */
export async function viewerRecvStats(client: CallClient): Promise<{ jb: number; emitted: number; decode: number; decoded: number; dropped: number; nacks: number; plis: number; lost: number }> {
  const out = { jb: 0, emitted: 0, decode: 0, decoded: 0, dropped: 0, nacks: 0, plis: 0, lost: 0 };
  (await client.receivePeerConnection?.getStats())?.forEach((s: Record<string, unknown>) => {
    if (s['type'] !== 'inbound-rtp' || s['kind'] !== 'video') return;
    out.jb += Number(s['jitterBufferDelay'] ?? 0);
    out.emitted += Number(s['jitterBufferEmittedCount'] ?? 0);
    out.decode += Number(s['totalDecodeTime'] ?? 0);
    out.decoded += Number(s['framesDecoded'] ?? 0);
    out.dropped += Number(s['framesDropped'] ?? 0);
    out.nacks += Number(s['nackCount'] ?? 0);
    out.plis += Number(s['pliCount'] ?? 0);
    out.lost += Number(s['packetsLost'] ?? 0);
  });
  return out;
}

export interface ViewerRecv {
  /** mean time a frame spent in the viewer's jitter buffer (ms) */
  jitterBufferMs: number;
  decodeMs: number;
  framesDropped: number;
  nacks: number;
  plis: number;
  packetsLost: number;
}

export function viewerRecvDelta(a: Awaited<ReturnType<typeof viewerRecvStats>>, b: Awaited<ReturnType<typeof viewerRecvStats>>): ViewerRecv {
  const emitted = b.emitted - a.emitted;
  const decoded = b.decoded - a.decoded;
  return {
    jitterBufferMs: emitted > 0 ? ((b.jb - a.jb) / emitted) * 1000 : NaN,
    decodeMs: decoded > 0 ? ((b.decode - a.decode) / decoded) * 1000 : NaN,
    framesDropped: b.dropped - a.dropped,
    nacks: b.nacks - a.nacks,
    plis: b.plis - a.plis,
    packetsLost: b.lost - a.lost,
  };
}

export async function joinViewer(url: string, room: string, name: string, peerId: () => string | undefined): Promise<{ client: CallClient; rec: FrameRecorder; peers: PeerInfo[] }> {
  const client = new CallClient({ serverUrl: url, RTCPeerConnection: WrtcPeerConnection });
  const rec = new FrameRecorder(client, peerId);
  const peers = (await client.join({ roomId: room, displayName: name, stream: null })) as PeerInfo[];
  return { client, rec, peers };
}
