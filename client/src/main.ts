/** The call page: join form, tiles, mute controls. Exposes `window.avatarSfu` for tests and benchmarks. */
import { displayNameSchema, roomIdSchema } from '../../protocol/src/signaling.ts';
import { CallClient, SERVER_RESTARTING } from '../../call/src/CallClient.ts';
import { SignalingError } from '../../call/src/SignalingClient.ts';
import { TileGrid } from './ui/TileGrid.ts';
import { createFreeViewPanel } from './ui/FreeViewControls.ts';
import { snapshotFromStream } from './avatar/cameraSnapshot.ts';
import { uploadAvatarPhoto } from './avatar/uploadAvatarPhoto.ts';
import { deleteSavedAvatar, forgetAvatar, ownerKeyOf, rememberAvatar, savedAvatarPhotoUrl, usableSavedAvatar } from './avatar/savedAvatar.ts';
import { hasGrant, readUnverifiedClaims } from '../../protocol/src/accessToken.ts';
import { loadFaceTracker, type FaceTracker } from './avatar/loadFaceTracker.ts';
import { encodeMotionFrame } from '../../protocol/src/motion.ts';
import type { PeerInfo } from '../../protocol/src/signaling.ts';
import { PersonalAvatarPanel } from './ui/PersonalAvatarPanel.ts';
import { personalAvatarStatus, scoreText } from './avatar/personalAvatar.ts';
import { PreJoin } from './ui/PreJoin.ts';
import { mediaErrorMessage } from './ui/mediaErrors.ts';
import { SpeakerOutput } from './ui/SpeakerOutput.ts';
import { InCallDevices } from './ui/InCallDevices.ts';
import { deviceConstraint, saveDeviceChoice } from './ui/DeviceChoices.ts';
import { Layout } from './ui/Layout.ts';
import { ParticipantList } from './ui/ParticipantList.ts';
import { QualityMonitor } from './ui/QualityMonitor.ts';
import { Shortcuts } from './ui/Shortcuts.ts';
import { ChatPanel } from './ui/ChatPanel.ts';
import { ScreenShareControl } from './ui/ScreenShareControl.ts';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
};

