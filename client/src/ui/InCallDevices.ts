/** The camera, microphone and speaker pickers of the call controls: switching needs no rejoin. */
import { fillPicker, showSpeakerLimitation, speakerLimitation, listDevices, loadDeviceChoices, saveDeviceChoice } from './DeviceChoices.ts';

export interface InCallDeviceElements {
  camera: HTMLSelectElement;
  mic: HTMLSelectElement;
  speaker: HTMLSelectElement;
}

export class InCallDevices {
  constructor(
    private readonly els: InCallDeviceElements,
    private readonly opts: {
      /** The device id of the local track of this kind now in use. */
      current: (kind: 'audio' | 'video') => string | undefined;
      switchTo: (kind: 'audio' | 'video', deviceId: string) => Promise<void>;
      onSpeaker: (sinkId: string) => void;
      onError: (message: string) => void;
    },
  ) {
    const wire = (select: HTMLSelectElement, kind: 'audio' | 'video'): void => {
      select.addEventListener('change', () => {
        const id = select.value;
        select.disabled = true;
        void opts
          .switchTo(kind, id)
          .catch((err: unknown) => {
            opts.onError(`Could not switch the ${kind === 'video' ? 'camera' : 'microphone'}: ${(err as Error).message}`);
            const now = opts.current(kind);
            if (now) select.value = now;
          })
          .finally(() => (select.disabled = false));
      });
    };
    wire(els.camera, 'video');
    wire(els.mic, 'audio');
    els.speaker.addEventListener('change', () => {
      saveDeviceChoice('audiooutput', els.speaker.value);
      opts.onSpeaker(els.speaker.value);
    });
  }

  /** List the devices; hide the pickers of kinds the call does not use. */
  async show(use: { camera: boolean; mic: boolean }): Promise<void> {
    const devices = await listDevices().catch(() => ({ videoinput: [], audioinput: [], audiooutput: [] }));
    const saved = loadDeviceChoices();
    fillPicker(this.els.camera, devices.videoinput, this.opts.current('video') ?? saved.videoinput);
    fillPicker(this.els.mic, devices.audioinput, this.opts.current('audio') ?? saved.audioinput);
    fillPicker(this.els.speaker, devices.audiooutput, saved.audiooutput);
    this.#label(this.els.camera).hidden = !use.camera;
    this.#label(this.els.mic).hidden = !use.mic;
    // Shown even where the speaker cannot be chosen: disabled, with a note saying why.
    showSpeakerLimitation(this.els.speaker, speakerLimitation(devices.audiooutput.length));
    this.#label(this.els.speaker).hidden = false;
  }

  hide(): void {
    for (const s of [this.els.camera, this.els.mic, this.els.speaker]) this.#label(s).hidden = true;
  }

  #label(select: HTMLSelectElement): HTMLElement {
    return select.closest('label') ?? select;
  }
}
