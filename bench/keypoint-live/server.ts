/** What the keypoint bench's live phases read from the server child process: identities, the worker's pid. */
import { IdentityStore } from '../../server/src/avatar/identity/IdentityStore.ts';
import type { EnrolledIdentity } from '../../worker/src/generator/generator.ts';
import { childPids, type ServerProcess } from '../keypoint-util.ts';

export async function loadIdentity(server: ServerProcess, identityId: string): Promise<EnrolledIdentity> {
  const store = await IdentityStore.create({ dataDir: server.dataDir, cacheSize: 0 });
  return store.load(identityId);
}

export function workerPid(server: ServerProcess): number | undefined {
  return childPids(server.pid, 'worker/src/main.ts')[0];
}
