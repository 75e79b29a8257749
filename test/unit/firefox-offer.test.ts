/**
 * What a Firefox page sends the SFU, against a real werift send transport: its offer (all media
 * sections but the first are bundle-only with port 0) and its ICE candidates (mDNS names the SFU cannot
 * reach). Before these fixes a Chromium page never decoded a Firefox page's video: the SFU made no
 * producer of Firefox's video section, and its send transport never connected.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { RTCPeerConnection } from 'werift';
import { loadConfig } from '../../server/src/config.ts';
import { Metrics } from '../../server/src/metrics.ts';
import { WebRtcTransport, type WebRtcTransportOptions } from '../../server/src/sfu/WebRtcTransport.ts';
import { sfuCodecs, sfuHeaderExtensions } from '../../server/src/sfu/codecs.ts';
import { waitFor } from '../helpers/wait.ts';

const logger = pino({ level: process.env['LOG_LEVEL'] ?? 'silent' });
const config = loadConfig({ HOST: '127.0.0.1', RTC_LISTEN_IP: '127.0.0.1', RTC_ANNOUNCED_IP: '127.0.0.1', LOG_LEVEL: 'silent' });

function sendTransport(): Promise<WebRtcTransport> {
  const opts: WebRtcTransportOptions = { direction: 'send', rtc: config.rtc, pacer: { bitrateBps: 10_000_000, maxQueuePackets: 100 }, logger, metrics: new Metrics({ defaultMetrics: false }) };
  return WebRtcTransport.create(opts);
}

/** The send offer of Firefox 153 ESR's call page (camera and microphone, max-bundle), trimmed of nothing but its identifiers. */
const FIREFOX_OFFER = [
  'v=0',
  'o=mozilla...THIS_IS_SDPARTA-99.0 3169435529796271789 0 IN IP4 0.0.0.0',
  's=-',
  't=0 0',
  'a=sendrecv',
  'a=fingerprint:sha-256 39:25:E2:BA:A0:87:F2:46:BF:D6:BF:F8:42:59:16:25:DD:E9:D9:6D:4D:30:CC:A3:8B:6A:99:21:46:DE:93:53',
  'a=group:BUNDLE 0 1',
  'a=ice-options:trickle',
  'a=msid-semantic:WMS *',
  'm=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101',
  'c=IN IP4 0.0.0.0',
  'a=candidate:0 1 UDP 2122252543 23b839a6-2709-40b3-b486-401b7e45de9d.local 49585 typ host',
  'a=candidate:1 1 TCP 2105524479 23b839a6-2709-40b3-b486-401b7e45de9d.local 9 typ host tcptype active',
  'a=sendonly',
  'a=end-of-candidates',
  'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level',
  'a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid',
  'a=extmap-allow-mixed',
  'a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1',
  'a=fmtp:101 0-15',
  'a=ice-pwd:2ecae8f8d5c312f87c3e343d66ecc490',
  'a=ice-ufrag:ba6c048a',
  'a=mid:0',
  'a=msid:{95c6832b-34dd-4b7b-a27e-9aaa9a0de6f1} {b4e18bc9-9234-476f-aa99-cda03d87015c}',
  'a=rtcp-mux',
  'a=rtpmap:109 opus/48000/2',
  'a=rtpmap:9 G722/8000/1',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=setup:actpass',
  'a=ssrc:2879580470 cname:{002c257c-4ca5-4382-ba6c-c2ebf224763b}',
  'm=video 0 UDP/TLS/RTP/SAVPF 120 124 121 125 99 100 123 122 119',
  'c=IN IP4 0.0.0.0',
  'a=bundle-only',
  'a=sendonly',
  'a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid',
  'a=extmap:4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  'a=extmap:5 urn:ietf:params:rtp-hdrext:toffset',
  'a=extmap-allow-mixed',
  'a=fmtp:120 max-fs=12288;max-fr=60',
  'a=fmtp:124 apt=120',
  'a=fmtp:121 max-fs=12288;max-fr=60',
  'a=fmtp:125 apt=121',
  'a=fmtp:100 apt=99',
  'a=fmtp:119 apt=122',
  'a=ice-pwd:2ecae8f8d5c312f87c3e343d66ecc490',
  'a=ice-ufrag:ba6c048a',
  'a=mid:1',
  'a=msid:{95c6832b-34dd-4b7b-a27e-9aaa9a0de6f1} {8425660b-02ca-47fb-911e-fdb4da7fdebf}',
  'a=rtcp-fb:120 nack',
  'a=rtcp-fb:120 nack pli',
  'a=rtcp-fb:120 ccm fir',
  'a=rtcp-fb:120 goog-remb',
  'a=rtcp-mux',
  'a=rtcp-rsize',
  'a=rtpmap:120 VP8/90000',
  'a=rtpmap:124 rtx/90000',
  'a=rtpmap:121 VP9/90000',
  'a=rtpmap:125 rtx/90000',
  'a=rtpmap:99 AV1/90000',
  'a=rtpmap:100 rtx/90000',
  'a=rtpmap:123 ulpfec/90000',
  'a=rtpmap:122 red/90000',
  'a=rtpmap:119 rtx/90000',
  'a=setup:actpass',
  'a=ssrc:1703463703 cname:{002c257c-4ca5-4382-ba6c-c2ebf224763b}',
  'a=ssrc:3742238283 cname:{002c257c-4ca5-4382-ba6c-c2ebf224763b}',
  'a=ssrc-group:FID 1703463703 3742238283',
].join('\r\n') + '\r\n';

