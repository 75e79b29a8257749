/**
 * A clip the browser recorded (or decoded from a file) and tracked, as a clip upload
 * (protocol/src/clipUpload.ts) → the same PreparedClip that prepareClip makes from a video file,
 * so the trainer and the scoring cannot tell the two paths apart. No ffmpeg, no face detector:
 * JPEG decoding (jpeg-js) and the framing steps of prepareClip (clipFraming.ts).
 *
 * One shot (a recording has no cuts), one fixed crop (the first training frame's, as prepareClip's
 * default 'fixed' mode), landmarks smoothed in time (σ = 1 frame). The last `heldOutShare` of the
 * frames are held out: they are what the job reports as held-out quality and never trained on.
 */
import { createHash } from 'node:crypto';
import jpeg from 'jpeg-js';
import { CLIP_UPLOAD_LIMITS, decodeClipUpload, type ClipUpload } from '../../../../protocol/src/clipUpload.ts';
import { assignMotion, CROP_SIGMA_S, cutCrop, LANDMARK_SIGMA_FRAMES, MULTI_FRAME_FRACTION, PLACEHOLDER_MOTION, rawCrop } from './clipFraming.ts';
import { abortedError, ClipError } from './clipErrors.ts';
import { gaussianSmooth, localLinearSmooth } from './clipSmoothing.ts';
import type { ClipFrame, PreparedClip } from './prepareClip.ts';

export interface PrepareUploadOptions {
  /** crop side in output pixels (square), default 256; even, 64..1024 */
  size?: number;
  /** crop side / face landmark box size, default 3.0 (as prepareClip) */
  cropFactor?: number;
  /** share of the frames (the last ones) held out, default 0.15; 0 = none */
  heldOutShare?: number;
  /** fewest training frames, default CLIP_UPLOAD_LIMITS.minFrames */
  minTrainFrames?: number;
  /** a name for logs and the asset's metadata, default "upload" */
  name?: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
}


/**
 * Decode and verify the upload (ClipUploadError for a malformed one), then cut the crops.
 * ClipError: TOO_FEW_FRAMES, MULTIPLE_PEOPLE, BAD_RANGE (longer than the limit), DECODE_FAILED (a
 * frame that is not a JPEG of the header's size), ABORTED.
 */
export async function prepareUpload(bytes: Uint8Array, opts: PrepareUploadOptions = {}): Promise<PreparedClip> {
  const size = opts.size ?? 256;
  if (!Number.isInteger(size) || size < 64 || size > 1024 || size % 2 !== 0) throw new TypeError(`size must be an even integer in 64..1024, got ${String(size)}`);
  const cropFactor = opts.cropFactor ?? 3.0;
  if (!(cropFactor >= 1 && cropFactor <= 10)) throw new TypeError(`cropFactor must be in 1..10, got ${String(cropFactor)}`);
  const heldOutShare = opts.heldOutShare ?? 0.15;
  if (!(heldOutShare >= 0 && heldOutShare <= 0.5)) throw new TypeError(`heldOutShare must be in [0, 0.5], got ${String(heldOutShare)}`);
  const minTrainFrames = opts.minTrainFrames ?? CLIP_UPLOAD_LIMITS.minFrames;
  const log = opts.log ?? (() => undefined);
  const signal = opts.signal;

  const upload: ClipUpload = decodeClipUpload(bytes);
  const { header } = upload;
  const n = upload.frames.length;
  const t0 = header.frames[0]!.t;
  const duration = header.frames[n - 1]!.t - t0 + 1 / header.fps;
  if (duration > CLIP_UPLOAD_LIMITS.maxSeconds + 1 / header.fps) throw new ClipError('BAD_RANGE', `the clip is ${duration.toFixed(2)} s long; at most ${CLIP_UPLOAD_LIMITS.maxSeconds} s`);
  const nTest = heldOutShare > 0 ? Math.max(1, Math.round(heldOutShare * n)) : 0;
  const nTrain = n - nTest;
  if (nTrain < minTrainFrames) throw new ClipError('TOO_FEW_FRAMES', `the clip has ${n} frames with a face (${nTrain} for training); need at least ${minTrainFrames} for training: record longer`);
  const multi = header.frames.filter((f) => f.faces > 1).length;
  if (multi > MULTI_FRAME_FRACTION * n) throw new ClipError('MULTIPLE_PEOPLE', `a second face is in ${multi} of ${n} frames: the clip must show one person`);

  // smoothing (train and held-out separately: nothing of a held-out frame leaks into training)
  const t = new Float64Array(n), segment = new Int32Array(n);
  const lmRaw = new Float64Array(n * 1434);
  for (let i = 0; i < n; i++) {
    t[i] = header.frames[i]!.t - t0;
    segment[i] = i < nTrain ? 0 : 1;
    lmRaw.set(upload.frames[i]!.landmarks, i * 1434);
  }
  const lm = gaussianSmooth({ t, segment, values: lmRaw, dim: 1434 }, LANDMARK_SIGMA_FRAMES / header.fps);
  // one fixed crop, as prepareClip's 'fixed' mode: the first frame's, from the crops smoothed in time
  const cropRaw = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    const c = rawCrop(lmRaw, cropFactor, i * 1434);
    cropRaw.set([c.cx, c.cy, c.side], i * 3);
  }
  const cropSmooth = localLinearSmooth({ t, segment, values: cropRaw, dim: 3 }, CROP_SIGMA_S);
  const crops = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) crops.set(cropSmooth.subarray(0, 3), i * 3);

  const frames: ClipFrame[] = [];
  for (let i = 0; i < n; i++) {
    if (signal?.aborted) throw abortedError(signal, 'prepareUpload');
    let img: { width: number; height: number; data: Uint8Array };
    try {
      img = jpeg.decode(upload.frames[i]!.image, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 4, maxMemoryUsageInMB: 64 });
    } catch (e) {
      throw new ClipError('DECODE_FAILED', `frame ${i} is not a readable JPEG: ${(e as Error).message}`);
    }
    if (img.width !== header.width || img.height !== header.height) throw new ClipError('DECODE_FAILED', `frame ${i} is ${img.width}×${img.height}, the header says ${header.width}×${header.height}`);
    const cut = cutCrop(img.data, img.width, img.height, crops, lm, i, size);
    frames.push({ index: i, t: t[i]!, shot: 0, ...cut, motion: PLACEHOLDER_MOTION, faceCount: header.frames[i]!.faces });
    // jpeg decoding is synchronous: let cancellation and other work through now and then
    if (i % 16 === 15) await new Promise((r) => setImmediate(r));
  }
  const train = frames.slice(0, nTrain);
  const test = frames.slice(nTrain);
  const neutral = assignMotion(train, frames);
  const split = nTest > 0 ? test[0]!.t : duration;
  log(`prepareUpload: ${header.source} clip ${header.width}×${header.height}, ${n} frames over ${duration.toFixed(2)} s: ${train.length} training, ${test.length} held-out, crops ${size}²`);
  return {
    file: opts.name ?? 'upload',
    sha256: createHash('sha256').update(bytes).digest('hex'),
    fps: header.fps,
    width: header.width,
    height: header.height,
    duration,
    frameCount: n,
    cuts: [],
    shots: [{ start: 0, end: duration }],
    size,
    cropFactor,
    frameStep: 1,
    trainRange: [0, split],
    testRange: nTest > 0 ? [split, duration] : null,
    neutral,
    train,
    test,
    stats: { decodeMs: 0, trackMs: 0, loadMs: 0, framesTracked: n, framesWithoutFace: 0, multiFaceFrames: multi, threads: 1 },
  };
}
