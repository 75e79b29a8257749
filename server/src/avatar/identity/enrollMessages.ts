/** Messages between EnrollmentService (main thread) and enrollWorker.ts (worker thread). */
import type { EnrolledIdentity, EnrollErrorCode } from './enroll.ts';

/** EnrolledIdentity without the parts the main thread rebuilds (mesh topology, background alias). */
export type WireIdentity = Omit<EnrolledIdentity, 'mesh' | 'background'>;

export interface EnrollJobOptions {
  maxBytes: number;
  maxPixels: number;
  textureSize?: number;
}

export type ToWorker = { type: 'enroll'; jobId: number; bytes: Uint8Array; opts: EnrollJobOptions };

export type FromWorker =
  /** nice: the thread's scheduling priority after lowering it (null when it could not be set) */
  | { type: 'ready'; loadMs: number; nice: number | null; threadTid: number | null }
  | { type: 'done'; jobId: number; identity: WireIdentity; cropPng: Uint8Array; enrollMs: number }
  | { type: 'failed'; jobId: number; error: { name: string; message: string; code?: EnrollErrorCode } };
