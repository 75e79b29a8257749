/**
 * Keyboard shortcuts of the call: M (mic), V (camera), Shift+L (leave: shifted so it is not hit by
 * accident), ? (this help). Never while typing in a field, nor with Ctrl/Alt/Meta (browser shortcuts).
 */
export interface Shortcut {
  /** KeyboardEvent.key, as typed ("m", "L" for Shift+L, "?"). */
  key: string;
  label: string;
  run: () => void;
}

export function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el || !el.tagName) return false;
  return el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName);
}

export class Shortcuts {
  readonly #onKey = (ev: KeyboardEvent): void => {
    if (!this.active() || ev.ctrlKey || ev.altKey || ev.metaKey || ev.repeat || isTyping(ev.target)) return;
    if (ev.key === '?') {
      ev.preventDefault();
      this.toggleHelp();
      return;
    }
    if (ev.key === 'Escape' && !this.help.hidden) {
      this.toggleHelp(false);
      return;
    }
    const s = this.shortcuts.find((x) => x.key === ev.key);
    if (!s) return;
    ev.preventDefault();
    s.run();
  };

  constructor(
    private readonly shortcuts: Shortcut[],
    private readonly help: HTMLElement,
    private readonly active: () => boolean,
  ) {
    const list = document.createElement('dl');
    for (const s of [...shortcuts, { key: '?', label: 'show or hide this help', run: () => undefined }]) {
      const dt = document.createElement('dt');
      const kbd = document.createElement('kbd');
      kbd.textContent = s.key === s.key.toUpperCase() && s.key !== s.key.toLowerCase() ? `Shift+${s.key}` : s.key.toUpperCase();
      dt.append(kbd);
      const dd = document.createElement('dd');
      dd.textContent = s.label;
      list.append(dt, dd);
    }
    help.append(list);
    document.addEventListener('keydown', this.#onKey);
  }

  toggleHelp(open = this.help.hidden): void {
    this.help.hidden = !open;
  }
}
