/** Errors of the worker package's objects (the server's errors.ts is not shared with it). */

/** An operation on a closed object. */
export class InvalidStateError extends Error {
  override name = 'InvalidStateError';
}

/**
 * A session's generator cannot be initialised from the identity's asset: the identity has none for
 * it (`ASSET_MISSING`) or it does not load (`ASSET_INVALID`: corrupt, wrong version, hash mismatch).
 * The worker reports the code with the failure, and the server falls back to another generator.
 */
export class AssetUnusableError extends Error {
  override name = 'AssetUnusableError';
  constructor(readonly code: 'ASSET_MISSING' | 'ASSET_INVALID', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
