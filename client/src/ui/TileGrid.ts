/** Video tiles: one per participant (the local one first), with name and mute badges. */
import type { AvatarQuality, MediaKind } from '../../../protocol/src/signaling.ts';

export interface TileStats {
  peerId: string;
  displayName: string;
  /** performance.now() of the first rendered video frame, if any. */
  firstFrameAt: number | null;
}

interface Tile {
  el: HTMLElement;
  video: HTMLVideoElement;
  stream: MediaStream;
  nameEl: HTMLElement;
  badges: HTMLElement;
  muted: Record<MediaKind, boolean>;
  firstFrameAt: number | null;
  displayName: string;
  /** Free-view controls, present on avatar tiles. */
  viewPanel: HTMLElement | undefined;
}

export interface AvatarTileInfo {
  /** The source photo shown until the video arrives: only on the owner's own tile (others never get the face data). */
  photoUrl?: string | undefined;
  state: 'starting' | 'live' | 'recovering' | 'failed';
  /** Why a failed avatar failed. */
  reason?: string | undefined;
  /** The owner stopped the camera driving it. */
  paused?: boolean | undefined;
}

export class TileGrid {
  readonly #tiles = new Map<string, Tile>();
  /** The room's active speaker (its tile has the class `active-speaker`), also for tiles made later. */
  #activeSpeaker: string | null = null;
  /** Screen-share tiles by peer id. */
  readonly #screens = new Map<string, HTMLElement>();

  constructor(private readonly container: HTMLElement) {}

