/**
 * Identities this browser enrolled, remembered in localStorage so the photo is not uploaded again at
 * every join. The server keeps an identity while it is used (AVATAR_IDENTITY_EXPIRE_DAYS after its
 * last use); the owner can delete it. The owner key is the credential: the server shows the photo,
 * lets a call use the identity, and deletes it only for `Authorization: Bearer <ownerKey>`.
 */
const KEY = 'avatar-sfu.identities';
const MAX_SAVED = 5;
const ID = /^[0-9a-f]{32}$/;

export interface SavedAvatar {
  identityId: string;
  savedAt: string;
  /** the identity's owner key: reading, using and deleting the identity, its training jobs and personal assets need it */
  ownerKey: string;
  /** its latest personal-avatar training job: the page follows it again after a reload */
  trainingJobId?: string;
}

type Storage = Pick<globalThis.Storage, 'getItem' | 'setItem'>;

/** Saved identities, most recent first (malformed entries, and those saved before owner keys, which nothing can use, are ignored). */
export function savedAvatars(storage: Storage = localStorage): SavedAvatar[] {
  try {
    const raw = JSON.parse(storage.getItem(KEY) ?? '[]') as unknown;
    if (!Array.isArray(raw)) return [];
    return raw.filter((e): e is SavedAvatar => typeof e === 'object' && e !== null && typeof (e as SavedAvatar).identityId === 'string' && ID.test((e as SavedAvatar).identityId) && typeof (e as SavedAvatar).ownerKey === 'string' && (e as SavedAvatar).ownerKey.length > 0);
  } catch {
    return [];
  }
}

export function rememberAvatar(identityId: string, storage: Storage = localStorage, ownerKey?: string, trainingJobId?: string): void {
  if (!ownerKey) return; // without its owner key the identity is of no use to this browser
  const rest = savedAvatars(storage).filter((e) => e.identityId !== identityId);
  const entry: SavedAvatar = { identityId, savedAt: new Date().toISOString(), ownerKey, ...(trainingJobId ? { trainingJobId } : {}) };
  storage.setItem(KEY, JSON.stringify([entry, ...rest].slice(0, MAX_SAVED)));
}

/** Remembers the training job of a saved identity (so that leaving the page and coming back resumes following it). */
export function rememberTrainingJob(identityId: string, trainingJobId: string, storage: Storage = localStorage): void {
  storage.setItem(KEY, JSON.stringify(savedAvatars(storage).map((e) => (e.identityId === identityId ? { ...e, trainingJobId } : e))));
}

export function forgetAvatar(identityId: string, storage: Storage = localStorage): void {
  storage.setItem(KEY, JSON.stringify(savedAvatars(storage).filter((e) => e.identityId !== identityId)));
}

/** The newest saved identity the server still has (expired or deleted ones are forgotten). */
export async function usableSavedAvatar(storage: Storage = localStorage): Promise<SavedAvatar | undefined> {
  for (const saved of savedAvatars(storage)) {
    let res: Response;
    try {
      res = await fetch(`/api/identities/${saved.identityId}`, { headers: ownerAuth(saved.ownerKey) });
    } catch {
      return saved; // server unreachable now: keep it, the join will tell
    }
    if (res.ok) return saved;
    if (res.status === 404 || res.status === 403) forgetAvatar(saved.identityId, storage);
    else return saved;
  }
  return undefined;
}

/** Deletes the identity on the server (its photo, crop and enrolled data) and forgets it here. */
export async function deleteSavedAvatar(identityId: string, storage: Storage = localStorage): Promise<void> {
  const ownerKey = ownerKeyOf(identityId, storage);
  if (!ownerKey) throw new Error('this browser does not have its owner key');
  const res = await fetch(`/api/identities/${identityId}`, { method: 'DELETE', headers: ownerAuth(ownerKey) });
  if (!res.ok && res.status !== 404) throw new Error(`the server refused to delete it (${res.status})`);
  forgetAvatar(identityId, storage);
}

/** The owner key this browser saved for `identityId`. */
export function ownerKeyOf(identityId: string, storage: Storage = localStorage): string | undefined {
  return savedAvatars(storage).find((e) => e.identityId === identityId)?.ownerKey;
}

function ownerAuth(ownerKey: string): Record<string, string> {
  return { authorization: `Bearer ${ownerKey}` };
}

/** An object URL of the identity's enrolled photo (fetched with its owner key), or undefined. */
export async function savedAvatarPhotoUrl(identityId: string, storage: Storage = localStorage): Promise<string | undefined> {
  const ownerKey = ownerKeyOf(identityId, storage);
  if (!ownerKey) return undefined;
  try {
    const res = await fetch(`/api/identities/${identityId}/photo`, { headers: ownerAuth(ownerKey) });
    return res.ok ? URL.createObjectURL(await res.blob()) : undefined;
  } catch {
    return undefined;
  }
}
