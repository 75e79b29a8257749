/** The SFU's offers keep rejected (port 0) media sections out of the BUNDLE group (server/src/sfu/sdp.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import wrtc from '@roamhq/wrtc';
import { withoutRejectedInBundle } from '../../server/src/sfu/sdp.ts';

// What werift offers a participant whose first consumer (mid 0) closed and whose next one is new (mid 1).
const OFFER = [
  'v=0', 'o=- 1 0 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=group:BUNDLE 0 1', 'a=msid-semantic:WMS *',
  'm=audio 0 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99',
  'a=setup:actpass', 'a=inactive', 'a=mid:0', 'a=rtcp-mux', 'a=rtpmap:96 opus/48000/2',
  'm=audio 9 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99',
  'a=setup:actpass', 'a=sendonly', 'a=mid:1', 'a=msid:peer-x track-y', 'a=rtcp-mux', 'a=rtpmap:96 opus/48000/2', 'a=ssrc:1234 cname:x',
  '',
].join('\r\n');

async function libwebrtcAccepts(sdp: string): Promise<string | null> {
  const pc = new (wrtc.RTCPeerConnection as unknown as typeof RTCPeerConnection)({ bundlePolicy: 'max-bundle' });
  try {
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    pc.close();
  }
}

test('libwebrtc refuses an offer whose BUNDLE group starts with a rejected section, and accepts it once withoutRejectedInBundle() took that section out', async () => {
  assert.match((await libwebrtcAccepts(OFFER)) ?? 'accepted', /should be rejected/, 'the unedited offer is what libwebrtc refuses');
  const fixed = withoutRejectedInBundle(OFFER);
  assert.ok(fixed.includes('a=group:BUNDLE 1\r\n'), fixed);
  assert.equal(await libwebrtcAccepts(fixed), null);
});

test('withoutRejectedInBundle() leaves an offer without rejected sections unchanged, and a group of rejected sections only as it is', () => {
  const live = OFFER.replace('m=audio 0 ', 'm=audio 9 ');
  assert.equal(withoutRejectedInBundle(live), live);
  const allRejected = OFFER.replace('m=audio 9 ', 'm=audio 0 ');
  assert.equal(withoutRejectedInBundle(allRejected), allRejected);
});
