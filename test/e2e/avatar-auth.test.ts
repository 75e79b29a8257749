/**
 * Avatars on a server with AUTH_SECRET (issue 12): the owner joins with a room access token that
 * grants canUseAvatar and with the identity's owner key; the avatar worker's session join needs no
 * room token (it uses its session token), so the avatar goes live and a viewer decodes it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startTestServer } from '../helpers/server.ts';
import { waitFor, sleep } from '../helpers/wait.ts';
import { CallClient } from '../../call/src/CallClient.ts';
import { SignalingError } from '../../call/src/SignalingClient.ts';
import { MotionOwner, uploadPhotoFile, VideoProbe, WrtcPeerConnection } from '../helpers/avatarPeers.ts';
import { AccessTokens } from '../../server/src/auth/AccessTokens.ts';
import { PARTICIPANT_GRANTS } from '../../protocol/src/accessToken.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const PHOTO = fileURLToPath(new URL('../fixtures/astronaut.png', import.meta.url));
const SECRET = 'avatar-auth-test-secret-0123456789abcdef';
const ROOM = 'signed room';

let server: AvatarServer;
let tokens: AccessTokens;
let owner: MotionOwner | undefined;
let viewer: CallClient | undefined;

before(async () => {
  server = await startTestServer({}, { AVATAR_WORKERS: '1', AUTH_SECRET: SECRET });
  tokens = await AccessTokens.create({ secret: SECRET });
});

after(async () => {
  await viewer?.leave().catch(() => undefined);
  await owner?.leave().catch(() => undefined);
  await sleep(500); // let wrtc finish closing its native objects
  await server?.close();
});

test('with AUTH_SECRET an owner with a canUseAvatar token and its owner key goes live as an avatar (the worker joins with its session token) and a viewer decodes it', async () => {
  const identityId = await uploadPhotoFile(server.httpUrl, PHOTO);
  owner = new MotionOwner(server.httpUrl);
  const ownerToken = (await tokens.mint({ room: ROOM, name: 'owner', ttlS: 600, grants: { ...PARTICIPANT_GRANTS } })).token;
  const ownerId = await owner.join(ROOM, identityId, 30, { token: ownerToken });
  viewer = new CallClient({ serverUrl: server.httpUrl, RTCPeerConnection: WrtcPeerConnection });
  const probe = new VideoProbe(viewer, () => ownerId);
  // without a token the viewer is refused; with one (subscribe only) it joins
  await assert.rejects(viewer.join({ roomId: ROOM, displayName: 'viewer', stream: null }), (err: unknown) => err instanceof SignalingError && err.body.code === 'UNAUTHORIZED');
  viewer = new CallClient({ serverUrl: server.httpUrl, RTCPeerConnection: WrtcPeerConnection });
  const probe2 = new VideoProbe(viewer, () => ownerId);
  await viewer.join({ roomId: ROOM, displayName: 'viewer', stream: null, token: (await tokens.mint({ room: ROOM, name: 'viewer', ttlS: 600, grants: { canSubscribe: true } })).token });
  await waitFor(() => probe2.frames > 10, { timeoutMs: 30_000, what: 'avatar frames at the viewer' });
  assert.equal(probe.frames, 0);
  const session = [...server.avatars.sessions.values()][0];
  assert.equal(session?.state, 'live');
  assert.equal(session?.avatarPeer?.role, 'delegate', 'the worker joined as the owner\'s delegate');
});
