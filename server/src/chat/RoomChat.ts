/**
 * The chat of one room (an application feature composed on top of the media plane): accepts
 * participants' messages under a per-peer rate limit, numbers them, and keeps a bounded recent
 * history for late joiners. Delivery is the signaling layer's job.
 */
import type { ChatMessage } from '../../../protocol/src/chat.ts';
import { AppError } from '../errors.ts';
import { RateLimiter } from '../signaling/RateLimiter.ts';

export interface ChatLimits {
  /** Sustained messages per second per peer, and the burst allowed above it. */
  messagesPerSecond: number;
  burst: number;
  /** Messages kept for late joiners (0: none). */
  historySize: number;
}

export class RoomChat {
  readonly #limits: ChatLimits;
  readonly #history: ChatMessage[] = [];
  readonly #limiters = new Map<string, RateLimiter>(); // peerId → its bucket
  #seq = 0;

  constructor(limits: ChatLimits) {
    if (!(limits.messagesPerSecond > 0) || !(limits.burst >= 1)) throw new TypeError('chat limits: messagesPerSecond > 0 and burst >= 1');
    if (!Number.isInteger(limits.historySize) || limits.historySize < 0) throw new TypeError('chat limits: historySize is an integer >= 0');
    this.#limits = { ...limits };
  }

  /**
   * Accept a message from a participant (text already validated by the protocol schema). Throws
   * AppError RATE_LIMITED (429) when the peer is over its chat rate; the message is then dropped.
   */
  post(sender: { id: string; displayName: string }, text: string, now = Date.now()): ChatMessage {
    if (typeof text !== 'string' || text.length === 0) throw new TypeError('chat text required');
    let limiter = this.#limiters.get(sender.id);
    if (!limiter) this.#limiters.set(sender.id, (limiter = new RateLimiter(this.#limits.messagesPerSecond, this.#limits.burst)));
    if (!limiter.take()) {
      throw new AppError('RATE_LIMITED', `too many chat messages: at most ${this.#limits.burst} at once and ${this.#limits.messagesPerSecond} per second after that`);
    }
    const message: ChatMessage = { seq: this.#seq++, peerId: sender.id, displayName: sender.displayName, text, sentAt: Math.floor(now) };
    if (this.#limits.historySize > 0) {
      this.#history.push(message);
      if (this.#history.length > this.#limits.historySize) this.#history.splice(0, this.#history.length - this.#limits.historySize);
    }
    return message;
  }

  /** The recent messages, oldest first (a copy). */
  get history(): ChatMessage[] {
    return [...this.#history];
  }

  /** A peer left: forget its rate-limit bucket (its messages stay in the history). */
  forget(peerId: string): void {
    this.#limiters.delete(peerId);
  }
}
