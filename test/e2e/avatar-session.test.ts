/**
 * Avatar sessions end to end without a browser: real server, real avatar worker processes, real
 * werift SFU, and Node participants on @roamhq/wrtc (the owner streams motion frames, viewers decode
 * VP8). The browser path (face tracking in Chromium) is covered by avatar-browser.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer } from '../helpers/server.ts';
import { waitFor, sleep } from '../helpers/wait.ts';
import { CallClient } from '../../call/src/CallClient.ts';
import { SignalingError } from '../../call/src/SignalingClient.ts';
import { uploadPhotoFile, lumaDiff, MotionOwner, VideoProbe, WrtcPeerConnection } from '../helpers/avatarPeers.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const PHOTO = fileURLToPath(new URL('../fixtures/astronaut.png', import.meta.url));
const ROOM = 'avatar room';
const FACE_BOX = { x0: 0.3, y0: 0.25, x1: 0.7, y1: 0.75 };
/** Where the jaw and lips move at 256² (measured on the astronaut render). */
const JAW_BOX = { x0: 0.2, y0: 0.45, x1: 0.75, y1: 0.9 };

async function metric(server: AvatarServer, re: RegExp): Promise<number> {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => re.test(l))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('keypoint avatar sessions (Node participants, real workers)', () => {
  let server: AvatarServer;
  let identityId: string;
  let owner: MotionOwner;
  let ownerId: string;
  const viewers: { client: CallClient; probe: VideoProbe }[] = [];

  before(async () => {
    server = await startTestServer({}, { AVATAR_WORKERS: '2' });
    identityId = await uploadPhotoFile(server.httpUrl, PHOTO);
  });

  after(async () => {
    for (const v of viewers) await v.client.leave();
    await owner?.leave();
    await sleep(500); // let wrtc finish closing its native objects before the process exits
    await server?.close();
  });

  async function addViewer(name: string): Promise<{ client: CallClient; probe: VideoProbe }> {
    const client = new CallClient({ serverUrl: server.httpUrl, RTCPeerConnection: WrtcPeerConnection });
    const probe = new VideoProbe(client, () => ownerId);
    await client.join({ roomId: ROOM, displayName: name, stream: null });
    const v = { client, probe };
    viewers.push(v);
    return v;
  }

  test('joining as the avatar of an unknown identity is refused with 404', async () => {
    const c = new CallClient({ serverUrl: server.httpUrl, RTCPeerConnection: WrtcPeerConnection });
    await assert.rejects(c.join({ roomId: ROOM, displayName: 'x', stream: null, avatar: { identityId: 'ffffffffffffffffffffffffffffffff' } }), (err: unknown) => err instanceof SignalingError && err.body.status === 404);
  });

  test("a viewer sees the owner's avatar in the owner's tile, moving with the motion stream, and the owner sends no video", async () => {
    owner = new MotionOwner(server.httpUrl);
    ownerId = await owner.join(ROOM, identityId);
    const { client, probe } = await addViewer('viewer-1');
    await waitFor(() => probe.frames > 10, { timeoutMs: 20_000, what: 'avatar frames at the viewer' });
    const peers = [...server.rooms.rooms.get(ROOM)!.participants].map((p) => p.info());
    assert.equal(peers.find((p) => p.peerId === ownerId)?.avatar?.state, 'live');
    assert.equal(peers.length, 2, 'the avatar worker is not listed as a participant');
    assert.ok(client.remoteTracks.every((t) => t.peerId === ownerId), 'the avatar video arrives as the owner');
    const senders = owner.client.sendPeerConnection?.getSenders().filter((s) => s.track?.kind === 'video') ?? [];
    assert.equal(senders.length, 0, 'the owner publishes no video');

    const f0 = await waitFor(() => probe.frames, { what: 'frames' });
    const start = probe.frames;
    await sleep(2000);
    const fps = (probe.frames - start) / 2;
    assert.ok(fps >= 15, `avatar video at ${fps} fps (${f0})`);

    owner.expression.fill(0);
    await sleep(700);
    const closed = probe.luma.slice();
    await sleep(300);
    const closedAgain = probe.luma.slice();
    owner.expression[0] = 1; // jawOpen
    await sleep(700);
    const open = probe.luma.slice();
    const still = lumaDiff(closed, closedAgain, probe.width, JAW_BOX);
    const moved = lumaDiff(closed, open, probe.width, JAW_BOX);
    assert.ok(moved > still * 3 + 1, `the face changes with the motion (jaw open diff ${moved.toFixed(2)} vs still ${still.toFixed(2)})`);
    owner.expression[0] = 0;
  });

  test("a viewer's personal view turns the head for that viewer only; only the owner may set the default view", async () => {
    const a = viewers[0]!;
    const b = await addViewer('viewer-2');
    await waitFor(() => b.probe.frames > 10, { timeoutMs: 15_000, what: 'second viewer frames' });
    const before = a.probe.luma.slice();
    const t0 = performance.now();
    const res = await a.client.setAvatarView(ownerId, 'personal', { yaw: 30, pitch: 0, roll: 0 });
    assert.equal(res.shared, false);
    await waitFor(() => lumaDiff(before, a.probe.luma, a.probe.width, FACE_BOX) > 6, { timeoutMs: 5000, intervalMs: 10, what: 'the personal view at viewer 1' });
    const applyMs = performance.now() - t0;
    await sleep(300);
    const turned = lumaDiff(a.probe.luma, b.probe.luma, a.probe.width, FACE_BOX);
    assert.ok(turned > 6, `viewer 2 keeps the default view (diff ${turned.toFixed(1)})`);
    process.stdout.write(`# free view applied in ${applyMs.toFixed(0)} ms\n`);

    await assert.rejects(b.client.setAvatarView(ownerId, 'default', { yaw: 10, pitch: 0, roll: 0 }), (err: unknown) => err instanceof SignalingError && err.body.status === 403);
    const same = await b.client.setAvatarView(ownerId, 'personal', { yaw: 30.2, pitch: 0, roll: 0 });
    assert.equal(same.shared, true, 'an identical view shares the existing stream');
    await a.client.setAvatarView(ownerId, 'personal', null);
    await b.client.setAvatarView(ownerId, 'personal', null);
    await waitFor(() => lumaDiff(a.probe.luma, b.probe.luma, a.probe.width, FACE_BOX) < 4, { timeoutMs: 5000, what: 'both back on the default view' });
  });

  test('malformed, oversized and flooding motion frames are dropped and counted, and the avatar keeps rendering', async () => {
    const { probe } = viewers[0]!;
    const droppedBefore = await metric(server, /^avatar_motion_frames_total\{outcome="dropped_/);
    owner.sendRaw(new Uint8Array([0xc1, 0xff, 0x00]));
    owner.sendRaw(new Uint8Array(64).fill(7));
    owner.sendRaw(new Uint8Array([0x94, 0x01, 0x01, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0, 0xc4, 0x00])); // NaN timestamp
    for (let i = 0; i < 400; i++) owner.sendFrame();
    const framesBefore = probe.frames;
    await waitFor(async () => (await metric(server, /^avatar_motion_frames_total\{outcome="dropped_/)) >= droppedBefore + 3, { timeoutMs: 8000, what: 'drop counters' });
    assert.ok((await metric(server, /^avatar_motion_frames_total\{outcome="dropped_invalid"/)) >= 2);
    await waitFor(() => probe.frames > framesBefore + 20, { what: 'rendering continues' });
  });

  test("when the worker rendering an avatar dies, the session moves and the viewer's video comes back", async () => {
    const { probe } = viewers[0]!;
    const session = [...server.avatars.sessions.values()][0]!;
    const pid = server.workers!.pidOf(session.workerId!);
    assert.ok(pid, 'the session has a local worker');
    const framesBefore = probe.frames;
    const killedAt = performance.now();
    process.kill(pid, 'SIGKILL');
    // The video stops (the killed worker was the one rendering it): no frame for 150 ms (25 fps = 40 ms apart).
    const lastBeforeGap = (await waitFor(() => performance.now() - probe.lastFrameAt > 150 && probe.lastFrameAt, { timeoutMs: 3000, intervalMs: 10, what: 'the video to stop after the worker was killed' })) as number;
    assert.ok(probe.frames >= framesBefore);
    // …and comes back from another worker process.
    const resumed = (await waitFor(() => probe.lastFrameAt > lastBeforeGap + 150 && session.workerId !== undefined && server.workers!.pidOf(session.workerId) !== pid && probe.lastFrameAt, { timeoutMs: 10_000, intervalMs: 20, what: 'video back after the worker died' })) as number;
    const recoveryMs = resumed - killedAt;
    process.stdout.write(`# avatar video back ${recoveryMs.toFixed(0)} ms after the worker was killed\n`);
    assert.ok(recoveryMs < 5000, `recovered in ${recoveryMs.toFixed(0)} ms`);
    await waitFor(() => session.owner.attributes.avatar?.state === 'live', { what: 'state live again' });
  });
});
