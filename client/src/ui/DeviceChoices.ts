/**
 * Which camera, microphone and speaker the user picked, remembered in this browser (localStorage), and
 * the pickers (<select>) that list the devices the browser reports.
 */
export type DeviceKind = 'videoinput' | 'audioinput' | 'audiooutput';

export interface DeviceChoices {
  videoinput?: string;
  audioinput?: string;
  audiooutput?: string;
}

const KEY = 'avatar-sfu.devices';

export function loadDeviceChoices(storage: Storage = localStorage): DeviceChoices {
  try {
    const raw: unknown = JSON.parse(storage.getItem(KEY) ?? '{}');
    if (!raw || typeof raw !== 'object') return {};
    const out: DeviceChoices = {};
    for (const k of ['videoinput', 'audioinput', 'audiooutput'] as const) {
      const v = (raw as Record<string, unknown>)[k];
      if (typeof v === 'string' && v.length <= 256) out[k] = v;
    }
    return out;
  } catch {
    return {};
  }
}

export function saveDeviceChoice(kind: DeviceKind, deviceId: string, storage: Storage = localStorage): void {
  storage.setItem(KEY, JSON.stringify({ ...loadDeviceChoices(storage), [kind]: deviceId }));
}

/** The devices of each kind (labels are empty until the page got camera/mic access once). */
export async function listDevices(): Promise<Record<DeviceKind, MediaDeviceInfo[]>> {
  const all = navigator.mediaDevices?.enumerateDevices ? await navigator.mediaDevices.enumerateDevices() : [];
  const by: Record<DeviceKind, MediaDeviceInfo[]> = { videoinput: [], audioinput: [], audiooutput: [] };
  for (const d of all) if (d.deviceId) by[d.kind].push(d);
  return by;
}

/** Whether this browser can route audio to a chosen output device (HTMLMediaElement.setSinkId). */
export const canChooseSpeaker = (): boolean => typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;

/**
 * Why the speaker cannot be chosen here (null: it can): no HTMLMediaElement.setSinkId (Safari, older
 * Firefox), or the browser lists no output devices (Firefox lists them only after
 * selectAudioOutput(); headless browsers have none). Sound then plays on the system default.
 */
export function speakerLimitation(outputs: number): string | null {
  if (!canChooseSpeaker()) return 'your browser cannot choose the speaker: sound plays on the system default';
  if (outputs === 0) return 'your browser lists no speakers to choose from: sound plays on the system default';
  return null;
}

/** Disable a speaker picker and say why next to it (`reason` null: enable it, remove the note). */
export function showSpeakerLimitation(select: HTMLSelectElement, reason: string | null): void {
  const label = select.closest('label') ?? select.parentElement;
  let note = label?.querySelector<HTMLElement>('.speaker-note') ?? null;
  if (reason && !note && label) {
    note = document.createElement('span');
    note.className = 'hint speaker-note';
    label.append(note);
  }
  if (note) {
    note.textContent = reason ?? '';
    note.hidden = reason === null;
  }
  if (reason) select.disabled = true;
}

const FALLBACK_LABEL: Record<DeviceKind, string> = { videoinput: 'Camera', audioinput: 'Microphone', audiooutput: 'Speaker' };

/**
 * Fill a picker with the devices of one kind, selecting `chosen` when it is there (else the first).
 * Returns the selected device id ('' when there is none).
 */
export function fillPicker(select: HTMLSelectElement, devices: MediaDeviceInfo[], chosen: string | undefined): string {
  const previous = chosen ?? select.value;
  select.replaceChildren(
    ...devices.map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${FALLBACK_LABEL[d.kind]} ${i + 1}`;
      return o;
    }),
  );
  if (devices.some((d) => d.deviceId === previous)) select.value = previous;
  select.disabled = devices.length === 0;
  return select.value;
}

/** getUserMedia constraints for one chosen device (ideal, so a device that went away falls back to another). */
export function deviceConstraint(deviceId: string | undefined, base: MediaTrackConstraints = {}): MediaTrackConstraints {
  return deviceId ? { ...base, deviceId: { exact: deviceId } } : base;
}
