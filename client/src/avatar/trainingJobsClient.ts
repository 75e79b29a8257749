/**
 * The browser's side of personal-avatar training jobs (REST + server-sent events, see
 * protocol/src/trainingJobs.ts): submit a recorded clip with the identity's owner key, follow the
 * job until it ends (fetch-based event stream: EventSource cannot send the Authorization header),
 * cancel it.
 */
import { ACTIVE_JOB_STATES, trainingJobSchema, type TrainingJobInfo } from '../../../protocol/src/trainingJobs.ts';

export class TrainingJobError extends Error {
  override name = 'TrainingJobError';
  constructor(message: string, readonly code: string, readonly status: number) {
    super(message);
  }
}

async function failure(res: Response): Promise<TrainingJobError> {
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
  return new TrainingJobError(body.error?.message ?? `request failed (${res.status})`, body.error?.code ?? String(res.status), res.status);
}

const auth = (ownerKey: string): Record<string, string> => ({ authorization: `Bearer ${ownerKey}` });

export async function submitTrainingJob(identityId: string, ownerKey: string, upload: Uint8Array, base = ''): Promise<TrainingJobInfo> {
  const res = await fetch(`${base}/api/identities/${encodeURIComponent(identityId)}/training-jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', ...auth(ownerKey) },
    body: new Blob([upload as BlobPart]),
  });
  if (res.status !== 202) throw await failure(res);
  return trainingJobSchema.parse(await res.json());
}

export async function getTrainingJob(jobId: string, ownerKey: string, base = ''): Promise<TrainingJobInfo> {
  const res = await fetch(`${base}/api/training-jobs/${encodeURIComponent(jobId)}`, { headers: auth(ownerKey) });
  if (!res.ok) throw await failure(res);
  return trainingJobSchema.parse(await res.json());
}

/** The identity's jobs, newest first. */
export async function listTrainingJobs(identityId: string, ownerKey: string, base = ''): Promise<TrainingJobInfo[]> {
  const res = await fetch(`${base}/api/identities/${encodeURIComponent(identityId)}/training-jobs`, { headers: auth(ownerKey) });
  if (!res.ok) throw await failure(res);
  const body = (await res.json()) as { jobs?: unknown[] };
  return (body.jobs ?? []).map((j) => trainingJobSchema.parse(j));
}

/** The job's latest preview (held-out frame | model) as an object URL (an <img> cannot send the owner key); null when it has none yet. */
export function trainingPreviewUrl(jobId: string, ownerKey: string, base = ''): Promise<string | null> {
  return jobImageUrl(jobId, 'preview', ownerKey, base);
}

/** A done job's turntable strip (its head at yaw −45° … +45°) as an object URL; null when it has none. */
export function trainingTurntableUrl(jobId: string, ownerKey: string, base = ''): Promise<string | null> {
  return jobImageUrl(jobId, 'turntable', ownerKey, base);
}

async function jobImageUrl(jobId: string, image: 'preview' | 'turntable', ownerKey: string, base: string): Promise<string | null> {
  const res = await fetch(`${base}/api/training-jobs/${encodeURIComponent(jobId)}/${image}`, { headers: auth(ownerKey) });
  if (res.status === 404) return null;
  if (!res.ok) throw await failure(res);
  return URL.createObjectURL(await res.blob());
}

export async function cancelTrainingJob(jobId: string, ownerKey: string, base = ''): Promise<TrainingJobInfo> {
  const res = await fetch(`${base}/api/training-jobs/${encodeURIComponent(jobId)}`, { method: 'DELETE', headers: auth(ownerKey) });
  if (!res.ok) throw await failure(res);
  return trainingJobSchema.parse(await res.json());
}

/** Calls `onUpdate` with every state of the job until it ends; resolves with the final one. */
export async function followTrainingJob(jobId: string, ownerKey: string, onUpdate: (job: TrainingJobInfo) => void, opts: { base?: string; signal?: AbortSignal } = {}): Promise<TrainingJobInfo> {
  const res = await fetch(`${opts.base ?? ''}/api/training-jobs/${encodeURIComponent(jobId)}/events`, { headers: auth(ownerKey), signal: opts.signal });
  if (!res.ok || !res.body) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let last: TrainingJobInfo | undefined;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (!block.startsWith('event: update') || !data) continue;
      last = trainingJobSchema.parse(JSON.parse(data.slice(6)));
      onUpdate(last);
    }
  }
  if (!last || (ACTIVE_JOB_STATES as readonly string[]).includes(last.state)) return getTrainingJob(jobId, ownerKey, opts.base);
  return last;
}
