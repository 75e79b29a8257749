/** Token bucket for signaling messages of one socket, plus a windowed count of rejections. */
export class RateLimiter {
  #tokens: number;
  #last = performance.now();
  #rejections: number[] = [];

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    if (!(perSecond > 0) || !(burst > 0)) throw new TypeError('perSecond and burst must be > 0');
    this.#tokens = burst;
  }

  /** Take one token; false when the socket is over its rate. */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.perSecond);
    this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    return false;
  }

  /** Record a rejected message; returns how many happened in the last `windowMs`. */
  reject(windowMs = 10_000): number {
    const now = performance.now();
    this.#rejections.push(now);
    while (this.#rejections.length > 0 && this.#rejections[0]! < now - windowMs) this.#rejections.shift();
    return this.#rejections.length;
  }
}
