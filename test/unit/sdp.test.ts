/** SDP edits the SFU makes to what werift produces. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { offeredSections, withAudioPtime, withBundleOnlyPorts, withSessionIceLite } from '../../server/src/sfu/sdp.ts';

const SDP = [
  'v=0', 'o=- 1 0 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1 2',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=rtpmap:111 opus/48000/2', 'a=ptime:20',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=mid:1', 'a=rtpmap:96 VP8/90000',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=mid:2', 'a=rtpmap:111 opus/48000/2',
].join('\r\n') + '\r\n';

function sections(sdp: string): string[] {
  return sdp.split(/\r\n(?=m=)/).slice(1);
}

test('withAudioPtime() puts exactly one a=ptime in every audio section (replacing any) and none in video sections', () => {
  const out = withAudioPtime(SDP, 10);
  const [a0, v1, a2] = sections(out);
  for (const audio of [a0!, a2!]) assert.deepEqual(audio.split('\r\n').filter((l) => l.startsWith('a=ptime')), ['a=ptime:10']);
  assert.ok(!v1!.includes('a=ptime'));
  assert.ok(out.endsWith('\r\n') && !out.includes('\r\n\r\n'), 'CRLF line ends, no blank lines');
  // everything else is untouched, in order
  assert.deepEqual(out.split('\r\n').filter((l) => !l.startsWith('a=ptime')), SDP.split('\r\n').filter((l) => !l.startsWith('a=ptime')));
});

test('withAudioPtime() keeps LF-only SDP LF-only and leaves an SDP without audio unchanged', () => {
  const lf = SDP.replaceAll('\r\n', '\n');
  assert.ok(!withAudioPtime(lf, 10).includes('\r'));
  const videoOnly = ['v=0', 's=-', 'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:0'].join('\r\n') + '\r\n';
  assert.equal(withAudioPtime(videoOnly, 10), videoOnly);
});

test('withAudioPtime() with a ptime that is not a positive integer throws a TypeError', () => {
  for (const bad of [0, -10, 2.5, Number.NaN]) assert.throws(() => withAudioPtime(SDP, bad), TypeError);
});

test('withBundleOnlyPorts() gives bundle-only sections with port 0 the port 9 and leaves really rejected sections (port 0, no bundle-only) at 0', () => {
  const offer = [
    'v=0', 's=-', 'a=group:BUNDLE 0 1',
    'm=audio 9 UDP/TLS/RTP/SAVPF 109', 'a=mid:0',
    'm=video 0 UDP/TLS/RTP/SAVPF 120', 'a=bundle-only', 'a=mid:1',
    'm=video 0 UDP/TLS/RTP/SAVPF 120', 'a=mid:2', 'a=inactive',
  ].join('\r\n') + '\r\n';
  const [a0, v1, v2] = sections(withBundleOnlyPorts(offer));
  assert.ok(a0!.startsWith('m=audio 9 '));
  assert.ok(v1!.startsWith('m=video 9 UDP/TLS/RTP/SAVPF 120'));
  assert.ok(v2!.startsWith('m=video 0 '));
  assert.equal(withBundleOnlyPorts(offer).replace('m=video 9 ', 'm=video 0 '), offer, 'nothing else changes');
  assert.equal(withBundleOnlyPorts(SDP), SDP, 'an SDP without bundle-only sections is unchanged');
});

test('withSessionIceLite() moves a=ice-lite from the media sections to one line at the session level (Firefox reads it only there)', () => {
  const werift = SDP.replace('a=mid:0', 'a=mid:0\r\na=ice-lite').replace('a=mid:1', 'a=mid:1\r\na=ice-lite');
  const out = withSessionIceLite(werift);
  const [session, ...media] = out.split(/\r\n(?=m=)/);
  assert.ok(session!.split('\r\n').includes('a=ice-lite'), 'session level');
  for (const m of media) assert.ok(!m.includes('a=ice-lite'), 'not in a media section');
  assert.equal(out.replace('a=ice-lite\r\n', ''), SDP, 'nothing else changes');
  assert.equal(withSessionIceLite(SDP), SDP, 'an SDP without ice-lite is unchanged');
});

test('offeredSections counts Firefox-style bundle-only sections (port 0 with a=bundle-only) as offered, and truly rejected or receive-only ones not', () => {
  const sdp = [
    'v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=group:BUNDLE 0 1 2',
    'm=audio 9 UDP/TLS/RTP/SAVPF 109', 'a=mid:0', 'a=sendrecv',
    'm=video 0 UDP/TLS/RTP/SAVPF 120', 'a=bundle-only', 'a=mid:1', 'a=sendrecv',
    'm=application 0 UDP/DTLS/SCTP webrtc-datachannel', 'a=bundle-only', 'a=mid:2',
    'm=video 0 UDP/TLS/RTP/SAVPF 120', 'a=mid:3', 'a=sendrecv',
    'm=audio 9 UDP/TLS/RTP/SAVPF 109', 'a=mid:4', 'a=recvonly',
    '',
  ].join('\r\n');
  // a peer without canPublish must not slip media past the grant check in bundle-only sections
  assert.deepEqual(offeredSections(sdp), { media: 2, data: 1 });
});
