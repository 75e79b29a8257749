/**
 * A stand-in for an avatar worker's socket.io connection as AvatarService sees it: records what the
 * service emits (assignments acknowledged at once) and fires the worker's events at it.
 */
export class FakeWorkerSocket {
  readonly handlers = new Map<string, (payload: unknown, ack?: (r: unknown) => void) => void>();
  readonly sent: { event: string; payload: unknown }[] = [];
  on(event: string, fn: (payload: unknown, ack?: (r: unknown) => void) => void): this {
    this.handlers.set(event, fn);
    return this;
  }
  emit(event: string, payload: unknown): boolean {
    this.sent.push({ event, payload });
    return true;
  }
  timeout(): { emit: (event: string, payload: unknown, cb: (err: Error | null, res: unknown) => void) => void } {
    return { emit: (event, payload, cb) => (this.sent.push({ event, payload }), cb(null, { ok: true })) };
  }
  disconnect(): void {}
  fire(event: string, payload: unknown): unknown {
    let answer: unknown;
    this.handlers.get(event)!(payload, (r) => (answer = r));
    return answer;
  }
}