  ensure(peerId: string, displayName: string, local = false): Tile {
    let tile = this.#tiles.get(peerId);
    if (tile) {
      if (displayName && tile.displayName !== displayName) {
        tile.displayName = displayName;
        tile.nameEl.textContent = local ? `${displayName} (you)` : displayName;
      }
      return tile;
    }
    const el = document.createElement('div');
    el.className = local ? 'tile local' : 'tile';
    el.dataset['peerId'] = peerId;
    if (peerId === this.#activeSpeaker) el.classList.add('active-speaker');
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = local;
    const placeholder = document.createElement('div');
    placeholder.className = 'placeholder';
    placeholder.textContent = (displayName[0] ?? '?').toUpperCase();
    const nameEl = document.createElement('div');
    nameEl.className = 'name';
    nameEl.textContent = local ? `${displayName} (you)` : displayName;
    const badges = document.createElement('div');
    badges.className = 'badges';
    el.append(video, placeholder, nameEl, badges);
    if (local) this.container.prepend(el);
    else this.container.append(el);
    const stream = new MediaStream();
    video.srcObject = stream;
    tile = { el, video, stream, nameEl, badges, muted: { audio: false, video: false }, firstFrameAt: null, displayName, viewPanel: undefined };
    const t = tile;
    const onFrame = (): void => {
      if (t.firstFrameAt === null) t.firstFrameAt = performance.now();
      el.classList.add('has-video');
    };
    if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(onFrame);
    video.addEventListener('loadeddata', onFrame);
    this.#tiles.set(peerId, tile);
    return tile;
  }

  addTrack(peerId: string, track: MediaStreamTrack): void {
    const tile = this.ensure(peerId, this.#tiles.get(peerId)?.displayName ?? '');
    for (const old of tile.stream.getTracks()) if (old.kind === track.kind && old !== track) tile.stream.removeTrack(old);
    if (!tile.stream.getTracks().includes(track)) tile.stream.addTrack(track);
    // Re-attach so the element picks up tracks added after playback started.
    tile.video.srcObject = tile.stream;
    tile.video.play().catch(() => undefined);
  }

  /** Replace whatever video the tile shows (e.g. the owner's camera preview by its own avatar). */
  replaceVideo(peerId: string, track: MediaStreamTrack): void {
    const tile = this.#tiles.get(peerId);
    if (!tile) return;
    for (const old of tile.stream.getVideoTracks()) tile.stream.removeTrack(old);
    tile.stream.addTrack(track);
    tile.video.srcObject = tile.stream;
    tile.el.classList.remove('local');
    tile.video.play().catch(() => undefined);
  }

  removeTrack(peerId: string, track: MediaStreamTrack): void {
    const tile = this.#tiles.get(peerId);
    if (!tile) return;
    tile.stream.removeTrack(track);
    if (track.kind === 'video' && tile.stream.getVideoTracks().length === 0) tile.el.classList.remove('has-video');
  }

  /**
   * Mark a tile as an avatar: the source photo shows until the rendered video arrives (and behind it
   * while a new renderer takes over), with the avatar's state.
   */
  setAvatar(peerId: string, avatar: AvatarTileInfo): void {
    const tile = this.#tiles.get(peerId);
    if (!tile) return;
    tile.el.classList.add('avatar');
    tile.el.dataset['avatarState'] = avatar.state;
    tile.el.dataset['avatarPaused'] = String(Boolean(avatar.paused));
    if (avatar.photoUrl) tile.el.style.backgroundImage = `url(${JSON.stringify(avatar.photoUrl)})`;
    let state = tile.el.querySelector<HTMLElement>('.state');
    if (!state) {
      state = document.createElement('span');
      state.className = 'state';
      tile.el.append(state);
    }
    const text = { live: 'avatar', starting: 'avatar starting…', recovering: 'avatar reconnecting…', failed: 'avatar unavailable' }[avatar.state];
    state.textContent = avatar.state === 'failed' && avatar.reason ? `${text}: ${avatar.reason}` : avatar.paused ? `${text} paused (camera off)` : text;
  }

  /**
   * The owner's own avatar tile: a line saying that the worker renders it smaller or slower than
   * nominal because it could not hold the frame rate (quality of service); removed when restored.
   */
  setAvatarQuality(peerId: string, quality: AvatarQuality): void {
    const tile = this.#tiles.get(peerId);
    if (!tile) return;
    let line = tile.el.querySelector<HTMLElement>('.quality');
    if (quality.level === 0) {
      line?.remove();
      delete tile.el.dataset['avatarQuality'];
      return;
    }
    if (!line) {
      line = document.createElement('span');
      line.className = 'quality';
      tile.el.append(line);
    }
    tile.el.dataset['avatarQuality'] = String(quality.level);
    line.textContent = `avatar reduced to ${quality.size}px at ${Math.round(quality.fps * 10) / 10} fps (the renderer is overloaded)`;
  }

  /** Highlight the active speaker's tile (class `active-speaker`) and no other; null: none. */
  setActiveSpeaker(peerId: string | null): void {
    this.#activeSpeaker = peerId;
    for (const [id, tile] of this.#tiles) tile.el.classList.toggle('active-speaker', id === peerId);
  }

  /**
   * A peer's screen share: its own tile (`data-peer-id` = the peer, `data-source="screen"`), shown
   * large (first, spanning the grid), beside the peer's camera/avatar tile.
   */
  addScreen(peerId: string, displayName: string, track: MediaStreamTrack, local = false): HTMLElement {
    this.removeScreen(peerId);
    const el = document.createElement('div');
    el.className = local ? 'tile screen local-screen' : 'tile screen';
    el.dataset['peerId'] = peerId;
    el.dataset['source'] = 'screen';
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true;
    video.srcObject = new MediaStream([track]);
    const nameEl = document.createElement('div');
    nameEl.className = 'name';
    nameEl.textContent = `${displayName || 'Someone'}'s screen${local ? ' (you are sharing)' : ''}`;
    el.append(video, nameEl);
    video.addEventListener('loadeddata', () => el.classList.add('has-video'));
    this.container.prepend(el);
    this.#screens.set(peerId, el);
    video.play().catch(() => undefined);
    return el;
  }

  removeScreen(peerId: string): void {
    const el = this.#screens.get(peerId);
    if (!el) return;
    const video = el.querySelector('video');
    if (video) video.srcObject = null;
    el.remove();
    this.#screens.delete(peerId);
  }

  /** The element of a peer's tile (for attaching controls). */
  element(peerId: string): HTMLElement | undefined {
    return this.#tiles.get(peerId)?.el;
  }

  setViewPanel(peerId: string, panel: HTMLElement): void {
    const tile = this.#tiles.get(peerId);
    if (!tile || tile.viewPanel) return;
    tile.viewPanel = panel;
    tile.el.append(panel);
  }

  setMuted(peerId: string, kind: MediaKind, muted: boolean): void {
    const tile = this.#tiles.get(peerId);
    if (!tile) return;
    tile.muted[kind] = muted;
    tile.badges.replaceChildren();
    if (tile.muted.audio) tile.badges.append(badge('mic off'));
    if (tile.muted.video) tile.badges.append(badge('camera off'));
    tile.el.dataset['audioMuted'] = String(tile.muted.audio);
    tile.el.dataset['videoMuted'] = String(tile.muted.video);
  }

  /** The peer lost its connection and may come back ("reconnecting"), or is connected (undefined). */
  setConnection(peerId: string, state: 'reconnecting' | undefined): void {
    const tile = this.#tiles.get(peerId);
    if (!tile) return;
    let label = tile.el.querySelector<HTMLElement>('.connection');
    if (!label) {
      label = document.createElement('div');
      label.className = 'connection';
      label.textContent = 'reconnecting…';
      tile.el.append(label);
    }
    tile.el.classList.toggle('reconnecting', state === 'reconnecting');
    if (state) tile.el.dataset['connection'] = state;
    else delete tile.el.dataset['connection'];
  }

  remove(peerId: string): void {
    const tile = this.#tiles.get(peerId);
    if (!tile) return;
    tile.video.srcObject = null;
    tile.el.remove();
    this.#tiles.delete(peerId);
  }

  clear(): void {
    for (const id of [...this.#tiles.keys()]) this.remove(id);
    for (const id of [...this.#screens.keys()]) this.removeScreen(id);
  }

  stats(): TileStats[] {
    return [...this.#tiles.entries()].map(([peerId, t]) => ({ peerId, displayName: t.displayName, firstFrameAt: t.firstFrameAt }));
  }
}

function badge(text: string): HTMLElement {
  const b = document.createElement('span');
  b.className = 'badge';
  b.textContent = text;
  return b;
}
