/** Error types shared across the server. Errors that reach REST or signaling carry an HTTP status. */
import type { ErrorBody, ErrorCode } from '../../protocol/src/signaling.ts';

export class AppError extends Error {
  override name = 'AppError';
  constructor(readonly code: ErrorCode, message: string, readonly status: number) {
    super(message);
  }
  toBody(): ErrorBody {
    return { code: this.code, message: this.message, status: this.status };
  }
}

/** Thrown when a method is called on a closed object (mediasoup style). */
export class InvalidStateError extends AppError {
  override name = 'InvalidStateError';
  constructor(message: string) {
    super('INVALID_STATE', message, 409);
  }
}

export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof AppError) return err.toBody();
  if (err instanceof TypeError) return { code: 'BAD_REQUEST', message: err.message, status: 400 };
  return { code: 'INTERNAL', message: 'internal error', status: 500 };
}
