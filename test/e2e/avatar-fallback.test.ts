/**
 * Falling back from a personal avatar to the photo, end to end without a browser: real server, a
 * real avatar worker process, Node participants on @roamhq/wrtc. The owner joins asking for the
 * Gaussian head (`avatar.generator`); when its asset is corrupt (the worker cannot load it) or
 * missing, the photo's mesh avatar goes live instead and the owner is told why in its avatar state.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { startTestServer } from '../helpers/server.ts';
import { waitFor, sleep } from '../helpers/wait.ts';
import { CallClient } from '../../call/src/CallClient.ts';
import { uploadPhotoFile, MotionOwner, VideoProbe, WrtcPeerConnection } from '../helpers/avatarPeers.ts';
import type { AvatarServer } from '../../server/src/server.ts';
import type { PeerInfo } from '../../protocol/src/signaling.ts';

const PHOTO = fileURLToPath(new URL('../fixtures/astronaut.png', import.meta.url));

describe('personal avatar fallback (real worker)', () => {
  let server: AvatarServer;
  let identityId: string;
  const leave: (() => Promise<void>)[] = [];

  before(async () => {
    // One enrollment for both tests (slow on a loaded machine): first without a head, then with a corrupt one.
    server = await startTestServer({}, { AVATAR_WORKERS: '1', AVATAR_ENROLL_TIMEOUT_MS: '60000' });
    identityId = await uploadPhotoFile(server.httpUrl, PHOTO);
  });

  after(async () => {
    for (const l of leave) await l().catch(() => undefined);
    await sleep(500); // let wrtc finish closing its native objects before the process exits
    await server?.close();
  });

  /** The owner joins asking for the Gaussian head; resolves with the avatar states it was told about. */
  async function joinAsGaussian(room: string, identityId: string): Promise<{ owner: MotionOwner; states: NonNullable<PeerInfo['avatar']>[] }> {
    const owner = new MotionOwner(server.httpUrl);
    const states: NonNullable<PeerInfo['avatar']>[] = [];
    owner.client.on('avatarstate', ({ peerId, avatar }) => {
      if (peerId === owner.client.peerId) states.push(avatar);
    });
    leave.push(() => owner.leave());
    await owner.join(room, identityId, 30, { generator: 'gaussian' });
    return { owner, states };
  }

  test('an identity without a Gaussian head: the photo avatar goes live at once and the owner is told ASSET_MISSING', async () => {
    const { owner, states } = await joinAsGaussian('fallback missing', identityId);
    const live = await waitFor(() => states.find((s) => s.state === 'live'), { timeoutMs: 30_000, what: "the owner told its avatar is live" });
    assert.equal(live.generator, 'mesh');
    assert.equal(live.fallback?.code, 'ASSET_MISSING');
    await owner.leave();
  });

  test("a corrupt Gaussian asset: the worker cannot load it, the photo's avatar goes live instead, a viewer decodes it, and the owner is told ASSET_INVALID", async () => {
    await server.identities.putAsset(identityId, 'gaussian-head', new Uint8Array(randomBytes(4096)));
    const { owner, states } = await joinAsGaussian('fallback corrupt', identityId);
    const live = await waitFor(() => states.find((s) => s.state === 'live'), { timeoutMs: 30_000, what: "the owner told its avatar is live" });
    assert.equal(live.generator, 'mesh');
    assert.equal(live.fallback?.code, 'ASSET_INVALID', JSON.stringify(live));
    assert.equal(live.fallback?.requested, 'gaussian');
    assert.match(live.fallback!.message, /personal avatar .* could not be loaded/);
    const info = [...server.rooms.rooms.get('fallback corrupt')!.participants].find((p) => p.id === owner.client.peerId)!.info();
    assert.equal(info.avatar?.fallback?.code, 'ASSET_INVALID');

    const viewer = new CallClient({ serverUrl: server.httpUrl, RTCPeerConnection: WrtcPeerConnection });
    const probe = new VideoProbe(viewer, () => owner.client.peerId!);
    leave.unshift(() => viewer.leave());
    await viewer.join({ roomId: 'fallback corrupt', displayName: 'viewer', stream: null });
    await waitFor(() => probe.frames > 10, { timeoutMs: 20_000, what: "the viewer decoding the photo avatar" });
  });
});