const form = $<HTMLFormElement>('join-form');
const roomInput = $<HTMLInputElement>('room');
const nameInput = $<HTMLInputElement>('name');
const joinButton = $<HTMLButtonElement>('join');
const callSection = $<HTMLElement>('call');
const micButton = $<HTMLButtonElement>('toggle-mic');
const camButton = $<HTMLButtonElement>('toggle-cam');
const leaveButton = $<HTMLButtonElement>('leave');
const errorBox = $<HTMLElement>('error');
const statusEl = $<HTMLElement>('status');
/** Our connection as a badge: connected / reconnecting / offline. */
const connectionEl = $<HTMLElement>('connection');
const roomLabel = $<HTMLElement>('room-label');
const tiles = new TileGrid($('tiles'));
/** Remote audio plays on the speaker picked before or during the call. */
const speakerOutput = new SpeakerOutput($('tiles'));
/** Grid or speaker layout, pin, fullscreen and per-tile volume. */
const layout = new Layout($('tiles'));
const layoutButton = $<HTMLButtonElement>('layout-toggle');
const showLayout = (): void => {
  const speaker = layout.mode === 'speaker';
  layoutButton.textContent = speaker ? 'Grid layout' : 'Speaker layout';
  layoutButton.setAttribute('aria-label', speaker ? 'Switch to the grid layout' : 'Switch to the speaker layout');
};
layoutButton.addEventListener('click', () => {
  layout.setMode(layout.mode === 'speaker' ? 'grid' : 'speaker');
  showLayout();
});
new MutationObserver(showLayout).observe($('tiles'), { attributes: true, attributeFilter: ['class'] });
new ParticipantList($('tiles'), $('participant-list'), $('participant-count'));
const qualityMonitor = new QualityMonitor($('tiles'), $('uplink-quality'));
const participantsButton = $<HTMLButtonElement>('participants-toggle');
const participantsPanel = $<HTMLElement>('participants');
participantsButton.addEventListener('click', () => {
  participantsPanel.hidden = !participantsPanel.hidden;
  participantsButton.setAttribute('aria-expanded', String(!participantsPanel.hidden));
});
const screenShare = new ScreenShareControl({
  button: $<HTMLButtonElement>('share-screen'),
  client: () => client,
  onChange: (track) => {
    const c = client;
    if (!c?.peerId) return;
    if (track) tiles.addScreen(c.peerId, nameInput.value, track, true);
    else tiles.removeScreen(c.peerId);
  },
  onError: (m) => showError(m),
});
const chat = new ChatPanel({
  panel: $('chat'),
  toggle: $<HTMLButtonElement>('toggle-chat'),
  send: (text) => (client ? client.sendChatMessage(text) : Promise.reject(new Error('not in a call'))),
});
const avatarOptions = $<HTMLElement>('avatar-options');
const photoInput = $<HTMLInputElement>('photo');
const photoPreview = $<HTMLImageElement>('photo-preview');
const savedBox = $<HTMLElement>('saved-avatar');
const useSavedInput = $<HTMLInputElement>('use-saved');
const savedPhoto = $<HTMLImageElement>('saved-avatar-photo');
const deleteSavedButton = $<HTMLButtonElement>('delete-saved');
/** Room access token (servers with AUTH_SECRET): from ?token= or typed in; replaced when the server refreshes it. */
const tokenInput = $<HTMLInputElement>('token');
/** Our own avatar's photo (an object URL fetched with the owner key), shown on our tile until its video arrives. */
let ownPhotoUrl: string | undefined;
/** The saved identity offered on the join form (see savedAvatar.ts), if any. */
let savedIdentityId: string | undefined;
/** Personal avatar: the saved identity has a trained Gaussian head; join with it ("gaussian") unless unticked. */
const usePersonalLabel = $<HTMLElement>('use-personal-label');
const usePersonalInput = $<HTMLInputElement>('use-personal');
const usePersonalScore = $<HTMLElement>('use-personal-score');
const avatarNotice = $<HTMLElement>('avatar-notice');
let savedHasHead = false;
const modeInputs = [...document.querySelectorAll<HTMLInputElement>('input[name="mode"]')];
type JoinMode = 'camera' | 'avatar' | 'voice';
const selectedMode = (): JoinMode => {
  const v = modeInputs.find((i) => i.checked)?.value;
  return v === 'avatar' || v === 'voice' ? v : 'camera';
};
for (const i of modeInputs) i.addEventListener('change', () => (avatarOptions.hidden = selectedMode() === 'camera'));
photoInput.addEventListener('change', () => {
  const file = photoInput.files?.[0];
  // A new photo replaces the saved avatar for this join.
  if (file) useSavedInput.checked = false;
  photoPreview.hidden = !file;
  if (file) photoPreview.src = URL.createObjectURL(file);
});
let tracker: FaceTracker | undefined;
/** How the current call was joined (the camera button differs per mode). */
let callMode: JoinMode = 'camera';
/** Sends one encoded motion frame on the avatar's motion channel once it is open. */
let motionSend: ((frame: Uint8Array) => void) | undefined;
/**
 * One sequence for the whole call: a tracker restarted after "Start camera" counts from 0 again, and
 * the worker drops frames whose sequence number goes backwards as late.
 */
let motionSeq = 0;
function sendMotionFrame(frame: Parameters<typeof encodeMotionFrame>[0]): void {
  const seq = motionSeq;
  motionSeq = (motionSeq + 1) >>> 0;
  motionSend?.(encodeMotionFrame({ ...frame, seq }));
}
/** The tracker's neutral face, kept while the camera is off so a restart needs no new calibration. */
let avatarNeutral: FaceTracker['neutral'] = null;


const params = new URLSearchParams(location.search);
const modeParam = params.get('mode');
if (modeParam === 'avatar' || modeParam === 'voice') {
  for (const i of modeInputs) i.checked = i.value === modeParam;
  avatarOptions.hidden = false;
}
roomInput.value = params.get('room') ?? localStorage.getItem('avatar-sfu.room') ?? '';
nameInput.value = params.get('name') ?? localStorage.getItem('avatar-sfu.name') ?? '';
tokenInput.value = params.get('token') ?? '';
{
  // A token names its room and name: fill them in unless the link did.
  const claims = tokenInput.value ? readUnverifiedClaims(tokenInput.value) : undefined;
  if (claims && !params.get('room')) roomInput.value = claims.room;
  if (claims && !params.get('name')) nameInput.value = claims.name;
}

