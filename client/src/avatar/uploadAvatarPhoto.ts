/**
 * Source photo for an avatar: upload a photo (a file, or a camera snapshot from cameraSnapshot.ts)
 * to the server's /api/identities, which enrolls it as a new identity.
 */

export interface EnrolledPhoto {
  identityId: string;
  /** the identity's owner key (training a personal avatar needs it); the server gives it only here */
  ownerKey?: string;
  faceCount: number;
  warning?: string;
}

export class PhotoUploadError extends Error {
  override name = 'PhotoUploadError';
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

/** Upload a PNG or JPEG photo; throws PhotoUploadError with a message for the user. */
export async function uploadAvatarPhoto(photo: Blob): Promise<EnrolledPhoto> {
  const type = photo.type === 'image/jpeg' ? 'image/jpeg' : photo.type === 'image/png' ? 'image/png' : '';
  if (!type) throw new PhotoUploadError('The photo must be a PNG or JPEG image.', 'UNSUPPORTED_MEDIA');
  let res: Response;
  try {
    res = await fetch('/api/identities', { method: 'POST', headers: { 'content-type': type }, body: photo });
  } catch {
    throw new PhotoUploadError('Cannot reach the server to upload the photo.', 'NETWORK');
  }
  const body = (await res.json().catch(() => ({}))) as { identityId?: string; ownerKey?: string; faceCount?: number; warning?: string; error?: { code: string; message: string } };
  if (res.status !== 201 || !body.identityId) {
    const code = body.error?.code ?? String(res.status);
    const message =
      code === 'NO_FACE' ? 'No face was found in the photo: use a clear, front-facing photo with one face.' : (body.error?.message ?? `upload failed (${res.status})`);
    throw new PhotoUploadError(message, code);
  }
  return { identityId: body.identityId, ...(typeof body.ownerKey === 'string' ? { ownerKey: body.ownerKey } : {}), faceCount: body.faceCount ?? 1, ...(body.warning ? { warning: body.warning } : {}) };
}
