/**
 * Messages between the training-job supervisor (TrainingJobs.ts) and its child process
 * (trainingProcess.ts), over Node's IPC channel, validated on both ends.
 */
import { z } from 'zod';

export const trainingSettingsSchema = z
  .object({
    size: z.number().int().min(64).max(1024),
    /** wall-time budget of the optimisation */
    minutes: z.number().positive().max(120),
    /** exact iteration count instead (tests, short jobs) */
    iterations: z.number().int().min(1).max(1_000_000).optional(),
    gaussians: z.number().int().min(100).max(200_000).optional(),
    threads: z.number().int().min(1).max(64),
    seed: z.number().int().min(0).max(2 ** 31),
    /** evaluations (progress + preview) over the run */
    evaluations: z.number().int().min(1).max(1000),
  })
  .strict();
export type TrainingSettings = z.infer<typeof trainingSettingsSchema>;

export const toTrainingProcessSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('start'), jobId: z.string(), uploadPath: z.string(), assetPath: z.string(), previewPath: z.string(), settings: trainingSettingsSchema }).strict(),
  z.object({ type: z.literal('cancel') }).strict(),
]);
export type ToTrainingProcess = z.infer<typeof toTrainingProcessSchema>;

const finite = z.number().refine(Number.isFinite, 'finite');
export const fromTrainingProcessSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('stage'), stage: z.enum(['preparing', 'training', 'writing']), message: z.string().max(500) }).strict(),
  z
    .object({
      type: z.literal('progress'),
      progress: z.number().min(0).max(1),
      etaSeconds: z.number().min(0),
      iteration: z.number().int().min(0),
      seconds: z.number().min(0),
      /** NaN before a first held-out render is sent as null */
      heldOutPsnr: finite.nullable(),
      heldOutFacePsnr: finite.nullable(),
      /** a new preview JPEG was written to previewPath */
      preview: z.boolean(),
    })
    .strict(),
  z
    .object({
      type: z.literal('done'),
      assetBytes: z.number().int().positive(),
      assetSha256: z.string().regex(/^[0-9a-f]{64}$/),
      iterations: z.number().int().min(0),
      trainSeconds: z.number().min(0),
      heldOut: z.object({ psnr: finite, ssim: finite, facePsnr: finite }).strict().nullable(),
    })
    .strict(),
  z.object({ type: z.literal('failed'), code: z.string().max(40), message: z.string().max(2000) }).strict(),
]);
export type FromTrainingProcess = z.infer<typeof fromTrainingProcessSchema>;

/** The turntable strip (models/gaussian/turntable.ts) a finished job leaves in its directory, next to its preview. */
export const TURNTABLE_FILE = 'turntable.jpg';