/** Offer the newest saved identity the server still has ("use my saved avatar"), or hide the offer. */
async function refreshSavedAvatar(): Promise<void> {
  const saved = await usableSavedAvatar().catch(() => undefined);
  savedIdentityId = saved?.identityId;
  savedBox.hidden = !saved;
  if (saved) {
    void savedAvatarPhotoUrl(saved.identityId).then((url) => {
      if (url && savedIdentityId === saved.identityId) savedPhoto.src = url;
    });
    useSavedInput.checked = !photoInput.files?.[0];
  }
  const personal = saved ? await personalAvatarStatus(saved).catch(() => undefined) : undefined;
  if (saved?.identityId !== savedIdentityId) return; // a newer refresh took over
  savedHasHead = Boolean(personal?.trained);
  usePersonalLabel.hidden = !savedHasHead;
  if (personal?.trained) usePersonalScore.textContent = scoreText(personal.trained);
}
const personalPanel = new PersonalAvatarPanel({
  ...(params.get('personalSeconds') ? { seconds: Number(params.get('personalSeconds')) } : {}),
  ...(params.get('personalFps') ? { fps: Number(params.get('personalFps')) } : {}),
  onChange: () => void refreshSavedAvatar(),
});
$<HTMLButtonElement>('create-personal').addEventListener('click', () => void personalPanel.open());
void refreshSavedAvatar();
void personalPanel.refreshList();
void personalPanel.resume();
deleteSavedButton.addEventListener('click', () => {
  const id = savedIdentityId;
  if (!id) return;
  deleteSavedButton.disabled = true;
  void deleteSavedAvatar(id)
    .then(() => setStatus('Your saved avatar was deleted from the server.'))
    .catch((err: unknown) => showError(`Could not delete the saved avatar: ${(err as Error).message}`))
    .finally(() => {
      deleteSavedButton.disabled = false;
      void refreshSavedAvatar();
    });
});

let client: CallClient | undefined;
let localStream: MediaStream | null = null;
const muted = { audio: false, video: false };

const preJoin = new PreJoin(
  {
    video: $<HTMLVideoElement>('preview'),
    meter: $('mic-level'),
    camera: $<HTMLSelectElement>('camera-picker'),
    mic: $<HTMLSelectElement>('mic-picker'),
    speaker: $<HTMLSelectElement>('speaker-picker'),
    noDevices: $<HTMLInputElement>('no-devices'),
    message: $('prejoin-message'),
  },
  // Voice mode uses the camera at most once for a snapshot: no preview.
  { wantsVideo: () => selectedMode() !== 'voice', videoConstraints, onSpeaker: (id) => speakerOutput.set(id) },
);
for (const i of modeInputs) i.addEventListener('change', () => void preJoin.refresh());
void preJoin.start();

const inCallDevices = new InCallDevices(
  { camera: $<HTMLSelectElement>('call-camera'), mic: $<HTMLSelectElement>('call-mic'), speaker: $<HTMLSelectElement>('call-speaker') },
  {
    current: (kind) => localStream?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId,
    switchTo: (kind, deviceId) => switchDevice(kind, deviceId),
    onSpeaker: (id) => speakerOutput.set(id),
    onError: (m) => showError(m),
  },
);

function showError(message: string | null): void {
  errorBox.hidden = message === null;
  errorBox.textContent = message ?? '';
}

function setStatus(text: string): void {
  statusEl.textContent = text;
}

/** The camera size and rate asked for (?w=&h=&fps= for tests and benchmarks). */
function videoConstraints(): MediaTrackConstraints {
  return { width: Number(params.get('w') ?? 640), height: Number(params.get('h') ?? 480), frameRate: Number(params.get('fps') ?? 30) };
}

/** Opens the microphone (and camera) chosen on the pre-join screen; an empty stream when joining without devices. */
async function openMedia(video = true): Promise<MediaStream> {
  const chosen = preJoin.choice();
  if (chosen.noDevices) return new MediaStream();
  if (!navigator.mediaDevices?.getUserMedia) throw Object.assign(new Error('no mediaDevices'), { name: 'SecurityError' });
  return navigator.mediaDevices.getUserMedia({ audio: deviceConstraint(chosen.audioinput), video: video ? deviceConstraint(chosen.videoinput, videoConstraints()) : false });
}

function showAvatar(p: PeerInfo): void {
  if (!p.avatar) return;
  const c = client;
  tiles.setAvatar(p.peerId, { ...p.avatar, ...(c && p.peerId === c.peerId ? { photoUrl: ownPhotoUrl } : {}) });
  const el = tiles.element(p.peerId);
  if (!el || !c) return;
  tiles.setViewPanel(
    p.peerId,
    createFreeViewPanel({
      tile: el,
      isOwner: p.peerId === c.peerId,
      send: (scope, view) => c.setAvatarView(p.peerId, scope, view),
      onError: (m) => showError(`Free view: ${m}`),
    }),
  );
}

