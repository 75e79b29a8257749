/** Clear messages for getUserMedia failures. */
export function mediaErrorMessage(err: unknown): string {
  const name = (err as { name?: string })?.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return window.isSecureContext
      ? 'Camera/microphone access was denied. Allow it in the browser (the camera icon in the address bar) and join again.'
      : 'Camera and microphone need a secure page: open this site over https:// (or on localhost).';
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'No camera or microphone was found.';
  if (name === 'NotReadableError') return 'The camera or microphone is in use by another application.';
  return `Could not open camera/microphone: ${(err as Error)?.message ?? String(err)}`;
}
