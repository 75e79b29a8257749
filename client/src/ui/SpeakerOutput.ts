/**
 * Routes every remote media element in a container to the chosen speaker (setSinkId, where the browser
 * has it), including elements added later.
 */
export class SpeakerOutput {
  #sinkId = '';
  readonly #observer: MutationObserver;

  constructor(private readonly container: HTMLElement) {
    this.#observer = new MutationObserver(() => this.#apply());
    this.#observer.observe(container, { childList: true, subtree: true });
  }

  get sinkId(): string {
    return this.#sinkId;
  }

  set(sinkId: string): void {
    this.#sinkId = sinkId;
    this.#apply();
  }

  #apply(): void {
    // "default" is where an element plays anyway (sinkId ''): leave those elements alone, so the
    // default path (and its audio/video sync) is untouched unless the user picked another speaker.
    const target = this.#sinkId === 'default' ? '' : this.#sinkId;
    for (const el of this.container.querySelectorAll<HTMLMediaElement>('video, audio')) {
      const m = el as HTMLMediaElement & { setSinkId?: (id: string) => Promise<void>; sinkId?: string };
      if (!m.setSinkId || (m.sinkId ?? '') === target) continue;
      m.setSinkId(target).catch(() => undefined);
    }
  }
}
