/**
 * What the join form knows about a saved identity's personal avatar (its Gaussian head), from the
 * identity's training jobs (owner key): whether a trained head exists (a job that ended `done`
 * stored it), with its held-out score, and the job still running, if any.
 */
import { ACTIVE_JOB_STATES, type TrainingJobInfo } from '../../../protocol/src/trainingJobs.ts';
import { listTrainingJobs } from './trainingJobsClient.ts';
import type { SavedAvatar } from './savedAvatar.ts';

export interface PersonalAvatarStatus {
  /** the newest job that ended done: the identity carries its Gaussian head */
  trained: TrainingJobInfo | undefined;
  /** a job still queued or running */
  active: TrainingJobInfo | undefined;
  /** the newest job, whatever its state */
  latest: TrainingJobInfo | undefined;
}

const NONE: PersonalAvatarStatus = Object.freeze({ trained: undefined, active: undefined, latest: undefined });

export async function personalAvatarStatus(saved: SavedAvatar, base = ''): Promise<PersonalAvatarStatus> {
  if (!saved.ownerKey) return NONE;
  const jobs = await listTrainingJobs(saved.identityId, saved.ownerKey, base);
  return {
    trained: jobs.find((j) => j.state === 'done'),
    active: jobs.find((j) => (ACTIVE_JOB_STATES as readonly string[]).includes(j.state)),
    latest: jobs[0],
  };
}

/** "12.3 dB" for a job's held-out PSNR. */
export function scoreText(job: TrainingJobInfo | undefined): string {
  const psnr = job?.asset?.heldOut?.psnr ?? job?.heldOutPsnr;
  return psnr === undefined ? 'no score' : `held-out PSNR ${psnr.toFixed(1)} dB`;
}
