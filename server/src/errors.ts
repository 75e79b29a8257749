/** Error types shared across the server. Errors that reach REST or signaling carry an HTTP status. */
import { ERROR_STATUS, errorBody, type ErrorBody, type ErrorCode } from '../../protocol/src/signaling.ts';

export class AppError extends Error {
  override name = 'AppError';
  /** Always the code's status ({@link ERROR_STATUS}). */
  readonly status: number;
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
    this.status = ERROR_STATUS[code];
  }
  toBody(): ErrorBody {
    return { code: this.code, message: this.message, status: this.status };
  }
}

/** Thrown when a method is called on a closed object (mediasoup style). */
export class InvalidStateError extends AppError {
  override name = 'InvalidStateError';
  constructor(message: string) {
    super('INVALID_STATE', message);
  }
}

export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof AppError) return err.toBody();
  if (err instanceof TypeError) return errorBody('BAD_REQUEST', err.message);
  return errorBody('INTERNAL', 'internal error');
}
