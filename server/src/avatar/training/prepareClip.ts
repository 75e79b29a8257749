/**
 * Clip preprocessing for the per-identity 3D Gaussian head: a 5-10 s video of one person talking →
 * stabilised square crops of the training and held-out frames, with temporally smoothed landmarks
 * and the motion code (pose + expression) each frame would have on the wire.
 *
 * Pipeline (every ffmpeg child is killed on every exit path; Human runs in worker threads):
 *  1. stat (NOT_FOUND), ffprobe (DECODE_FAILED), sha256 of the bytes (streamed, concurrently).
 *  2. One ffmpeg pass over the whole clip: every frame's time and the shot cuts (shotCuts.ts).
 *  3. Ranges: the given ones, or the longest shot split 70 % / 30 %; a cut inside the training
 *     range → CUT_IN_RANGE (a model fitted across a cut would average two cameras or people).
 *  4. Decode only the range frames (RGB) and track faces on them with ClipTracker (up to
 *     `threads` workers, results kept by frame number). People count → MULTIPLE_PEOPLE; frames
 *     without a face are skipped; too few → NO_FACE / TOO_FEW_FRAMES.
 *  5. Smooth within each shot of each range: landmarks lightly (σ = 1 frame), the crop strongly
 *     (σ = 0.3 s) so the crop is steady while the head moves a little inside it.
 *  6. Decode the same frames again (RGBA) and cut each crop at once: full decoded frames are never
 *     kept, only size² × 4 bytes per frame. Decoding twice costs far less than holding frames:
 *     10 s of 1080p RGBA would be 2.5 GB.
 *
 * Held-out frames are smoothed separately from training frames even when both lie in one shot, so
 * nothing of a held-out frame leaks into a training frame's crop or landmarks.
 */
import fs from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { computeNeutralReference, landmarksToMotion, toPixel3D, type HeadPose, type NeutralReference } from '../../../../models/face/expression-code.ts';
import { quantizeMotion } from '../../../../protocol/src/motion.ts';
import { resampleRegion } from '../../../../models/image/resampleRegion.ts';
import { decodeFrames, probeClip, sha256File, type FrameSpan } from './clipDecode.ts';
import { abortedError, ClipError, type ClipErrorCode } from './clipErrors.ts';
import { gaussianSmooth, localLinearSmooth } from './clipSmoothing.ts';
import { ClipTracker, type TrackedFace } from './clipTracker.ts';
import { scanClip, shotOfFrames, shotsFromCuts } from './shotCuts.ts';

export { ClipError, type ClipErrorCode };
export { ClipTracker };

export interface PrepareClipOptions {
  file: string;
  /** seconds within the clip, [start, end); default: the first 70 % of the longest shot */
  train?: [number, number];
  /**
   * seconds; default: the rest of that longest shot (when train is not given); may lie in another
   * shot of the same person; null/undefined when train is given and test is not → no held-out
   * frames. Must not overlap the training range (BAD_RANGE).
   */
  test?: [number, number] | null;
  /** crop side in output pixels (square), default 256; even, 64..1024 */
  size?: number;
  /** crop side / face landmark box size, default 3.0 (the framing of enrollPhoto) */
  cropFactor?: number;
  /** Human worker threads, default min(2, os.availableParallelism()) */
  threads?: number;
  /** fewest training frames with a usable face, default 30 */
  minTrainFrames?: number;
  /** use every k-th frame (default 1) */
  frameStep?: number;
  /**
   * 'fixed' (default): every frame of a shot uses the crop of that shot's first used frame (the
   * keypoint bench's framing: one enrollment crop, the head moves inside it, like a webcam);
   * 'stabilised': each frame's crop follows the smoothed face. Measured on Megamind's longest shot
   * (2 min training): fixed 18.4 dB held-out PSNR, stabilised 17.4 dB; the background and body
   * stay put in a fixed crop when the camera does.
   */
  cropMode?: 'stabilised' | 'fixed';
  log?: (line: string) => void;
  signal?: AbortSignal;
  /**
   * A started ClipTracker to use instead of starting (and terminating) workers for this call; the
   * caller keeps ownership (it is not closed here). Saves Human's ~1-2 s model load per clip.
   */
  tracker?: ClipTracker;
}

