/**
 * Worker thread of ClipTracker: loads Human once (wasm backend, no identity descriptor: only the
 * landmarks and boxes are needed, and faceres would add 10-20 ms per face), then answers one
 * 'detect' message per frame. Started through models/worker-bootstrap.mjs (tsx).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { createFaceAnalyzer, type FaceAnalyzer } from '../face/human-node.ts';
import type { FromTrackWorker, ToTrackWorker } from './trackMessages.ts';

const port = parentPort;
if (!port) throw new Error('trackWorker.ts must run in a worker thread');
const post = (msg: FromTrackWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);

const t0 = performance.now();
let analyzer: FaceAnalyzer;
try {
  const maxFaces = typeof workerData?.maxFaces === 'number' ? workerData.maxFaces : 4;
  analyzer = await createFaceAnalyzer({ embedding: false, maxFaces });
  post({ type: 'ready', loadMs: performance.now() - t0 });
} catch (e) {
  post({ type: 'fatal', message: (e as Error).message });
  throw e;
}

port.on('message', (msg: ToTrackWorker) => {
  if (msg?.type !== 'detect') return;
  const { id, pixels, width, height, channels } = msg;
  analyzer.detect(pixels, width, height, channels).then(
    (faces) => {
      const out = faces.map((f) => ({ landmarks: f.landmarks, box: f.box, score: f.score }));
      post({ type: 'result', id, faces: out }, out.map((f) => f.landmarks.buffer as ArrayBuffer));
    },
    (e: unknown) => post({ type: 'error', id, message: (e as Error).message ?? String(e) }),
  );
});
