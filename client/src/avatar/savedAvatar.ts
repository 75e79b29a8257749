/**
 * Identities this browser enrolled, remembered in localStorage so the photo is not uploaded again at
 * every join. The server keeps an identity while it is used (AVATAR_IDENTITY_EXPIRE_DAYS after its
 * last use); the owner can delete it. Ids are capabilities: whoever has one can use or delete it.
 */
const KEY = 'avatar-sfu.identities';
const MAX_SAVED = 5;
const ID = /^[0-9a-f]{32}$/;

export interface SavedAvatar {
  identityId: string;
  savedAt: string;
  /** the identity's owner key (its training jobs and personal assets need it); absent for identities saved before owner keys */
  ownerKey?: string;
  /** its latest personal-avatar training job: the page follows it again after a reload */
  trainingJobId?: string;
}

type Storage = Pick<globalThis.Storage, 'getItem' | 'setItem'>;

/** Saved identities, most recent first (malformed entries are ignored). */
export function savedAvatars(storage: Storage = localStorage): SavedAvatar[] {
  try {
    const raw = JSON.parse(storage.getItem(KEY) ?? '[]') as unknown;
    if (!Array.isArray(raw)) return [];
    return raw.filter((e): e is SavedAvatar => typeof e === 'object' && e !== null && typeof (e as SavedAvatar).identityId === 'string' && ID.test((e as SavedAvatar).identityId));
  } catch {
    return [];
  }
}

export function rememberAvatar(identityId: string, storage: Storage = localStorage, ownerKey?: string, trainingJobId?: string): void {
  const rest = savedAvatars(storage).filter((e) => e.identityId !== identityId);
  const entry: SavedAvatar = { identityId, savedAt: new Date().toISOString(), ...(ownerKey ? { ownerKey } : {}), ...(trainingJobId ? { trainingJobId } : {}) };
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
      res = await fetch(`/api/identities/${saved.identityId}`);
    } catch {
      return saved; // server unreachable now: keep it, the join will tell
    }
    if (res.ok) return saved;
    if (res.status === 404) forgetAvatar(saved.identityId, storage);
    else return saved;
  }
  return undefined;
}

/** Deletes the identity on the server (its photo, crop and enrolled data) and forgets it here. */
export async function deleteSavedAvatar(identityId: string, storage: Storage = localStorage): Promise<void> {
  const res = await fetch(`/api/identities/${identityId}`, { method: 'DELETE' });
  if (!res.ok && res.status !== 404) throw new Error(`the server refused to delete it (${res.status})`);
  forgetAvatar(identityId, storage);
}
