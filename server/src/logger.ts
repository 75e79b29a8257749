/** Structured JSON logging (pino). Child loggers carry context: room, peer, transport ids. */
import { pino, type Logger } from 'pino';

export type { Logger };

let root: Logger = pino({ level: 'info', base: { svc: 'avatar-sfu' } });

export function configureLogger(level: string): Logger {
  root = pino({ level, base: { svc: 'avatar-sfu' } });
  return root;
}

export function getLogger(bindings: Record<string, unknown> = {}): Logger {
  return Object.keys(bindings).length === 0 ? root : root.child(bindings);
}
