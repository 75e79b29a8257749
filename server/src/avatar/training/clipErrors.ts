/**
 * Errors of clip preprocessing (prepareClip and its helpers). A separate module so that the
 * decoding, cut-detection and tracking helpers can throw them without importing prepareClip.ts.
 */
export type ClipErrorCode = 'NOT_FOUND' | 'DECODE_FAILED' | 'BAD_RANGE' | 'NO_FACE' | 'TOO_FEW_FRAMES' | 'CUT_IN_RANGE' | 'MULTIPLE_PEOPLE' | 'ABORTED';

export class ClipError extends Error {
  readonly code: ClipErrorCode;
  constructor(code: ClipErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClipError';
    this.code = code;
  }
}

/** The ClipError an aborted signal turns into (its reason, when it has one, is kept as the cause). */
export function abortedError(signal: AbortSignal | undefined, what: string): ClipError {
  const reason = signal?.reason;
  const detail = reason instanceof Error ? `: ${reason.message}` : typeof reason === 'string' ? `: ${reason}` : '';
  return new ClipError('ABORTED', `${what} aborted${detail}`, { cause: reason });
}
