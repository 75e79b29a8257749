/**
 * The "Share screen" / "Stop sharing" button: getDisplayMedia, published as an additional video
 * producer marked "screen" (CallClient.startScreenShare). The browser's own "stop sharing" ends the
 * track, which stops the share like the button does.
 */
import type { CallClient } from '../../../call/src/CallClient.ts';

export interface ScreenShareControlOptions {
  button: HTMLButtonElement;
  client: () => CallClient | undefined;
  /** The share started (show it locally) or stopped. */
  onChange: (track: MediaStreamTrack | null) => void;
  onError: (message: string) => void;
}

export class ScreenShareControl {
  readonly #opts: ScreenShareControlOptions;
  #track: MediaStreamTrack | null = null;
  #busy = false;

  constructor(opts: ScreenShareControlOptions) {
    this.#opts = opts;
    opts.button.hidden = !navigator.mediaDevices?.getDisplayMedia;
    opts.button.addEventListener('click', () => void (this.#track ? this.stop() : this.start()));
    this.#render();
  }

  get sharing(): boolean {
    return this.#track !== null;
  }

  async start(): Promise<void> {
    const c = this.#opts.client();
    if (!c || this.#busy || this.#track) return;
    this.#busy = true;
    this.#render();
    let track: MediaStreamTrack | undefined;
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
      track = stream.getVideoTracks()[0];
      if (!track) throw new Error('no video in the shared screen');
      track.addEventListener('ended', () => this.#ended(track!));
      await c.startScreenShare(track);
      this.#track = track;
      this.#opts.onChange(track);
    } catch (err) {
      track?.stop();
      const name = (err as { name?: string }).name;
      if (name !== 'NotAllowedError' && name !== 'AbortError') this.#opts.onError(`Could not share the screen: ${(err as Error).message}`);
    } finally {
      this.#busy = false;
      this.#render();
    }
  }

  async stop(): Promise<void> {
    const track = this.#track;
    if (!track) return;
    this.#track = null;
    this.#render();
    this.#opts.onChange(null);
    await this.#opts.client()?.stopScreenShare();
  }

  /** The call ended: forget the share (the client already stopped it). */
  reset(): void {
    this.#track?.stop();
    this.#track = null;
    this.#render();
  }

  #ended(track: MediaStreamTrack): void {
    if (this.#track === track) void this.stop();
  }

  #render(): void {
    const b = this.#opts.button;
    b.disabled = this.#busy;
    b.textContent = this.#track ? 'Stop sharing' : 'Share screen';
    b.setAttribute('aria-pressed', String(this.#track !== null));
  }
}
