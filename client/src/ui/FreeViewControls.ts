/**
 * Free view of an avatar tile: drag the tile (or use the sliders) to turn the head for yourself;
 * "Reset" returns to the driven pose; the owner can make the current view everyone's default.
 * Requests are throttled to ~15/s during a drag and only sent when the view changes by ≥ 1°.
 */
export interface ViewDeg {
  yaw: number;
  pitch: number;
  roll: number;
}

export interface FreeViewOptions {
  tile: HTMLElement;
  isOwner: boolean;
  send: (scope: 'personal' | 'default', view: ViewDeg | null) => Promise<unknown>;
  onError: (message: string) => void;
}

const LIMITS: ViewDeg = { yaw: 30, pitch: 20, roll: 20 };
const SEND_INTERVAL_MS = 66;

export function createFreeViewPanel(opts: FreeViewOptions): HTMLElement {
  const panel = document.createElement('div');
  panel.className = 'view-panel';
  const view: ViewDeg = { yaw: 0, pitch: 0, roll: 0 };
  const sliders = {} as Record<keyof ViewDeg, HTMLInputElement>;
  for (const axis of ['yaw', 'pitch', 'roll'] as const) {
    const label = document.createElement('label');
    label.textContent = axis;
    const input = document.createElement('input');
    input.type = 'range';
    input.min = String(-LIMITS[axis]);
    input.max = String(LIMITS[axis]);
    input.step = '1';
    input.value = '0';
    input.dataset['axis'] = axis;
    input.addEventListener('input', () => {
      view[axis] = Number(input.value);
      schedule();
    });
    label.append(input);
    panel.append(label);
    sliders[axis] = input;
  }
  const reset = document.createElement('button');
  reset.type = 'button';
  reset.className = 'reset-view';
  reset.textContent = 'Reset view';
  reset.addEventListener('click', () => {
    view.yaw = view.pitch = view.roll = 0;
    sync();
    personal = false;
    lastSent = '';
    opts.send('personal', null).catch((e: Error) => opts.onError(e.message));
  });
  panel.append(reset);
  if (opts.isOwner) {
    const def = document.createElement('button');
    def.type = 'button';
    def.className = 'default-view';
    def.textContent = 'Set as everyone’s view';
    def.addEventListener('click', () => {
      opts.send('default', { ...view }).catch((e: Error) => opts.onError(e.message));
    });
    panel.append(def);
  }

  let personal = false;
  let lastSent = '';
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastAt = 0;
  const flush = (): void => {
    timer = undefined;
    const key = `${Math.round(view.yaw)},${Math.round(view.pitch)},${Math.round(view.roll)}`;
    if (key === lastSent) return;
    lastSent = key;
    lastAt = performance.now();
    personal = true;
    opts.send('personal', { yaw: Math.round(view.yaw), pitch: Math.round(view.pitch), roll: Math.round(view.roll) }).catch((e: Error) => opts.onError(e.message));
  };
  const schedule = (): void => {
    if (timer) return;
    timer = setTimeout(flush, Math.max(0, SEND_INTERVAL_MS - (performance.now() - lastAt)));
  };
  const sync = (): void => {
    for (const axis of ['yaw', 'pitch', 'roll'] as const) sliders[axis].value = String(Math.round(view[axis]));
  };

  // Drag on the tile: 1 px ≈ 0.3°.
  let drag: { x: number; y: number; yaw: number; pitch: number } | undefined;
  opts.tile.addEventListener('pointerdown', (ev) => {
    if ((ev.target as HTMLElement).closest('.view-panel')) return;
    drag = { x: ev.clientX, y: ev.clientY, yaw: view.yaw, pitch: view.pitch };
    opts.tile.setPointerCapture(ev.pointerId);
  });
  opts.tile.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    view.yaw = clamp(drag.yaw + (ev.clientX - drag.x) * 0.3, LIMITS.yaw);
    view.pitch = clamp(drag.pitch - (ev.clientY - drag.y) * 0.3, LIMITS.pitch);
    sync();
    schedule();
  });
  const end = (): void => {
    drag = undefined;
  };
  opts.tile.addEventListener('pointerup', end);
  opts.tile.addEventListener('pointercancel', end);
  void personal;
  return panel;
}

function clamp(v: number, l: number): number {
  return Math.max(-l, Math.min(l, v));
}
