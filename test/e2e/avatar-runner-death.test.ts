/**
 * A runner that dies while its worker stays connected (its avatar peer closes): real server, one
 * real worker process, Node participants. The session must not stay "recovering": the server has
 * the worker release it and assigns it again (the only worker takes it back) with a new token, and
 * the viewer's avatar video comes back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startTestServer } from '../helpers/server.ts';
import { waitFor, sleep } from '../helpers/wait.ts';
import { CallClient } from '../../call/src/CallClient.ts';
import { uploadPhotoFile, MotionOwner, VideoProbe, WrtcPeerConnection } from '../helpers/avatarPeers.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const PHOTO = fileURLToPath(new URL('../fixtures/astronaut.png', import.meta.url));
const ROOM = 'runner death';

describe('avatar runner death (real worker)', () => {
  let server: AvatarServer;
  let owner: MotionOwner | undefined;
  let viewer: CallClient | undefined;

  before(async () => {
    server = await startTestServer({}, { AVATAR_WORKERS: '1', AVATAR_START_TIMEOUT_MS: '60000' });
  });
  after(async () => {
    await viewer?.leave();
    await owner?.leave();
    await sleep(500);
    await server?.close();
  });

  test("when the runner's avatar peer closes while its worker stays connected, the worker releases it and takes it back with a new token, and the video comes back", async () => {
    const identityId = await uploadPhotoFile(server.httpUrl, PHOTO);
    owner = new MotionOwner(server.httpUrl);
    let ownerId = '';
    ownerId = await owner.join(ROOM, identityId);
    viewer = new CallClient({ serverUrl: server.httpUrl, RTCPeerConnection: WrtcPeerConnection });
    const probe = new VideoProbe(viewer, () => ownerId);
    await viewer.join({ roomId: ROOM, displayName: 'viewer', stream: null });
    await waitFor(() => probe.frames > 10, { timeoutMs: 30_000, what: 'avatar frames at the viewer' });
    const session = [...server.avatars.sessions.values()][0]!;
    assert.equal(session.state, 'live');
    const workerId = session.workerId;
    const pid = server.workers!.pidOf(workerId!);
    const token = session.token;
    const deadPeer = session.avatarPeer!;
    assert.ok(deadPeer, 'the runner joined as the avatar peer');

    deadPeer.close(); // the runner's avatar peer dies; the worker's control socket stays up
    assert.equal(session.state, 'recovering');
    await waitFor(() => session.state === 'live' && session.avatarPeer && session.avatarPeer !== deadPeer, { timeoutMs: 30_000, intervalMs: 50, what: `the session live again with a new runner (state ${session.state})` });
    assert.equal(session.workerId, workerId, 'the only worker took it back');
    assert.equal(server.workers!.pidOf(workerId!), pid, 'the same worker process (it did not die)');
    assert.notEqual(session.token, token, 'with a new session token');
    const framesBack = probe.frames;
    await waitFor(() => probe.frames > framesBack + 10, { timeoutMs: 20_000, what: 'avatar video again at the viewer' });
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    assert.match(metrics, /^avatar_runner_deaths_total 1$/m);
  });
});
