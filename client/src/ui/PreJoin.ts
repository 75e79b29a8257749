/**
 * The pre-join screen: a preview of the camera (the camera that will drive the avatar, in avatar mode;
 * none in voice mode), a microphone level meter, pickers for camera, microphone and speaker (remembered),
 * and "join without camera/mic". When no device could be opened, joining is blocked with the reason
 * unless the user chose to join without them.
 */
import { deviceConstraint, fillPicker, listDevices, loadDeviceChoices, saveDeviceChoice, showSpeakerLimitation, speakerLimitation, type DeviceKind } from './DeviceChoices.ts';
import { MicLevelMeter } from './MicLevelMeter.ts';
import { mediaErrorMessage } from './mediaErrors.ts';

export interface PreJoinElements {
  video: HTMLVideoElement;
  meter: HTMLElement;
  camera: HTMLSelectElement;
  mic: HTMLSelectElement;
  speaker: HTMLSelectElement;
  noDevices: HTMLInputElement;
  message: HTMLElement;
}

export interface PreJoinChoice {
  /** Join with no camera and no microphone (listen and watch only). */
  noDevices: boolean;
  videoinput: string | undefined;
  audioinput: string | undefined;
  audiooutput: string | undefined;
}

export class PreJoin {
  #stream: MediaStream | null = null;
  #error: string | null = null;
  #active = false;
  #generation = 0;
  readonly #meter: MicLevelMeter;

  constructor(
    private readonly els: PreJoinElements,
    private readonly opts: { wantsVideo: () => boolean; videoConstraints: () => MediaTrackConstraints; onSpeaker: (sinkId: string) => void },
  ) {
    this.#meter = new MicLevelMeter(els.meter);
    const pickers: [HTMLSelectElement, DeviceKind][] = [
      [els.camera, 'videoinput'],
      [els.mic, 'audioinput'],
      [els.speaker, 'audiooutput'],
    ];
    for (const [select, kind] of pickers) {
      select.addEventListener('change', () => {
        saveDeviceChoice(kind, select.value);
        if (kind === 'audiooutput') opts.onSpeaker(select.value);
        else void this.refresh();
      });
    }
    els.noDevices.addEventListener('change', () => void this.refresh());
    showSpeakerLimitation(els.speaker, speakerLimitation(Number.POSITIVE_INFINITY)); // no setSinkId: say so before the devices are listed
  }

  /** Why joining is not possible now (null: it is). */
  blockedReason(): string | null {
    if (this.els.noDevices.checked) return null;
    return this.#error ? `${this.#error} Or tick "join without camera and microphone".` : null;
  }

  choice(): PreJoinChoice {
    const v = (s: HTMLSelectElement): string | undefined => s.value || undefined;
    return { noDevices: this.els.noDevices.checked, videoinput: v(this.els.camera), audioinput: v(this.els.mic), audiooutput: v(this.els.speaker) };
  }

  /** Show the screen: open the preview with the remembered (or chosen) devices. */
  async start(): Promise<void> {
    this.#active = true;
    await this.refresh();
  }

  /** Leave the screen (joining, or the call started): release the preview camera and mic. */
  stop(): void {
    this.#active = false;
    this.#generation++;
    this.#release();
  }

  async refresh(): Promise<void> {
    if (!this.#active) return;
    const gen = ++this.#generation;
    this.#release();
    const saved = loadDeviceChoices();
    if (this.els.noDevices.checked) {
      this.#error = null;
      this.#showMessage(null);
      this.els.video.hidden = true;
      return;
    }
    const wantsVideo = this.opts.wantsVideo();
    let stream: MediaStream | null = null;
    try {
      if (!navigator.mediaDevices?.getUserMedia) throw Object.assign(new Error('no mediaDevices'), { name: 'SecurityError' });
      const chosen = this.choice();
      stream = await navigator.mediaDevices.getUserMedia({
        audio: deviceConstraint(chosen.audioinput ?? saved.audioinput),
        video: wantsVideo ? deviceConstraint(chosen.videoinput ?? saved.videoinput, this.opts.videoConstraints()) : false,
      });
      this.#error = null;
    } catch (err) {
      this.#error = mediaErrorMessage(err);
    }
    if (gen !== this.#generation) {
      for (const t of stream?.getTracks() ?? []) t.stop();
      return;
    }
    this.#stream = stream;
    // Labels (and real ids) are only listed once access was granted.
    const devices = await listDevices().catch(() => ({ videoinput: [], audioinput: [], audiooutput: [] }));
    if (gen !== this.#generation) return;
    const actual = (kind: 'video' | 'audio'): string | undefined => stream?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId;
    fillPicker(this.els.camera, devices.videoinput, actual('video') ?? saved.videoinput);
    fillPicker(this.els.mic, devices.audioinput, actual('audio') ?? saved.audioinput);
    const sink = fillPicker(this.els.speaker, devices.audiooutput, saved.audiooutput);
    showSpeakerLimitation(this.els.speaker, speakerLimitation(devices.audiooutput.length));
    this.opts.onSpeaker(sink);
    this.els.video.hidden = !stream || !wantsVideo;
    this.els.video.srcObject = stream;
    if (stream) void this.els.video.play().catch(() => undefined);
    this.#meter.attach(stream?.getAudioTracks()[0] ?? null);
    this.#showMessage(this.blockedReason());
  }

  #showMessage(text: string | null): void {
    this.els.message.hidden = text === null;
    this.els.message.textContent = text ?? '';
  }

  #release(): void {
    this.#meter.detach();
    for (const t of this.#stream?.getTracks() ?? []) t.stop();
    this.#stream = null;
    this.els.video.srcObject = null;
  }
}