/** Uploads the photo (or a camera snapshot) and remembers the new identity in this browser. */
async function enrollNew(photoFile: File | undefined, stream: MediaStream): Promise<string> {
  setStatus('Enrolling your photo…');
  const enrolled = await uploadAvatarPhoto(photoFile ?? (await snapshotFromStream(stream)));
  if (enrolled.warning) setStatus(enrolled.warning);
  rememberAvatar(enrolled.identityId, localStorage, enrolled.ownerKey);
  return enrolled.identityId;
}

async function join(roomId: string, displayName: string): Promise<void> {
  showError(null);
  const mode = selectedMode();
  const blocked = preJoin.blockedReason();
  if (blocked) return showError(blocked);
  if (preJoin.choice().noDevices && mode !== 'camera') return showError('An avatar needs your camera or microphone: untick "join without camera and microphone", or join as yourself.');
  joinButton.disabled = true;
  preJoin.stop();
  setStatus('Opening camera and microphone…');
  const photoFile = photoInput.files?.[0];
  // "Use my saved avatar": no upload, no snapshot.
  const savedId = mode !== 'camera' && !savedBox.hidden && useSavedInput.checked && !photoFile ? savedIdentityId : undefined;
  try {
    // A voice avatar needs the camera only for a snapshot when no photo was given.
    localStream = await openMedia(mode !== 'voice' || (!photoFile && !savedId));
  } catch (err) {
    showError(mediaErrorMessage(err));
    setStatus('');
    joinButton.disabled = false;
    void preJoin.start();
    return;
  }
  let identityId: string | undefined;
  // A saved avatar with a trained head joins as that head (the server falls back to the photo and says why when it cannot).
  const generator = savedId && savedHasHead && usePersonalInput.checked ? ('gaussian' as const) : undefined;
  personalPanel.close();
  motionSend = undefined;
  motionSeq = 0;
  avatarNeutral = null;
  if (mode === 'voice') {
    try {
      identityId = savedId ?? (await enrollNew(photoFile, localStream));
      for (const t of localStream.getVideoTracks()) {
        t.stop();
        localStream.removeTrack(t);
      }
    } catch (err) {
      showError(`Could not start the voice avatar: ${(err as Error).message}`);
      endCall();
      return;
    }
  }
  if (mode === 'avatar') {
    try {
      setStatus('Loading face tracking…');
      const { FaceTracker } = await loadFaceTracker();
      const trackerPending = FaceTracker.create({ stream: localStream });
      identityId = savedId ?? (await enrollNew(photoFile, localStream));
      tracker = await trackerPending;
      tracker.onMotion(sendMotionFrame);
      tracker.start();
    } catch (err) {
      showError(`Could not start the avatar: ${(err as Error).message}`);
      endCall();
      return;
    }
  }
  setStatus('Connecting…');
  ownPhotoUrl = identityId ? await savedAvatarPhotoUrl(identityId) : undefined;
  const token = tokenInput.value.trim() || undefined;
  // What the token allows (the server decides; this only avoids asking for what it would refuse).
  const claims = token ? readUnverifiedClaims(token) : undefined;
  const mayPublish = !claims || hasGrant(claims, 'canPublish');
  const mayPublishData = !claims || hasGrant(claims, 'canPublishData');
  let ownAvatarTrack: MediaStreamTrack | undefined;
  const c = new CallClient();
  client = c;
  c.on('peerjoined', (p) => {
    tiles.ensure(p.peerId, p.displayName);
    for (const prod of p.producers) if (prod.source !== 'screen') tiles.setMuted(p.peerId, prod.kind, prod.paused);
    showAvatar(p);
  });
  c.on('peerleft', ({ peerId }) => {
    tiles.remove(peerId);
    tiles.removeScreen(peerId);
  });
  c.on('chat', (m) => chat.receive(m));
  c.on('activespeaker', ({ peerId }) => tiles.setActiveSpeaker(peerId));
  c.on('peerconnection', ({ peerId, state }) => tiles.setConnection(peerId, state === 'reconnecting' ? 'reconnecting' : undefined));
  c.on('connectionstate', ({ state, reason }) => {
    if (client !== c) return;
    showConnection(state, reason);
    if (state === 'offline' && !callSection.hidden) {
      showError(`Lost the connection to the server${reason ? ` (${reason})` : ''}. Join again when it is back.`);
      endCall();
    }
  });
  // The server no longer knew us (it restarted): we joined again as a new peer; rebuild the tiles.
  c.on('rejoined', ({ peerId, peers }) => {
    if (client !== c) return;
    tiles.clear();
    const local = tiles.ensure(peerId, displayName, true);
    for (const t of localStream?.getTracks() ?? []) local.stream.addTrack(t);
    local.video.srcObject = local.stream;
    showPeers(peers);
    chat.reset(peerId, c.chatHistory);
    tiles.setActiveSpeaker(c.activeSpeakerPeerId);
  });
  c.on('producerstate', ({ peerId, producer }) => {
    if (producer.source !== 'screen') tiles.setMuted(peerId, producer.kind, producer.paused);
  });
  // Our own avatar's state can also arrive before join() returns: keep the latest for our tile.
  let ownAvatarState: PeerInfo['avatar'];
  c.on('avatarstate', ({ peerId, avatar }) => {
    if (peerId === c.peerId) {
      ownAvatarState = avatar;
      showOwnFallback(avatar);
    }
    tiles.setAvatar(peerId, avatar);
  });
  c.on('avatarquality', ({ peerId, quality }) => tiles.setAvatarQuality(peerId, quality));
  c.on('track', (t) => {
    if (t.peerId === c.peerId) {
      // Our own avatar, as everyone sees it. It can arrive before join() returns (our tile does not
      // exist yet): then the tile takes it when it is made, instead of showing the camera.
      if (t.kind === 'video') {
        ownAvatarTrack = t.track;
        tiles.replaceVideo(t.peerId, t.track);
      }
      return;
    }
    if (t.source === 'screen') {
      const name = tiles.stats().find((s) => s.peerId === t.peerId)?.displayName ?? '';
      tiles.addScreen(t.peerId, name, t.track);
      return;
    }
    tiles.addTrack(t.peerId, t.track);
  });
  c.on('trackended', (t) => {
    if (t.source === 'screen') tiles.removeScreen(t.peerId);
    else tiles.removeTrack(t.peerId, t.track);
  });
  c.on('tokenrefresh', ({ token: fresh }) => (tokenInput.value = fresh));
  c.on('disconnected', ({ reason }) => setStatus(`Connection lost (${reason}): reconnecting…`));
  try {
    // As an avatar only the microphone is published; the camera stays in this browser for tracking.
    const published = !mayPublish ? null : mode === 'camera' ? localStream : new MediaStream(localStream.getAudioTracks());
    const ownerKey = identityId ? ownerKeyOf(identityId) : undefined;
    const peers = await c.join({
      roomId,
      displayName,
      stream: published,
      ...(token ? { token } : {}),
      ...(identityId ? { avatar: { identityId, ...(ownerKey ? { ownerKey } : {}), driver: mode === 'voice' ? ('voice' as const) : ('keypoint' as const), ...(generator ? { generator } : {}) } } : {}),
      ...(mode === 'avatar' && mayPublishData
        ? {
            dataChannels: [
              {
                label: 'motion',
                init: { ordered: false, maxRetransmits: 0 },
                onOpen: (channel: RTCDataChannel) => {
                  motionSend = (frame) => {
                    // Motion frames are only useful fresh: skip rather than queue when congested.
                    if (channel.readyState === 'open' && channel.bufferedAmount < 4096) channel.send(frame as Uint8Array<ArrayBuffer>);
                  };
                },
              },
            ],
          }
        : {}),
    });
    chat.reset(c.peerId, c.chatHistory);
    tiles.setActiveSpeaker(c.activeSpeakerPeerId);
    localStorage.setItem('avatar-sfu.room', roomId);
    localStorage.setItem('avatar-sfu.name', displayName);
    const local = tiles.ensure(c.peerId ?? 'local', displayName, true);
    for (const t of localStream.getTracks()) local.stream.addTrack(t);
    local.video.srcObject = local.stream;
    if (ownAvatarTrack && ownAvatarTrack.readyState === 'live') tiles.replaceVideo(c.peerId!, ownAvatarTrack);
    if (identityId) showAvatar({ peerId: c.peerId!, displayName, producers: [], avatar: ownAvatarState ?? { driver: mode === 'voice' ? 'voice' : 'keypoint', state: 'starting', defaultView: { yaw: 0, pitch: 0, roll: 0 } } });
    showPeers(peers);
    showConnection(c.connectionState);
    form.hidden = true;
    callSection.hidden = false;
    roomLabel.textContent = `Room: ${roomId}`;
    qualityMonitor.start(c);
    setStatus(identityId ? 'Connected as an avatar' : 'Connected');
    callMode = mode;
    // A voice avatar has no camera at all: nothing to stop. An avatar's camera only drives tracking.
    camButton.hidden = mode === 'voice';
    // Joined without a device: nothing to mute.
    micButton.disabled = localStream.getAudioTracks().length === 0;
    camButton.disabled = mode === 'camera' && localStream.getVideoTracks().length === 0;
    await inCallDevices.show({ camera: mode !== 'voice' && (mode === 'avatar' || localStream.getVideoTracks().length > 0), mic: localStream.getAudioTracks().length > 0 });
    camButton.title = mode === 'avatar' ? 'Stops your camera and face tracking; your avatar idles (neutral face) and everyone sees it is paused' : '';
    if (muted.audio) await c.setMuted('audio', true);
    if (muted.video && mode === 'camera') await c.setMuted('video', true);
    if (muted.video && mode === 'avatar') await setAvatarCamera(false);
  } catch (err) {
    const message = err instanceof SignalingError ? `The server refused to join: ${err.message}` : (err as Error).message;
    // A saved avatar that expired or was deleted elsewhere: forget it, offer the photo upload again.
    if (savedId && err instanceof SignalingError && err.body.code === 'NOT_FOUND') forgetAvatar(savedId);
    showError(message);
    endCall();
  }
}

