/**
 * Records a short clip of the user for a personal (Gaussian-head) avatar and turns it into a clip
 * upload (protocol/src/clipUpload.ts): frames from the camera (or from a video element playing a
 * file the user chose) are grabbed at a fixed rate, tracked with the same Human engine as the face
 * tracker, JPEG-encoded, and packed with their 478-point landmarks. The server needs no ffmpeg and no
 * face detector for it.
 *
 * Two phases, so that recording keeps the camera's pace whatever the tracking costs: (1) grab frames
 * into canvases for `seconds`; (2) track each one and encode it. Frames without exactly one usable
 * face are left out; a clip with too few of them fails here with a clear error, before any upload.
 */
import { CLIP_UPLOAD_LIMITS, encodeClipUpload, type ClipUpload } from '../../../protocol/src/clipUpload.ts';
import type { FaceEngine } from './faceEngine.ts';

export interface RecordClipOptions {
  /** a playing video element: the camera preview or a file being played */
  video: HTMLVideoElement;
  engine: FaceEngine;
  /** clip length, seconds (default 10, at most CLIP_UPLOAD_LIMITS.maxSeconds) */
  seconds?: number;
  /** frames grabbed per second (default 15) */
  fps?: number;
  /** frames are scaled down so that their longer side is at most this (default 640) */
  maxSide?: number;
  /** JPEG quality 0..1 (default 0.9) */
  quality?: number;
  /** Human's face score below which a frame counts as without a face (default 0.5) */
  minFaceScore?: number;
  onProgress?: (p: { phase: 'recording' | 'tracking'; done: number; total: number; withFace: number }) => void;
  signal?: AbortSignal;
}

export interface RecordedClip {
  upload: Uint8Array;
  /** frames grabbed, and those kept (one face found) */
  grabbed: number;
  kept: number;
  seconds: number;
}

export class ClipRecordError extends Error {
  override name = 'ClipRecordError';
  constructor(message: string, readonly code: 'NO_FACE' | 'TOO_FEW_FRAMES' | 'NOT_PLAYING' | 'ABORTED' | 'TOO_LARGE') {
    super(message);
  }
}

interface Grab {
  canvas: HTMLCanvasElement;
  t: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function recordClip(opts: RecordClipOptions): Promise<RecordedClip> {
  const seconds = Math.min(opts.seconds ?? 10, CLIP_UPLOAD_LIMITS.maxSeconds);
  const fps = opts.fps ?? 15;
  const maxSide = opts.maxSide ?? 640;
  const quality = opts.quality ?? 0.9;
  const minScore = opts.minFaceScore ?? 0.5;
  if (!(seconds > 0) || !(fps > 0 && fps <= 60) || Math.ceil(seconds * fps) > CLIP_UPLOAD_LIMITS.maxFrames) throw new TypeError(`recordClip: ${seconds} s at ${fps} fps is not a clip we can upload (≤ ${CLIP_UPLOAD_LIMITS.maxFrames} frames)`);
  const { video, engine, signal } = opts;
  if (video.readyState < 2 || video.videoWidth === 0) throw new ClipRecordError('The video is not playing yet.', 'NOT_PLAYING');
  const scale = Math.min(1, maxSide / Math.max(video.videoWidth, video.videoHeight));
  const width = Math.max(CLIP_UPLOAD_LIMITS.minSide, Math.round((video.videoWidth * scale) / 2) * 2);
  const height = Math.max(CLIP_UPLOAD_LIMITS.minSide, Math.round((video.videoHeight * scale) / 2) * 2);
  const aborted = (): void => {
    if (signal?.aborted) throw new ClipRecordError('Recording was cancelled.', 'ABORTED');
  };

  // 1. grab
  const total = Math.round(seconds * fps);
  const grabs: Grab[] = [];
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    aborted();
    const due = t0 + (i * 1000) / fps;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    canvas.getContext('2d')!.drawImage(video, 0, 0, width, height);
    grabs.push({ canvas, t: (performance.now() - t0) / 1000 });
    opts.onProgress?.({ phase: 'recording', done: i + 1, total, withFace: 0 });
  }

  // 2. track + encode
  const header: ClipUpload['header'] = { source: video.srcObject ? 'camera' : 'file', width, height, fps, frames: [] };
  const frames: ClipUpload['frames'] = [];
  for (let i = 0; i < grabs.length; i++) {
    aborted();
    const g = grabs[i]!;
    const res = await engine.human.detect(g.canvas);
    const faces = (res.face ?? []).filter((f) => (f.faceScore ?? f.score ?? 0) >= minScore && Array.isArray(f.mesh) && f.mesh.length >= 478);
    if (faces.length >= 1) {
      const mesh = faces[0]!.mesh as unknown as number[][];
      const lm = new Float32Array(478 * 3);
      for (let p = 0; p < 478; p++) {
        lm[p * 3] = mesh[p]![0]!;
        lm[p * 3 + 1] = mesh[p]![1]!;
        lm[p * 3 + 2] = mesh[p]![2] ?? 0;
      }
      const blob = await new Promise<Blob | null>((r) => g.canvas.toBlob(r, 'image/jpeg', quality));
      if (blob) {
        frames.push({ image: new Uint8Array(await blob.arrayBuffer()), landmarks: lm });
        header.frames.push({ t: g.t, faces: Math.min(8, faces.length) });
      }
    }
    g.canvas.width = 0; // free the pixels
    opts.onProgress?.({ phase: 'tracking', done: i + 1, total: grabs.length, withFace: frames.length });
  }
  if (frames.length === 0) throw new ClipRecordError('No face was found in the clip: face the camera in good light.', 'NO_FACE');
  if (frames.length < CLIP_UPLOAD_LIMITS.minFrames) throw new ClipRecordError(`Your face was found in only ${frames.length} of ${grabs.length} frames (at least ${CLIP_UPLOAD_LIMITS.minFrames} are needed): stay in view and record again.`, 'TOO_FEW_FRAMES');
  // times from the first kept frame
  const first = header.frames[0]!.t;
  for (const f of header.frames) f.t = Math.max(0, f.t - first);
  let upload: Uint8Array;
  try {
    upload = encodeClipUpload({ header, frames });
  } catch (err) {
    throw new ClipRecordError(`The clip is too large to upload: ${(err as Error).message}`, 'TOO_LARGE');
  }
  return { upload, grabbed: grabs.length, kept: frames.length, seconds: header.frames.at(-1)!.t + 1 / fps };
}
