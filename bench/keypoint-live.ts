/**
 * Live parts of the keypoint-avatar benchmark (server child process, real avatar worker, werift SFU):
 * - browser phase: Chromium page A joins as an avatar (its FaceTracker sends motion on the data
 *   channel), page V joins in camera mode with the same fake camera in another room; uplinks from
 *   the pages' send RTCPeerConnection getStats; browser-path glass-to-glass from page A's motion
 *   frames (capture times) matched to a Node viewer's decoded frames with reference renders.
 * - Node phase: a wrtc MotionOwner with jaw-open steps (glass-to-glass), a wrtc viewer's free-view
 *   changes (freeview_apply_ms), worker kill (recovery_ms), the worker's CPU.
 * All decoded frames are compared with reference renders of the same identity (loaded from the
 * server's identity store) by the same generator, so "shows the new state" is a nearest-reference
 * decision, not a change threshold.
 *
 * One file per phase under keypoint-live/ (browser-phase.ts, node-phase.ts) and one per part they
 * share: viewer.ts (a wrtc viewer's decoded frames and receive stats), alignment.ts (which motion a
 * frame shows), reference.ts (reference renders), uplink.ts (a page's send stats → kbit/s),
 * clock.ts (Node and page clocks), server.ts (the server child's identities and worker pid).
 */
export { runBrowserPhase, type BrowserPhaseOptions, type BrowserPhaseResult } from './keypoint-live/browser-phase.ts';
export { runNodePhase, type NodePhaseOptions, type NodePhaseResult } from './keypoint-live/node-phase.ts';
export { FACE_BOX, JAW_BOX, alignToMotion, firstShowing } from './keypoint-live/alignment.ts';
export { FrameRecorder, type RecordedFrame, type ViewerRecv } from './keypoint-live/viewer.ts';
export { ReferenceRenderer } from './keypoint-live/reference.ts';
export { loadIdentity } from './keypoint-live/server.ts';
export type { Uplink } from './keypoint-live/uplink.ts';
