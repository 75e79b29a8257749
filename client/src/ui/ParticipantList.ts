/**
 * The participant list: everyone in the call with their mic, camera and avatar state, read from the
 * tiles (data-audio-muted, data-video-muted, class avatar, .name) and kept current by observing them.
 */
export class ParticipantList {
  readonly #observer: MutationObserver;

  constructor(
    private readonly tiles: HTMLElement,
    private readonly list: HTMLElement,
    private readonly countEl: HTMLElement,
  ) {
    this.#observer = new MutationObserver(() => this.render());
    this.#observer.observe(tiles, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-audio-muted', 'data-video-muted', 'data-avatar-state', 'class'], characterData: true });
  }

  render(): void {
    const rows = [...this.tiles.querySelectorAll<HTMLElement>(':scope > .tile')].filter((t) => t.dataset['source'] !== 'screen');
    this.countEl.textContent = String(rows.length);
    this.list.replaceChildren(
      ...rows.map((t) => {
        const li = document.createElement('li');
        li.dataset['peerId'] = t.dataset['peerId'] ?? '';
        const name = document.createElement('span');
        name.className = 'who';
        name.textContent = t.querySelector('.name')?.textContent ?? '';
        const mic = t.dataset['audioMuted'] === 'true' ? 'mic off' : 'mic on';
        const isAvatar = t.classList.contains('avatar');
        const cam = isAvatar ? `avatar${t.dataset['avatarState'] && t.dataset['avatarState'] !== 'live' ? ` (${t.dataset['avatarState']})` : ''}` : t.dataset['videoMuted'] === 'true' || !t.classList.contains('has-video') ? 'camera off' : 'camera on';
        const state = document.createElement('span');
        state.className = 'state';
        state.dataset['mic'] = mic;
        state.dataset['camera'] = cam;
        state.textContent = `${mic} · ${cam}`;
        li.append(name, state);
        return li;
      }),
    );
  }

  close(): void {
    this.#observer.disconnect();
  }
}
