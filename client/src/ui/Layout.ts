/**
 * Grid and speaker layouts of the call tiles, pin and fullscreen, per-tile volume.
 *
 * Speaker layout: one tile large, the others in a strip. The large tile is, in order: the pinned tile,
 * a screen share (`data-source="screen"`), the active speaker (class `active-speaker`), the first
 * remote tile, the first tile. It follows those markers by observing the tiles' class and attribute
 * changes, so whoever sets them (speaker detection, screen share) needs no hook here.
 * Every tile gets a pin and a fullscreen button; remote tiles a volume slider. Avatar tiles keep their
 * free-view panel (it is a child of the tile, whatever the layout).
 */
export type LayoutMode = 'grid' | 'speaker';

export class Layout {
  #mode: LayoutMode = 'grid';
  #pinned: string | null = null;
  readonly #observer: MutationObserver;

  constructor(private readonly container: HTMLElement) {
    this.#observer = new MutationObserver(() => this.update());
    this.#observer.observe(container, { childList: true, subtree: true, attributes: true, attributeFilter: ['class', 'data-source'] });
  }

  get mode(): LayoutMode {
    return this.#mode;
  }

  get pinned(): string | null {
    return this.#pinned;
  }

  setMode(mode: LayoutMode): void {
    this.#mode = mode;
    this.update();
  }

  /** Pin a tile (it is the large one in the speaker layout; pinning switches to it), or unpin with null. */
  pin(peerId: string | null): void {
    this.#pinned = peerId;
    if (peerId) this.#mode = 'speaker';
    this.update();
  }

  /** The tile shown large in the speaker layout. */
  mainTile(): HTMLElement | undefined {
    const tiles = [...this.container.querySelectorAll<HTMLElement>(':scope > .tile')];
    return (
      tiles.find((t) => this.#pinned !== null && t.dataset['peerId'] === this.#pinned) ??
      tiles.find((t) => t.dataset['source'] === 'screen') ??
      tiles.find((t) => t.classList.contains('active-speaker')) ??
      tiles.find((t) => !t.classList.contains('local')) ??
      tiles[0]
    );
  }

  update(): void {
    const tiles = [...this.container.querySelectorAll<HTMLElement>(':scope > .tile')];
    if (this.#pinned !== null && !tiles.some((t) => t.dataset['peerId'] === this.#pinned)) this.#pinned = null;
    setClass(this.container, 'layout-speaker', this.#mode === 'speaker');
    setClass(this.container, 'layout-grid', this.#mode === 'grid');
    const main = this.#mode === 'speaker' ? this.mainTile() : undefined;
    for (const t of tiles) {
      this.#addControls(t);
      setClass(t, 'main', t === main);
      const pinned = t.dataset['peerId'] === this.#pinned;
      setClass(t, 'pinned', pinned);
      const pinButton = t.querySelector<HTMLButtonElement>('.tile-controls .pin');
      if (pinButton && pinButton.getAttribute('aria-pressed') !== String(pinned)) {
        pinButton.setAttribute('aria-pressed', String(pinned));
        pinButton.textContent = pinned ? 'Unpin' : 'Pin';
      }
    }
  }

  #addControls(tile: HTMLElement): void {
    if (tile.querySelector(':scope > .tile-controls')) return;
    const name = () => tile.querySelector('.name')?.textContent ?? 'participant';
    const bar = document.createElement('div');
    bar.className = 'tile-controls';
    const pin = button('Pin', 'pin', () => this.pin(this.#pinned === tile.dataset['peerId'] ? null : (tile.dataset['peerId'] ?? null)));
    pin.setAttribute('aria-pressed', 'false');
    pin.setAttribute('aria-label', `Pin ${name()}`);
    const full = button('Full', 'fullscreen', () => {
      if (document.fullscreenElement === tile) void document.exitFullscreen().catch(() => undefined);
      else void tile.requestFullscreen?.().catch(() => undefined);
    });
    full.setAttribute('aria-label', `Show ${name()} full screen`);
    bar.append(pin, full);
    if (!tile.classList.contains('local')) {
      const volume = document.createElement('input');
      volume.type = 'range';
      volume.min = '0';
      volume.max = '1';
      volume.step = '0.05';
      volume.value = '1';
      volume.className = 'volume';
      volume.setAttribute('aria-label', `Volume of ${name()}`);
      volume.addEventListener('input', () => {
        const video = tile.querySelector('video');
        if (video) video.volume = Number(volume.value);
      });
      bar.append(volume);
    }
    tile.append(bar);
  }

  close(): void {
    this.#observer.disconnect();
  }
}

/** Toggle a class only when it changes (a no-op write would still be an observed mutation). */
function setClass(el: HTMLElement, name: string, on: boolean): void {
  if (el.classList.contains(name) !== on) el.classList.toggle(name, on);
}

function button(text: string, className: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.textContent = text;
  b.addEventListener('click', (ev) => {
    ev.stopPropagation();
    onClick();
  });
  return b;
}
