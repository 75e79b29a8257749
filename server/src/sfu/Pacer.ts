/**
 * Token-bucket pacer for one receive transport.
 *
 * Packets for a transport are queued and released at most `bitrateBps` (with a burst of
 * `burstMs` worth of bytes), on the transport's own timer. A consumer whose queue reaches
 * `maxQueuePackets` drops its oldest packets (counted) instead of growing without bound, so a slow or
 * stuck consumer never delays what other transports send.
 */
export interface PacerOptions {
  bitrateBps: number;
  maxQueuePackets: number;
  burstMs?: number;
  onDrop?: (count: number) => void;
}

interface Item {
  bytes: number;
  send: () => void;
}

export class Pacer {
  readonly #bytesPerMs: number;
  readonly #burstBytes: number;
  readonly #maxQueue: number;
  readonly #onDrop: ((count: number) => void) | undefined;
  #queue: Item[] = [];
  #head = 0;
  #tokens: number;
  #last = performance.now();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  dropped = 0;
  sent = 0;

  constructor({ bitrateBps, maxQueuePackets, burstMs = 10, onDrop }: PacerOptions) {
    if (!(bitrateBps > 0)) throw new TypeError('bitrateBps must be > 0');
    if (!(maxQueuePackets > 0)) throw new TypeError('maxQueuePackets must be > 0');
    this.#bytesPerMs = bitrateBps / 8 / 1000;
    this.#burstBytes = Math.max(1500, this.#bytesPerMs * burstMs);
    this.#tokens = this.#burstBytes;
    this.#maxQueue = maxQueuePackets;
    this.#onDrop = onDrop;
  }

  get queued(): number {
    return this.#queue.length - this.#head;
  }

  enqueue(bytes: number, send: () => void): void {
    if (this.#closed) return;
    this.#refill();
    if (this.queued === 0 && this.#affords(bytes)) {
      this.#tokens -= bytes;
      this.#run(send);
      return;
    }
    if (this.queued >= this.#maxQueue) {
      this.#head++;
      this.dropped++;
      this.#onDrop?.(1);
    }
    this.#queue.push({ bytes, send });
    this.#schedule();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue = [];
    this.#head = 0;
  }

  #run(send: () => void): void {
    this.sent++;
    try {
      send();
    } catch {
      // A failing send only concerns its own consumer.
    }
  }

  /** A packet larger than the whole bucket goes out once the bucket is full (tokens go negative), instead of blocking the queue forever. */
  #affords(bytes: number): boolean {
    return this.#tokens >= bytes || this.#tokens >= this.#burstBytes;
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.#burstBytes, this.#tokens + (now - this.#last) * this.#bytesPerMs);
    this.#last = now;
  }

  #schedule(): void {
    if (this.#timer || this.#closed) return;
    const head = this.#queue[this.#head];
    const deficit = head ? Math.max(0, Math.min(head.bytes, this.#burstBytes) - this.#tokens) : 0;
    this.#timer = setTimeout(() => this.#drain(), Math.max(1, Math.ceil(deficit / this.#bytesPerMs)));
  }

  #drain(): void {
    this.#timer = undefined;
    this.#refill();
    while (this.#head < this.#queue.length) {
      const item = this.#queue[this.#head]!;
      if (!this.#affords(item.bytes)) break;
      this.#tokens -= item.bytes;
      this.#head++;
      this.#run(item.send);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.queued > 0) this.#schedule();
    else {
      this.#queue = [];
      this.#head = 0;
    }
  }
}
