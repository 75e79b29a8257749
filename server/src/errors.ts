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

/**
 * The error body of an HTTP route's failure: AppErrors and TypeErrors as toErrorBody; express and
 * body-parser errors (which carry `type` and `status`) as the API code of that status;
 * `tooLargeMessage` for a body over the route's limit.
 */
export function httpErrorBody(err: unknown, tooLargeMessage = 'the request body is larger than the upload limit'): ErrorBody {
  if (err instanceof AppError || err instanceof TypeError) return toErrorBody(err);
  const e = err as { type?: string; status?: number; statusCode?: number; message?: string };
  const status = e?.status ?? e?.statusCode;
  if (e?.type === 'entity.too.large') return errorBody('PAYLOAD_TOO_LARGE', tooLargeMessage);
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // The code that has this status (404 → NOT_FOUND, 415 → UNSUPPORTED_MEDIA, …); BAD_REQUEST otherwise.
    const code = (Object.keys(ERROR_STATUS) as ErrorCode[]).find((c) => ERROR_STATUS[c] === status) ?? 'BAD_REQUEST';
    return errorBody(code, e.message ?? 'bad request');
  }
  return toErrorBody(err);
}
