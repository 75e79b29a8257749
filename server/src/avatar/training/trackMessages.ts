/** Messages between ClipTracker (clipTracker.ts) and its worker threads (trackWorker.ts). */
import type { TrackedFace } from './clipTracker.ts';

export type ToTrackWorker = { type: 'detect'; id: number; pixels: Uint8Array; width: number; height: number; channels: 3 | 4 };

export type FromTrackWorker =
  | { type: 'ready'; loadMs: number }
  | { type: 'fatal'; message: string }
  | { type: 'result'; id: number; faces: TrackedFace[] }
  | { type: 'error'; id: number; message: string };