export interface ClipFrame {
  /** frame index in the clip (decode order) */
  index: number;
  /** seconds (the frame's pts relative to the container start) */
  t: number;
  /** index into PreparedClip.shots */
  shot: number;
  /** size×size RGBA of this frame's stabilised crop (alpha 255) */
  rgba: Uint8Array;
  /** the crop square in source pixels (may be fractional; may extend beyond the frame: edges are clamped) */
  crop: { x: number; y: number; side: number };
  /** 478×3 in crop pixels at `size`, z in pixel units (toPixel3D), temporally smoothed */
  landmarks: Float32Array;
  /** the same smoothed landmarks with z in Human's raw units (what landmarksToMotion takes) */
  humanLandmarks: Float32Array;
  /** landmarksToMotion(humanLandmarks, { neutral }) through the wire's clamping and quantisation */
  motion: { pose: HeadPose; expression: Float32Array };
  /** faces Human found in the whole frame (the largest is used) */
  faceCount: number;
}

export interface PreparedClip {
  file: string;
  sha256: string;
  fps: number;
  width: number;
  height: number;
  /** seconds; covers every frame (at least the last frame's time + 1/fps) */
  duration: number;
  frameCount: number;
  /** seconds: times of the first frames of shots 1, 2, … */
  cuts: number[];
  /** seconds, [start, end) */
  shots: { start: number; end: number }[];
  size: number;
  cropFactor: number;
  /** the frame step used */
  frameStep: number;
  trainRange: [number, number];
  testRange: [number, number] | null;
  /** computeNeutralReference of the first training frame's (crop-space) human landmarks */
  neutral: NeutralReference;
  train: ClipFrame[];
  test: ClipFrame[];
  stats: {
    /** ffmpeg work not overlapped with tracking: the cut scan and the crop pass, ms */
    decodeMs: number;
    /** the tracking pass (decode + Human on every used frame), ms, without loadMs */
    trackMs: number;
    /** starting the workers and loading Human (0 with a caller's tracker), ms */
    loadMs: number;
    framesTracked: number;
    framesWithoutFace: number;
    /** frames (train and test) in which a second face at least 30 % the size of the largest was found */
    multiFaceFrames: number;
    /** tracking threads used */
    threads: number;
  };
}

/** Crop framing, as enrollPhoto: centre moved down by this fraction of the face size. */
const CENTRE_DOWN = 0.1;
/** Landmark smoothing σ, in frames of the source. */
const LANDMARK_SIGMA_FRAMES = 1;
/** Crop smoothing σ, seconds. */
const CROP_SIGMA_S = 0.3;
/** A second face counts as a person when its box is at least this fraction of the largest's area. */
const SECOND_FACE_AREA = 0.3;
/** … and it does not overlap the largest this much (IoU): Human sometimes reports one face twice. */
const SAME_FACE_IOU = 0.5;
/** More than this fraction of the training frames with such a second face → MULTIPLE_PEOPLE. */
const MULTI_FRAME_FRACTION = 0.2;
/** Faces smaller than this (landmark box, source pixels) make blurry training crops: warn. */
const SMALL_FACE_PX = 64;

