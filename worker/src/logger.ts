/** The avatar worker's structured JSON logging (pino); child loggers carry workerId, sessionId, roomId. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({ level, base: { svc: 'avatar-worker' } });
}
