/** A microphone level meter: the RMS level of an audio track (WebAudio AnalyserNode) drawn as a bar. */
export class MicLevelMeter {
  #ctx: AudioContext | undefined;
  #source: MediaStreamAudioSourceNode | undefined;
  #analyser: AnalyserNode | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** The latest level, 0…1 (tests read it from the bar's `data-level`). */
  level = 0;

  constructor(private readonly bar: HTMLElement) {}

  /** Meter this track (null: stop metering). */
  attach(track: MediaStreamTrack | null): void {
    this.detach();
    if (!track || typeof AudioContext === 'undefined') return;
    const ctx = (this.#ctx ??= new AudioContext());
    void ctx.resume().catch(() => undefined);
    this.#source = ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    this.#source.connect(analyser);
    this.#analyser = analyser;
    const buf = new Float32Array(analyser.fftSize);
    this.#timer = setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      const rms = Math.sqrt(sum / buf.length);
      // dBFS -60…0 mapped to 0…1: speech sits around -30…-10.
      this.level = Math.max(0, Math.min(1, (20 * Math.log10(rms + 1e-9) + 60) / 60));
      this.bar.style.setProperty('--level', this.level.toFixed(3));
      this.bar.dataset['level'] = this.level.toFixed(3);
    }, 100);
  }

  detach(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#source?.disconnect();
    this.#analyser?.disconnect();
    this.#source = undefined;
    this.#analyser = undefined;
    this.level = 0;
    this.bar.style.setProperty('--level', '0');
    this.bar.dataset['level'] = '0';
  }

  close(): void {
    this.detach();
    void this.#ctx?.close().catch(() => undefined);
    this.#ctx = undefined;
  }
}
