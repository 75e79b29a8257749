/**
 * Worker thread of EnrollmentService: loads Human once, then enrolls one photo per message.
 * Everything CPU-heavy (decode, face detection twice, crop resampling, the crop's PNG encoding)
 * happens here, off the server's event loop. Started through models/worker-bootstrap.mjs (tsx).
 */
import { readlinkSync } from 'node:fs';
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { createFaceAnalyzer, encodePng } from '../face/human-node.ts';
import { enrollIdentityFromPhoto, EnrollError } from './enroll.ts';
import type { FromWorker, ToWorker, WireIdentity } from './enrollMessages.ts';

function tidOf(): number | null {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop()) || null;
  } catch {
    return null;
  }
}

const port = parentPort;
if (!port) throw new Error('enrollWorker.ts must run in a worker thread');

/** Buffers that can be moved (the view covers its whole, non-shared ArrayBuffer). */
function transferables(views: (ArrayBufferView | undefined)[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const v of views) {
    if (v && v.buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength) out.add(v.buffer);
  }
  return [...out];
}

/**
 * Lower this thread's scheduling priority (Linux: setpriority on the thread id), so that on a busy
 * machine the server's main thread (media forwarding, signaling) wins the CPU over enrollment.
 * Best effort: elsewhere, or when not permitted, the worker runs at normal priority.
 */
function lowerThreadPriority(nice: number): number | null {
  if (!nice) return null;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return null;
    os.setPriority(tid, nice);
    return os.getPriority(tid);
  } catch {
    return null;
  }
}

const niceValue = typeof workerData?.nice === 'number' ? workerData.nice : 0;
const nice = lowerThreadPriority(niceValue);
const t0 = performance.now();
const analyzer = await createFaceAnalyzer();
const post = (msg: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);
post({ type: 'ready', loadMs: performance.now() - t0, nice, threadTid: tidOf() });

port.on('message', async (msg: ToWorker) => {
  if (msg?.type !== 'enroll') return;
  const { jobId } = msg;
  try {
    const start = performance.now();
    const id = await enrollIdentityFromPhoto(msg.bytes, { analyzer, maxBytes: msg.opts.maxBytes, maxPixels: msg.opts.maxPixels, textureSize: msg.opts.textureSize });
    const cropPng = new Uint8Array(encodePng(id.texture, id.size, id.size));
    const enrollMs = performance.now() - start;
    const identity: WireIdentity = {
      size: id.size,
      texture: id.texture,
      landmarks: id.landmarks,
      humanLandmarks: id.humanLandmarks,
      embedding: id.embedding,
      faceCount: id.faceCount,
      crop: id.crop,
      sourceWidth: id.sourceWidth,
      sourceHeight: id.sourceHeight,
      angles: id.angles,
    };
    post({ type: 'done', jobId, identity, cropPng, enrollMs }, transferables([id.texture, id.landmarks, id.humanLandmarks, id.embedding, cropPng]));
  } catch (err) {
    const e = err as Error;
    post({ type: 'failed', jobId, error: { name: e?.name ?? 'Error', message: e?.message ?? String(err), code: err instanceof EnrollError ? err.code : undefined } });
  }
});