function showPeers(peers: PeerInfo[]): void {
  for (const p of peers) {
    tiles.ensure(p.peerId, p.displayName);
    for (const prod of p.producers) if (prod.source !== 'screen') tiles.setMuted(p.peerId, prod.kind, prod.paused);
    showAvatar(p);
    tiles.setConnection(p.peerId, p.connection);
  }
}

function showConnection(state: 'connected' | 'reconnecting' | 'offline', reason?: string): void {
  // after `server:shutdown` the badge says so until the page is back in the room (or gave up)
  const restarting = state === 'reconnecting' && (reason === SERVER_RESTARTING || connectionEl.dataset['reason'] === SERVER_RESTARTING);
  connectionEl.hidden = state === 'offline' && callSection.hidden;
  connectionEl.dataset['state'] = state;
  if (restarting) connectionEl.dataset['reason'] = SERVER_RESTARTING;
  else delete connectionEl.dataset['reason'];
  connectionEl.textContent = state === 'connected' ? 'connected' : restarting ? 'server restarting…' : state === 'reconnecting' ? 'reconnecting…' : 'offline';
  if (state === 'connected' && statusEl.textContent?.startsWith('Connection lost')) setStatus('Connected');
}

/** The owner's page says when its personal avatar could not be used and the photo avatar shows instead. */
function showOwnFallback(avatar: PeerInfo['avatar']): void {
  const f = avatar?.fallback;
  avatarNotice.hidden = !f;
  avatarNotice.dataset['code'] = f?.code ?? '';
  avatarNotice.textContent = f ? `Your personal avatar is not used: ${f.message} (${f.code}). Everyone sees your photo avatar instead.` : '';
}

