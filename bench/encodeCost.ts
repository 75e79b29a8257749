/**
 * VP8 encode cost of rendered frames: a wrtc RTCVideoSource on a loopback RTCPeerConnection pair
 * in this process, fed at `fps` by `nextFrame`; libvpx time per frame from outbound-rtp
 * totalEncodeTime / framesEncoded (after a 1.5 s ramp-up).
 */
import wrtc from '@roamhq/wrtc';

export interface EncodeCost {
  encodeMsMean: number | null;
  framesEncoded: number;
  kbps: number | null;
  /** process CPU (all threads) per frame fed while rendering + encoding at `fps` (includes the loopback receiver's decode) */
  pipelineCpuMsPerFrame: number | null;
}

export async function measureVp8EncodeCost(size: number, fps: number, seconds: number, nextFrame: (i: number) => Uint8Array): Promise<EncodeCost> {
  const a = new wrtc.RTCPeerConnection();
  const b = new wrtc.RTCPeerConnection();
  const sinks: { stop(): void }[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    a.onicecandidate = (e: { candidate: unknown }) => void (e.candidate && b.addIceCandidate(e.candidate as never));
    b.onicecandidate = (e: { candidate: unknown }) => void (e.candidate && a.addIceCandidate(e.candidate as never));
    b.ontrack = (e: { track: unknown }) => {
      const sink = new wrtc.nonstandard.RTCVideoSink(e.track as never);
      sink.onframe = () => undefined;
      sinks.push(sink as never);
    };
    const source = new wrtc.nonstandard.RTCVideoSource();
    const track = source.createTrack();
    a.addTrack(track, new wrtc.MediaStream([track]));
    const offer = await a.createOffer();
    await a.setLocalDescription(offer);
    await b.setRemoteDescription(offer);
    const answer = await b.createAnswer();
    await b.setLocalDescription(answer);
    await a.setRemoteDescription(answer);
    let i = 0;
    timer = setInterval(() => source.onFrame({ width: size, height: size, data: nextFrame(i++) }), 1000 / fps);
    const stats = async (): Promise<{ enc: number; frames: number; bytes: number; at: number; cpu: number; sent: number }> => {
      let enc = 0, frames = 0, bytes = 0;
      (await a.getStats()).forEach((s: Record<string, unknown>) => {
        if (s['type'] === 'outbound-rtp' && s['kind'] === 'video') {
          enc += Number(s['totalEncodeTime'] ?? 0);
          frames += Number(s['framesEncoded'] ?? 0);
          bytes += Number(s['bytesSent'] ?? 0);
        }
      });
      const u = process.cpuUsage();
      return { enc, frames, bytes, at: performance.now(), cpu: (u.user + u.system) / 1000, sent: i };
    };
    await new Promise((r) => setTimeout(r, 1500));
    const s0 = await stats();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const s1 = await stats();
    const n = s1.frames - s0.frames;
    return {
      encodeMsMean: n > 0 ? ((s1.enc - s0.enc) * 1000) / n : null,
      framesEncoded: n,
      kbps: n > 0 ? ((s1.bytes - s0.bytes) * 8) / (s1.at - s0.at) : null,
      pipelineCpuMsPerFrame: s1.sent > s0.sent ? (s1.cpu - s0.cpu) / (s1.sent - s0.sent) : null,
    };
  } finally {
    if (timer) clearInterval(timer);
    for (const s of sinks) s.stop();
    a.close();
    b.close();
  }
}
