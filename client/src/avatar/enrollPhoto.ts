/** Source photo for an avatar: upload a file, or take a snapshot from the camera, to /api/identities. */

export interface EnrolledPhoto {
  identityId: string;
  faceCount: number;
  warning?: string;
}

export class EnrollPhotoError extends Error {
  override name = 'EnrollPhotoError';
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

/** A PNG snapshot of the camera's current frame. */
export async function snapshotFromStream(stream: MediaStream): Promise<Blob> {
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  await video.play();
  if (video.videoWidth === 0) await new Promise((r) => video.addEventListener('loadedmetadata', r, { once: true }));
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d')!.drawImage(video, 0, 0);
  video.srcObject = null;
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('snapshot failed'))), 'image/png'));
}

export async function enrollPhoto(photo: Blob): Promise<EnrolledPhoto> {
  const type = photo.type === 'image/jpeg' ? 'image/jpeg' : photo.type === 'image/png' ? 'image/png' : '';
  if (!type) throw new EnrollPhotoError('The photo must be a PNG or JPEG image.', 'UNSUPPORTED_MEDIA');
  let res: Response;
  try {
    res = await fetch('/api/identities', { method: 'POST', headers: { 'content-type': type }, body: photo });
  } catch {
    throw new EnrollPhotoError('Cannot reach the server to upload the photo.', 'NETWORK');
  }
  const body = (await res.json().catch(() => ({}))) as { identityId?: string; faceCount?: number; warning?: string; error?: { code: string; message: string } };
  if (res.status !== 201 || !body.identityId) {
    const code = body.error?.code ?? String(res.status);
    const message =
      code === 'NO_FACE' ? 'No face was found in the photo: use a clear, front-facing photo with one face.' : (body.error?.message ?? `upload failed (${res.status})`);
    throw new EnrollPhotoError(message, code);
  }
  return { identityId: body.identityId, faceCount: body.faceCount ?? 1, ...(body.warning ? { warning: body.warning } : {}) };
}
