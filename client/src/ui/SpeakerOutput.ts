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
    for (const el of this.container.querySelectorAll<HTMLMediaElement>('video, audio')) {
      const m = el as HTMLMediaElement & { setSinkId?: (id: string) => Promise<void>; sinkId?: string };
      if (!m.setSinkId || m.sinkId === this.#sinkId) continue;
      m.setSinkId(this.#sinkId).catch(() => undefined);
    }
  }
}
