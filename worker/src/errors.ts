/** Errors of the worker package's objects (the server's errors.ts is not shared with it). */

/** An operation on a closed object. */
export class InvalidStateError extends Error {
  override name = 'InvalidStateError';
}