function endCall(): void {
  showOwnFallback(undefined);
  connectionEl.hidden = true;
  tracker?.close();
  tracker = undefined;
  motionSend = undefined;
  camButton.hidden = false;
  camButton.disabled = false;
  micButton.disabled = false;
  inCallDevices.hide();
  qualityMonitor.stop();
  tiles.clear();
  tiles.setActiveSpeaker(null);
  screenShare.reset();
  chat.setOpen(false);
  for (const t of localStream?.getTracks() ?? []) t.stop();
  localStream = null;
  client = undefined;
  form.hidden = false;
  callSection.hidden = true;
  joinButton.disabled = false;
  setStatus('');
  void refreshSavedAvatar();
  void preJoin.start();
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const room = roomIdSchema.safeParse(roomInput.value);
  const name = displayNameSchema.safeParse(nameInput.value);
  if (!room.success) return showError('Room name: use 1–64 letters, digits, spaces, "_", "." or "-".');
  if (!name.success) return showError('Your name: 1–48 characters.');
  void join(room.data, name.data);
});

async function toggle(kind: 'audio' | 'video', button: HTMLButtonElement, labels: [string, string]): Promise<void> {
  muted[kind] = !muted[kind];
  button.setAttribute('aria-pressed', String(muted[kind]));
  button.textContent = muted[kind] ? labels[1] : labels[0];
  button.setAttribute('aria-label', `${button.textContent} (${kind === 'audio' ? 'M' : 'V'})`);
  if (client?.peerId) tiles.setMuted(client.peerId, kind, muted[kind]);
  try {
    await client?.setMuted(kind, muted[kind]);
  } catch (err) {
    showError(`Could not change ${kind} state: ${(err as Error).message}`);
  }
}
/**
 * Avatar mode: the camera is not published, it drives the face tracker. Off: stop tracking and the
 * camera itself (its light goes off) and tell the server, so everyone sees the avatar is paused while
 * the worker idles it (neutral face, blinks). On: a new camera track and tracker, same neutral face.
 */
