/**
 * Lazy entry to the face tracker. The tracker module bundles Human + tfjs (1.56 MB minified,
 * 420 KB gzip; its models add ~4.9 MB fetched from /vendor/human/models/ at engine load), so
 * the call page imports only this helper; esbuild (splitting: true) puts FaceTracker.ts and its
 * dependencies into a separate chunk that is fetched on the first call.
 *
 *   const { FaceTracker, loadFaceEngine } = await loadFaceTracker();
 *   void loadFaceEngine();                         // optional: start loading models early
 *   const tracker = await FaceTracker.create({ stream });
 *   tracker.onMotion((frame) => send(encodeMotionFrame(frame)));
 *   tracker.start();
 */
export type {
  FaceTracker, FaceTrackerOptions, FaceTrackerStats, FaceEngine, FaceEngineOptions, BackendSelection, MotionInfo, JitterRule, MotionChannel,
} from './FaceTracker.ts';

export type FaceTrackerModule = typeof import('./FaceTracker.ts');

let pending: Promise<FaceTrackerModule> | null = null;

/** Import the tracker chunk once (a failed import, e.g. offline, is retried on the next call). */
export function loadFaceTracker(): Promise<FaceTrackerModule> {
  if (!pending) {
    pending = import('./FaceTracker.ts');
    pending.catch(() => {
      pending = null;
    });
  }
  return pending;
}