function intOption(name: string, v: unknown, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new TypeError(`${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  return v;
}

function rangeOption(name: string, v: unknown): [number, number] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new TypeError(`${name} must be [start, end] in seconds (two finite numbers), got ${JSON.stringify(v)}`);
  }
  return [v[0] as number, v[1] as number];
}

const fmt = (s: number): string => s.toFixed(3);

interface FrameTrack {
  index: number;
  range: 0 | 1;
  faces: TrackedFace[];
}

function boxArea(b: readonly number[]): number {
  return Math.max(0, b[2]!) * Math.max(0, b[3]!);
}

function iou(a: readonly number[], b: readonly number[]): number {
  const x0 = Math.max(a[0]!, b[0]!), y0 = Math.max(a[1]!, b[1]!);
  const x1 = Math.min(a[0]! + a[2]!, b[0]! + b[2]!), y1 = Math.min(a[1]! + a[3]!, b[1]! + b[3]!);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  const u = boxArea(a) + boxArea(b) - inter;
  return u > 0 ? inter / u : 0;
}

/** A second, distinct face large enough to be another person in the shot (not a poster far away). */
function hasSecondPerson(faces: readonly TrackedFace[]): boolean {
  const main = faces[0];
  if (!main) return false;
  const a = boxArea(main.box);
  return faces.slice(1).some((f) => boxArea(f.box) >= SECOND_FACE_AREA * a && iou(f.box, main.box) < SAME_FACE_IOU);
}

/** enrollPhoto's framing of one frame: landmark box centre + 0.1·faceSize down, side = cropFactor·faceSize. */
function rawCrop(lm: Float32Array, cropFactor: number): { cx: number; cy: number; side: number; faceSize: number } {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < 468; i++) {
    const x = lm[i * 3]!, y = lm[i * 3 + 1]!;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  const faceSize = Math.max(x1 - x0, y1 - y0);
  return { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2 + CENTRE_DOWN * faceSize, side: cropFactor * faceSize, faceSize };
}

export async function prepareClip(opts: PrepareClipOptions): Promise<PreparedClip> {
  if (!opts || typeof opts !== 'object') throw new TypeError('prepareClip needs an options object');
  const file = opts.file;
  if (typeof file !== 'string' || file.length === 0) throw new TypeError('file must be a non-empty path');
  const size = intOption('size', opts.size, 256, 64, 1024);
  if (size % 2 !== 0) throw new TypeError(`size must be even, got ${size}`);
  if (opts.cropMode !== undefined && opts.cropMode !== 'stabilised' && opts.cropMode !== 'fixed') throw new TypeError(`cropMode must be 'stabilised' or 'fixed', got ${String(opts.cropMode)}`);
  const cropFactor = opts.cropFactor ?? 3.0;
  if (typeof cropFactor !== 'number' || !Number.isFinite(cropFactor) || cropFactor < 1 || cropFactor > 10) throw new TypeError(`cropFactor must be a number in 1..10, got ${String(cropFactor)}`);
  const threads = intOption('threads', opts.threads, Math.min(2, os.availableParallelism()), 1, 64);
  const minTrainFrames = intOption('minTrainFrames', opts.minTrainFrames, 30, 1, 1e6);
  const frameStep = intOption('frameStep', opts.frameStep, 1, 1, 1e6);
  const trainOpt = rangeOption('train', opts.train);
  const testOpt = rangeOption('test', opts.test);
  if (opts.log !== undefined && typeof opts.log !== 'function') throw new TypeError('log must be a function');
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  if (opts.tracker !== undefined && !(opts.tracker instanceof ClipTracker)) throw new TypeError('tracker must be a ClipTracker');
  const log = opts.log ?? (() => undefined);
  const signal = opts.signal;

  let tracker: ClipTracker | undefined = opts.tracker;
  const ownTracker = !opts.tracker;
  // Rejects as soon as the signal aborts, so waits on workers (which cannot be interrupted) end at once.
  let onAbort: (() => void) | undefined;
  const abortP = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortedError(signal, 'prepareClip'));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  abortP.catch(() => undefined);
  const race = <T>(p: Promise<T>): Promise<T> => Promise.race([p, abortP]);

  try {
    // ---- 1. the file
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new ClipError('NOT_FOUND', `clip ${file} does not exist`);
      throw new ClipError('DECODE_FAILED', `cannot read ${file}: ${(e as Error).message}`);
    }
    if (!st.isFile()) throw new ClipError('NOT_FOUND', `clip ${file} is not a file`);
    const shaP = sha256File(file, signal);
    shaP.catch(() => undefined);
    const info = await race(probeClip(file, signal));

    // ---- 2. frame times and cuts
    const tScan = performance.now();
    const scan = await race(scanClip(file, info, { signal }));
    let decodeMs = performance.now() - tScan;
    const fps = info.fps;
    const frameTimes = scan.frameTimes;
    const frameCount = frameTimes.length;
    const duration = Math.max(Number.isFinite(info.duration) ? info.duration : 0, frameTimes[frameCount - 1]! + 1 / fps);
    const cuts = scan.cuts;
    const shots = shotsFromCuts(cuts, duration);
    const shotOf = shotOfFrames(frameCount, scan.cutFrames);
    const shotsText = shots.map((s) => `${fmt(s.start)}–${fmt(s.end)}`).join(', ');
    log(`prepareClip: ${file}: ${info.width}×${info.height}${info.rotation ? ` (displayed rotated by ${info.rotation}°)` : ''}, ${fps.toFixed(3)} fps, ${frameCount} frames, ${fmt(duration)} s; cuts at [${cuts.map(fmt).join(', ')}] s; shots ${shotsText} s`);

    // ---- 3. ranges (in frame numbers; a frame belongs to [s, e) when its time lies in it, with a
    // tolerance of 5 ms (at most a quarter frame) so that times rounded to two decimals, as copied
    // from a player or from a log line, select what was meant: Megamind's cut at 4.12913 s is in
    // [4.13, …), and not in [… , 6.46) for its cut at 6.4648 s)
    const tol = Math.min(0.25 / fps, 0.005);
    const framesIn = (r: [number, number], name: string): { first: number; last: number } => {
      const [s, e] = r;
      if (!(e > s)) throw new ClipError('BAD_RANGE', `${name} range [${s}, ${e}) is empty or reversed`);
      if (s < -tol || e > duration + tol) throw new ClipError('BAD_RANGE', `${name} range [${s}, ${e}) lies outside the clip [0, ${fmt(duration)})`);
      let first = -1, last = -1;
      for (let i = 0; i < frameCount; i++) {
        const t = frameTimes[i]!;
        if (t >= s - tol && t < e - tol) {
          if (first < 0) first = i;
          last = i;
        }
      }
      if (first < 0) throw new ClipError('BAD_RANGE', `${name} range [${s}, ${e}) holds no frame`);
      return { first, last };
    };
    let trainRange: [number, number];
    let testRange: [number, number] | null;
    let trainFrames: { first: number; last: number };
    let testFrames: { first: number; last: number } | null;
    if (trainOpt) {
      trainRange = trainOpt;
      trainFrames = framesIn(trainRange, 'training');
      testRange = testOpt ?? null;
    } else {
      // the longest shot (most frames; the first of equals)
      const counts = new Array<number>(shots.length).fill(0);
      for (let i = 0; i < frameCount; i++) counts[shotOf[i]!]!++;
      let best = 0;
      for (let s = 1; s < shots.length; s++) if (counts[s]! > counts[best]!) best = s;
      let first = 0;
      while (shotOf[first] !== best) first++;
      const n = counts[best]!;
      const nTrain = Math.max(1, Math.round(0.7 * n));
      trainFrames = { first, last: first + nTrain - 1 };
      const split = first + nTrain < frameCount ? frameTimes[first + nTrain]! : shots[best]!.end;
      trainRange = [shots[best]!.start, split];
      testRange = testOpt ?? (opts.test === null || nTrain >= n ? null : [split, shots[best]!.end]);
      log(`prepareClip: default ranges from the longest shot ${best} (${fmt(shots[best]!.start)}–${fmt(shots[best]!.end)} s, ${n} frames)`);
    }
    testFrames = testRange ? framesIn(testRange, 'held-out') : null;
    if (testFrames && testFrames.first <= trainFrames.last && trainFrames.first <= testFrames.last) {
      throw new ClipError('BAD_RANGE', `held-out range [${testRange![0]}, ${testRange![1]}) overlaps the training range [${trainRange[0]}, ${trainRange[1]}): held-out frames must not be trained on`);
    }
    const cutInside = scan.cutFrames.find((k) => k > trainFrames.first && k <= trainFrames.last);
    if (cutInside !== undefined) {
      throw new ClipError('CUT_IN_RANGE', `training range [${trainRange[0]}, ${trainRange[1]}) s contains a shot cut at ${fmt(frameTimes[cutInside]!)} s; the shots are ${shotsText} s: choose a training range inside one shot`);
    }
    log(`prepareClip: training ${fmt(trainRange[0])}–${fmt(trainRange[1])} s (frames ${trainFrames.first}..${trainFrames.last}), held-out ${testRange ? `${fmt(testRange[0])}–${fmt(testRange[1])} s (frames ${testFrames!.first}..${testFrames!.last})` : 'none'}, ${frameStep === 1 ? 'every frame' : `one frame in ${frameStep}`}`);
    const spans: FrameSpan[] = [{ ...trainFrames, step: frameStep }];
    if (testFrames) spans.push({ ...testFrames, step: frameStep });
    const inTrain = (i: number): boolean => i >= trainFrames.first && i <= trainFrames.last;
    const wanted = spans.reduce((n, s) => n + Math.floor((s.last - s.first) / s.step) + 1, 0);

    // ---- 4. tracking
    let loadMs = 0;
    if (!tracker) {
      const tl = performance.now();
      try {
        tracker = await race(ClipTracker.create({ threads: Math.min(threads, wanted), signal }));
      } catch (e) {
        if (signal?.aborted) throw abortedError(signal, 'prepareClip');
        throw e;
      }
      loadMs = performance.now() - tl;
      log(`prepareClip: ${tracker.threads} tracking worker(s) loaded Human in ${Math.round(loadMs)} ms`);
    }
    const trk = tracker;
    const tTrack = performance.now();
    const tracks: FrameTrack[] = [];
    const inflight = new Set<Promise<void>>();
    let failure: unknown;
    let done = 0;
    // two frames per worker in flight: one being analysed, one waiting, so no worker idles while
    // the next frame is decoded and posted; more would only hold more decoded frames in memory
    const maxInflight = 2 * trk.threads;
    for await (const f of decodeFrames(file, info, spans, { channels: 3, signal })) {
      if (failure) throw failure;
      const rec: FrameTrack = { index: f.index, range: inTrain(f.index) ? 0 : 1, faces: [] };
      tracks.push(rec);
      const p: Promise<void> = trk.detect(f.pixels, info.width, info.height, 3).then(
        (faces) => {
          rec.faces = faces;
          if (++done % 50 === 0) log(`prepareClip: tracked ${done}/${wanted} frames`);
        },
        (e: unknown) => void (failure ??= e),
      ).finally(() => inflight.delete(p));
      inflight.add(p);
      while (inflight.size >= maxInflight) await race(Promise.race(inflight));
    }
    await race(Promise.all(inflight));
    if (failure) throw failure;
    const trackMs = performance.now() - tTrack;

    // ---- people and faces
    let multiFaceFrames = 0, trainMulti = 0, trainWithFace = 0, framesWithoutFace = 0;
    for (const r of tracks) {
      if (r.faces.length === 0) { framesWithoutFace++; continue; }
      const multi = hasSecondPerson(r.faces);
      if (multi) multiFaceFrames++;
      if (r.range === 0) { trainWithFace++; if (multi) trainMulti++; }
    }
    const trainTracked = tracks.filter((r) => r.range === 0).length;
    log(`prepareClip: tracked ${tracks.length} frames in ${Math.round(trackMs)} ms; ${framesWithoutFace} without a face, ${multiFaceFrames} with a second person; training frames with a face ${trainWithFace}/${trainTracked}`);
    if (trainWithFace === 0) throw new ClipError('NO_FACE', `no face found in any of the ${trainTracked} training frames (${fmt(trainRange[0])}–${fmt(trainRange[1])} s)`);
    if (trainMulti > MULTI_FRAME_FRACTION * trainWithFace) {
      throw new ClipError('MULTIPLE_PEOPLE', `a second person is in ${trainMulti} of ${trainWithFace} training frames with a face (more than ${MULTI_FRAME_FRACTION * 100} %): the clip must show one person`);
    }
    if (trainWithFace < minTrainFrames) {
      throw new ClipError('TOO_FEW_FRAMES', `only ${trainWithFace} training frames have a face, need ${minTrainFrames} (lengthen the training range or lower frameStep)`);
    }

    // ---- 5. smoothing, per segment = (range, shot)
    const used = tracks.filter((r) => r.faces.length > 0);
    const n = used.length;
    const t = new Float64Array(n), segment = new Int32Array(n);
    const lmRaw = new Float64Array(n * 478 * 3), cropRaw = new Float64Array(n * 3);
    const faceSizes: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = used[i]!;
      t[i] = frameTimes[r.index]!;
      segment[i] = r.range * shots.length + shotOf[r.index]!;
      const lm = r.faces[0]!.landmarks;
      lmRaw.set(lm, i * 1434);
      const c = rawCrop(lm, cropFactor);
      cropRaw[i * 3] = c.cx;
      cropRaw[i * 3 + 1] = c.cy;
      cropRaw[i * 3 + 2] = c.side;
      faceSizes.push(c.faceSize);
    }
    const lmSmooth = gaussianSmooth({ t, segment, values: lmRaw, dim: 1434 }, LANDMARK_SIGMA_FRAMES / fps);
    const cropSmooth = localLinearSmooth({ t, segment, values: cropRaw, dim: 3 }, CROP_SIGMA_S);
    if ((opts.cropMode ?? 'fixed') === 'fixed') {
      // every frame of a shot takes the first training frame's crop (same shot) or its shot's first used frame's
      const firstOfShot = new Map<number, number>();
      const trainShot = used.length ? shotOf[used.find((r) => r.range === 0)?.index ?? used[0]!.index]! : -1;
      for (let i = 0; i < n; i++) {
        const sh = shotOf[used[i]!.index]!;
        const key = sh === trainShot ? -1 : sh;
        if (!firstOfShot.has(key) && (key !== -1 || used[i]!.range === 0)) firstOfShot.set(key, i);
      }
      for (let i = 0; i < n; i++) {
        const sh = shotOf[used[i]!.index]!;
        const j = firstOfShot.get(sh === trainShot ? -1 : sh) ?? i;
        cropSmooth[i * 3] = cropSmooth[j * 3]!; cropSmooth[i * 3 + 1] = cropSmooth[j * 3 + 1]!; cropSmooth[i * 3 + 2] = cropSmooth[j * 3 + 2]!;
      }
    }
    const medianFace = [...faceSizes].sort((a, b) => a - b)[Math.floor(n / 2)]!;
    if (medianFace < SMALL_FACE_PX) log(`prepareClip: warning: the face is small (median ${Math.round(medianFace)} px across): crops at ${size}² will be blurry`);

    // ---- 6. crops (second decode), landmarks in crop pixels, motion
    const tCrop = performance.now();
    const slot = new Map<number, number>();
    used.forEach((r, i) => slot.set(r.index, i));
    const frames: (ClipFrame | undefined)[] = new Array(n);
    for await (const f of decodeFrames(file, info, spans, { channels: 4, signal })) {
      const i = slot.get(f.index);
      if (i === undefined) continue;
      const side = Math.max(1, cropSmooth[i * 3 + 2]!);
      const crop = { x: cropSmooth[i * 3]! - side / 2, y: cropSmooth[i * 3 + 1]! - side / 2, side };
      const out = resampleRegion(f.pixels, info.width, info.height, crop.x, crop.y, side, size);
      // continuous pixel coordinates: crop pixel X covers source [crop.x + X·k⁻¹, …), k = size/side
      const k = size / side;
      const human = new Float32Array(478 * 3);
      for (let p = 0; p < 478; p++) {
        const o = i * 1434 + p * 3;
        human[p * 3] = (lmSmooth[o]! - crop.x) * k;
        human[p * 3 + 1] = (lmSmooth[o + 1]! - crop.y) * k;
        human[p * 3 + 2] = lmSmooth[o + 2]!;
      }
      frames[i] = {
        index: f.index,
        t: t[i]!,
        shot: shotOf[f.index]!,
        rgba: new Uint8Array(out.buffer, out.byteOffset, out.byteLength),
        crop,
        landmarks: toPixel3D(human),
        humanLandmarks: human,
        motion: { pose: { yaw: 0, pitch: 0, roll: 0, tx: 0, ty: 0, scale: 1 }, expression: new Float32Array(0) },
        faceCount: used[i]!.faces.length,
      };
    }
    decodeMs += performance.now() - tCrop;
    const all = frames.map((fr, i) => {
      if (!fr) throw new ClipError('DECODE_FAILED', `frame ${used[i]!.index} was tracked but not decoded again`);
      return fr;
    });
    const train = all.filter((fr) => inTrain(fr.index));
    const test = all.filter((fr) => !inTrain(fr.index));
    const neutral = computeNeutralReference(train[0]!.humanLandmarks);
    for (const fr of all) fr.motion = quantizeMotion(landmarksToMotion(fr.humanLandmarks, { neutral }), fr.index);
    const sha256 = await race(shaP);
    log(`prepareClip: ${train.length} training and ${test.length} held-out frames at ${size}² (crops in ${Math.round(performance.now() - tCrop)} ms)`);
    return {
      file,
      sha256,
      fps,
      width: info.width,
      height: info.height,
      duration,
      frameCount,
      cuts,
      shots,
      size,
      cropFactor,
      frameStep,
      trainRange,
      testRange,
      neutral,
      train,
      test,
      stats: { decodeMs, trackMs, loadMs, framesTracked: tracks.length, framesWithoutFace, multiFaceFrames, threads: trk.threads },
    };
  } catch (e) {
    if (signal?.aborted && !(e instanceof ClipError && e.code === 'ABORTED')) throw abortedError(signal, 'prepareClip');
    throw e;
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    if (ownTracker && tracker) await tracker.close();
  }
}