async function setAvatarCamera(on: boolean): Promise<void> {
  const c = client;
  const stream = localStream;
  if (!c || !stream) return;
  if (!on) {
    avatarNeutral = tracker?.neutral ?? avatarNeutral;
    tracker?.close();
    tracker = undefined;
    for (const t of stream.getVideoTracks()) {
      t.stop();
      stream.removeTrack(t);
    }
    await c.setAvatarPaused(true);
    return;
  }
  await startAvatarCamera(c, stream, preJoin.choice().videoinput);
  await c.setAvatarPaused(false);
}

/** Avatar mode: open a camera (this device, if given) and drive a new face tracker with it (same neutral face). */
async function startAvatarCamera(c: CallClient, stream: MediaStream, deviceId: string | undefined): Promise<void> {
  const camera = (await navigator.mediaDevices.getUserMedia({ video: deviceConstraint(deviceId, videoConstraints()) })).getVideoTracks()[0];
  if (!camera) throw new Error('no camera track');
  if (client !== c) {
    camera.stop();
    return;
  }
  stream.addTrack(camera);
  const { FaceTracker } = await loadFaceTracker();
  const t = await FaceTracker.create({ stream: new MediaStream([camera]) });
  if (avatarNeutral) t.setNeutral(avatarNeutral);
  t.onMotion(sendMotionFrame);
  t.start();
  tracker = t;
}

/**
 * Another camera or microphone during the call, without rejoining: the published track is replaced
 * (RTCRtpSender.replaceTrack); in avatar mode the new camera feeds a new face tracker. Remembered as the choice.
 */
async function switchDevice(kind: 'audio' | 'video', deviceId: string): Promise<void> {
  const c = client;
  const stream = localStream;
  if (!c || !stream) return;
  saveDeviceChoice(kind === 'video' ? 'videoinput' : 'audioinput', deviceId);
  const old = stream.getTracks().find((t) => t.kind === kind);
  if (kind === 'video' && callMode === 'avatar') {
    if (muted.video || !old) return; // the camera is off: the choice applies when it is started
    avatarNeutral = tracker?.neutral ?? avatarNeutral;
    tracker?.close();
    tracker = undefined;
    old.stop();
    stream.removeTrack(old);
    await startAvatarCamera(c, stream, deviceId);
    return;
  }
  if (!old) return;
  const constraints = kind === 'video' ? { video: deviceConstraint(deviceId, videoConstraints()) } : { audio: deviceConstraint(deviceId) };
  const next = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks().find((t) => t.kind === kind);
  if (!next) throw new Error(`no ${kind} track`);
  if (client !== c) {
    next.stop();
    return;
  }
  await c.replaceTrack(old, next);
  // The client swapped the track in the stream it published; ours may be another stream (avatar modes).
  if (stream.getTracks().includes(old)) {
    stream.removeTrack(old);
    stream.addTrack(next);
  }
  old.stop();
  // Our own tile shows our camera (not when it shows our avatar's video).
  if (kind === 'audio' || callMode === 'camera') tiles.addTrack(c.peerId!, next);
}

async function toggleAvatarCamera(): Promise<void> {
  camButton.disabled = true;
  const off = !muted.video;
  try {
    await setAvatarCamera(!off);
    muted.video = off;
    camButton.setAttribute('aria-pressed', String(off));
    camButton.textContent = off ? 'Start camera' : 'Stop camera';
  } catch (err) {
    showError(off ? `Could not stop the camera: ${(err as Error).message}` : mediaErrorMessage(err));
  } finally {
    camButton.disabled = false;
  }
}

micButton.addEventListener('click', () => void toggle('audio', micButton, ['Mute mic', 'Unmute mic']));
camButton.addEventListener('click', () => void (callMode === 'avatar' ? toggleAvatarCamera() : toggle('video', camButton, ['Stop camera', 'Start camera'])));
leaveButton.addEventListener('click', () => {
  const c = client;
  endCall();
  void c?.leave();
});
window.addEventListener('pagehide', () => void client?.leave());
const shortcuts = new Shortcuts(
  [
    { key: 'm', label: 'mute or unmute your microphone', run: () => micButton.disabled || micButton.click() },
    { key: 'v', label: 'stop or start your camera', run: () => camButton.disabled || camButton.hidden || camButton.click() },
    { key: 'L', label: 'leave the call', run: () => leaveButton.click() },
  ],
  $('shortcut-help'),
  () => !callSection.hidden,
);
$<HTMLButtonElement>('help-toggle').addEventListener('click', () => shortcuts.toggleHelp());

