/**
 * Training jobs for personal avatars, as the REST API and its server-sent events show them
 * (server/src/http/trainingJobs.ts; server/src/avatar/training/TrainingJobs.ts runs them):
 *
 *   POST   /api/identities/:id/training-jobs   body: a clip upload (clipUpload.ts) → 202 job
 *   GET    /api/identities/:id/training-jobs   → { jobs: [job, …] } newest first
 *   GET    /api/training-jobs/:jobId            → job
 *   GET    /api/training-jobs/:jobId/events     → text/event-stream: "update" events with the job,
 *                                                 until it ends
 *   GET    /api/training-jobs/:jobId/preview    → image/jpeg: held-out frame | model, side by side
 *   GET    /api/training-jobs/:jobId/turntable  → image/jpeg: a done job's head at yaw −45° … +45°
 *                                                 (7 square frames side by side, TURNTABLE_YAWS_DEG)
 *   DELETE /api/training-jobs/:jobId            → the job, cancelled
 *
 * Every request carries the identity's owner key (`Authorization: Bearer <ownerKey>`).
 */
import { z } from 'zod';

export const JOB_STATES = ['queued', 'preparing', 'training', 'done', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const ACTIVE_JOB_STATES: readonly JobState[] = ['queued', 'preparing', 'training'];

export const trainingJobSchema = z.object({
  id: z.string().uuid(),
  identityId: z.string().min(1).max(64),
  state: z.enum(JOB_STATES),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  endedAt: z.string().optional(),
  /** 0..1 over the whole job */
  progress: z.number().min(0).max(1),
  etaSeconds: z.number().min(0).optional(),
  iteration: z.number().int().min(0).optional(),
  heldOutPsnr: z.number().optional(),
  heldOutFacePsnr: z.number().optional(),
  /** bumped whenever a new preview image is available */
  previewVersion: z.number().int().min(0),
  message: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  /** while queued: 1 = next to start */
  queuePosition: z.number().int().min(1).optional(),
  asset: z.object({ bytes: z.number().int(), sha256: z.string(), iterations: z.number().int(), trainSeconds: z.number(), heldOut: z.object({ psnr: z.number(), ssim: z.number(), facePsnr: z.number() }).nullable() }).optional(),
});
/** What clients see of a job (also what the server's job record holds). */
export type TrainingJobInfo = z.infer<typeof trainingJobSchema>;