describe('a Firefox page publishing to the SFU', () => {
  const transports: WebRtcTransport[] = [];
  const pcs: RTCPeerConnection[] = [];
  after(async () => {
    for (const t of transports) t.close();
    for (const pc of pcs) await pc.close();
  });

  test("a send transport makes a producer of every media section of Firefox's offer, including the bundle-only video section with port 0", async () => {
    const transport = await sendTransport();
    transports.push(transport);
    const answer = await transport.processOffer({ type: 'offer', sdp: FIREFOX_OFFER });
    assert.deepEqual([...transport.producers.values()].map((p) => [p.mid, p.kind]), [['0', 'audio'], ['1', 'video']]);
    const video = answer.sdp.split(/\r\n(?=m=)/).find((s) => s.startsWith('m=video'));
    assert.ok(video && /^m=video [1-9]\d* /.test(video), 'the answer accepts the video section');
    assert.match(video, /a=rtpmap:120 VP8\/90000/, "the answer keeps Firefox's VP8 payload type");
  });

  test('a send transport connects to a peer whose own ICE candidates it cannot reach (mDNS names), from the checks that peer sends', async () => {
    const transport = await sendTransport();
    transports.push(transport);
    const states: string[] = [];
    transport.on('connectionstatechange', (s) => states.push(s));
    const peer = new RTCPeerConnection({
      codecs: sfuCodecs(),
      headerExtensions: sfuHeaderExtensions(),
      iceUseIpv6: false,
      bundlePolicy: 'max-bundle',
      iceInterfaceAddresses: { udp4: '127.0.0.1' },
      iceAdditionalHostAddresses: ['127.0.0.1'],
    });
    pcs.push(peer);
    peer.addTransceiver('audio', { direction: 'sendonly' });
    await peer.setLocalDescription(await peer.createOffer());
    await waitFor(() => peer.iceGatheringState === 'complete', { timeoutMs: 5000, what: 'peer gathering' });
    // What the SFU learns of the peer: only names it cannot resolve, as from a Firefox page.
    let n = 0;
    const sdp = peer.localDescription!.sdp.replace(/^a=candidate:(\S+) (\d+) (\S+) (\d+) \S+ (\d+) typ host.*$/gm, (_m, f, c, t, p, port) => `a=candidate:${f} ${c} ${t} ${p} ${n++}a9e2d6c-0d1b-4bd5-9d2e-6f5f7c0e.local ${port} typ host`);
    assert.ok(n > 0 && !/ 127\.0\.0\.1 \d+ typ/.test(sdp), 'the offer names no reachable address');
    const answer = await transport.processOffer({ type: 'offer', sdp });
    await peer.setRemoteDescription(answer);
    await waitFor(() => transport.connectionState === 'connected' || transport.connectionState === 'failed', { timeoutMs: 10_000, what: `the send transport connecting (states ${states.join(' → ')})` });
    assert.equal(transport.connectionState, 'connected', `states: ${states.join(' → ')}`);
  });
});