/**
 * Highest counter values seen per receive connection and mid: a browser's getStats() may leave an
 * inbound-rtp entry out of one report (Firefox does, for a moment), and a sum over the entries of
 * one report would then go backwards. Counters only grow, so each consumer (a recycled mid gets a
 * new one) counts its highest value.
 */
const counterPeaks = new WeakMap<RTCPeerConnection, Map<string, { framesDecoded: number; audioSamples: number; audioBytes: number }>>();

function peakCounters(pc: RTCPeerConnection, consumerId: string, framesDecoded: number, audioSamples: number, audioBytes: number): { framesDecoded: number; audioSamples: number; audioBytes: number } {
  let byConsumer = counterPeaks.get(pc);
  if (!byConsumer) counterPeaks.set(pc, (byConsumer = new Map()));
  const prev = byConsumer.get(consumerId);
  const next = prev
    ? { framesDecoded: Math.max(prev.framesDecoded, framesDecoded), audioSamples: Math.max(prev.audioSamples, audioSamples), audioBytes: Math.max(prev.audioBytes, audioBytes) }
    : { framesDecoded, audioSamples, audioBytes };
  byConsumer.set(consumerId, next);
  return next;
}

/** Per remote tile: decoded video frames and received audio, from getStats(). */
async function remoteStats(): Promise<unknown> {
  const c = client;
  const pc = c?.receivePeerConnection;
  if (!c || !pc) return { joined: false, tiles: [] };
  const report = await pc.getStats();
  const byMid = new Map(c.remoteTracks.map((t) => [t.mid, t]));
  const perPeer = new Map<string, { peerId: string; framesDecoded: number; frameWidth: number; audioSamples: number; audioBytes: number; packetsLost: number }>();
  report.forEach((s: Record<string, unknown>) => {
    if (s['type'] !== 'inbound-rtp') return;
    const remote = byMid.get(String(s['mid']));
    if (!remote) return;
    let entry = perPeer.get(remote.peerId);
    if (!entry) perPeer.set(remote.peerId, (entry = { peerId: remote.peerId, framesDecoded: 0, frameWidth: 0, audioSamples: 0, audioBytes: 0, packetsLost: 0 }));
    entry.packetsLost += Number(s['packetsLost'] ?? 0);
    if (s['kind'] === 'video') {
      entry.frameWidth = Math.max(entry.frameWidth, Number(s['frameWidth'] ?? 0));
    }
    const kind = s['kind'] === 'video' ? 'video' : 'audio';
    peakCounters(pc, remote.consumerId, kind === 'video' ? Number(s['framesDecoded'] ?? 0) : 0, kind === 'audio' ? Number(s['totalSamplesReceived'] ?? 0) : 0, kind === 'audio' ? Number(s['bytesReceived'] ?? 0) : 0);
  });
  // every consumer of a tile counts its highest value so far, also when this report left its entry out
  const peaks = counterPeaks.get(pc);
  for (const remote of c.remoteTracks) {
    const p = peaks?.get(remote.consumerId);
    if (!p) continue;
    let entry = perPeer.get(remote.peerId);
    if (!entry) perPeer.set(remote.peerId, (entry = { peerId: remote.peerId, framesDecoded: 0, frameWidth: 0, audioSamples: 0, audioBytes: 0, packetsLost: 0 }));
    entry.framesDecoded += p.framesDecoded;
    entry.audioSamples += p.audioSamples;
    entry.audioBytes += p.audioBytes;
  }
  const tileStats = new Map(tiles.stats().map((t) => [t.peerId, t]));
  return {
    joined: c.joined,
    peerId: c.peerId,
    joinStartedAt: c.joinStartedAt,
    now: performance.now(),
    tiles: [...perPeer.values()].map((p) => ({ ...p, displayName: tileStats.get(p.peerId)?.displayName ?? '', firstFrameAt: tileStats.get(p.peerId)?.firstFrameAt ?? null })),
    visibleTiles: [...document.querySelectorAll('#tiles .tile:not(.local)')].map((el) => (el as HTMLElement).dataset['peerId']),
  };
}

declare global {
  interface Window {
    avatarSfu: {
      remoteStats: typeof remoteStats;
      client: () => CallClient | undefined;
      tracker: () => FaceTracker | undefined;
      /** The local camera/mic tracks and their state (tests: is the camera really off?). */
      localTracks: () => { kind: string; readyState: string; enabled: boolean }[];
    };
  }
}
window.avatarSfu = {
  remoteStats,
  client: () => client,
  tracker: () => tracker,
  localTracks: () => (localStream?.getTracks() ?? []).map((t) => ({ kind: t.kind, readyState: t.readyState, enabled: t.enabled })),
};
