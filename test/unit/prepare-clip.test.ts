/**
 * prepareClip on small synthetic clips made here with ffmpeg from test/fixtures/astronaut.png (a
 * real face photo): a still and a panned 320×240 window, a clip with a hard cut to a zoomed and
 * mirrored shot, a clip without a face, two people side by side, and broken inputs.
 * All but two tests share one ClipTracker (Human loads once, ~1-2 s per worker); the others start
 * their own workers, to cover that path (start, termination, abort).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { ClipError, ClipTracker, prepareClip, type ClipErrorCode } from '../../server/src/avatar/training/prepareClip.ts';
import { gaussianSmooth, localLinearSmooth } from '../../server/src/avatar/training/clipSmoothing.ts';
import { EXPR, IDX } from '../../models/face/expression-code.ts';

const PHOTO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/astronaut.png');
const FPS = 12;
/** The astronaut's face in the photo is around x 175-275, y 60-190 (512² photo); windows hold it. */
const WINDOW = 'crop=320:240:65:10';

let dir = '';
let tracker: ClipTracker;
const clip = (name: string): string => path.join(dir, name);

function ffmpeg(args: string[]): void {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-nostdin', '-y', ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `ffmpeg ${args.join(' ')}: ${r.stderr}`);
}

const still = (seconds: number): string[] => ['-loop', '1', '-framerate', String(FPS), '-t', String(seconds), '-i', PHOTO];
const x264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p'];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prepare-clip-'));
  // start Human while ffmpeg makes the clips
  const trackerP = ClipTracker.create({ threads: Math.min(2, os.availableParallelism()) });
  ffmpeg([...still(1), '-vf', WINDOW, ...x264, clip('static.mp4')]);
  // the window pans 20 px/s to the right: the face moves 40 px left over the clip
  ffmpeg([...still(2), '-vf', "crop=320:240:x='45+20*t':y=10", ...x264, clip('pan.mp4')]);
  // 1.5 s of the window, then a hard cut to 1 s of a closer, mirrored framing (scene score ≈ 0.55)
  ffmpeg([...still(1.5), ...still(1), '-filter_complex', `[0]${WINDOW},setsar=1[a];[1]crop=240:180:115:40,scale=320:240,hflip,setsar=1[b];[a][b]concat=n=2:v=1`, ...x264, clip('cut.mp4')]);
  ffmpeg(['-f', 'lavfi', '-i', `color=c=0x4080c0:s=320x240:r=${FPS}:d=0.5`, ...x264, clip('noface.mp4')]);
  ffmpeg([...still(0.5), '-filter_complex', `[0]${WINDOW},split[a][b];[a][b]hstack`, ...x264, clip('two.mp4')]);
  // a phone-style clip: frames stored sideways, with a display rotation that makes them upright
  ffmpeg([...still(0.5), '-vf', `${WINDOW},transpose=2`, ...x264, clip('sideways.mp4')]);
  ffmpeg(['-i', clip('sideways.mp4'), '-c', 'copy', '-metadata:s:v:0', 'rotate=270', clip('rotated.mp4')]);
  fs.writeFileSync(clip('garbage.mp4'), createHash('sha512').update('not a video').digest().toString('hex').repeat(64));
  tracker = await trackerP;
});

after(async () => {
  await tracker?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function rejectsWith(p: Promise<unknown>, code: ClipErrorCode, message?: RegExp): Promise<ClipError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ClipError, `expected ClipError ${code}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  assert.equal(err.code, code, err.message);
  if (message) assert.match(err.message, message);
  return err;
}

/** Landmark box centre (468 mesh points) of a frame's landmarks. */
function faceCentre(lm: Float32Array): [number, number] {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < 468; i++) {
    x0 = Math.min(x0, lm[i * 3]!); x1 = Math.max(x1, lm[i * 3]!);
    y0 = Math.min(y0, lm[i * 3 + 1]!); y1 = Math.max(y1, lm[i * 3 + 1]!);
  }
  return [(x0 + x1) / 2, (y0 + y1) / 2];
}

/** OS threads of this process (a worker thread adds some while it runs). */
const threadCount = (): number => fs.readdirSync('/proc/self/task').length;

/** Wait until this process has at most `n` threads (terminated workers' threads end asynchronously). */
async function threadsBackTo(n: number): Promise<number> {
  for (let i = 0; i < 50 && threadCount() > n; i++) await new Promise((r) => setTimeout(r, 20));
  return threadCount();
}

/** ffmpeg processes that are children of this test process. */
function ffmpegChildren(): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && /^ff(mpeg|probe)$/.test(comm)) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

test('a still clip gives the default 70/30 split of its one shot, one crop per frame, landmarks on the face and near-neutral motion', async () => {
  const lines: string[] = [];
  const r = await prepareClip({ file: clip('static.mp4'), tracker, minTrainFrames: 8, log: (l) => lines.push(l) });
  assert.equal(r.fps, FPS);
  assert.equal(r.width, 320);
  assert.equal(r.height, 240);
  assert.equal(r.frameCount, 12);
  assert.deepEqual(r.cuts, []);
  assert.deepEqual(r.shots, [{ start: 0, end: r.duration }]);
  assert.ok(Math.abs(r.duration - 1) < 1e-3, String(r.duration));
  assert.equal(r.sha256, createHash('sha256').update(fs.readFileSync(clip('static.mp4'))).digest('hex'));
  // 70 % of 12 frames = 8 training frames (0..7), 4 held-out (8..11)
  assert.deepEqual(r.train.map((f) => f.index), [...Array(8).keys()]);
  assert.deepEqual(r.test.map((f) => f.index), [8, 9, 10, 11]);
  assert.ok(Math.abs(r.trainRange[1] - 8 / FPS) < 1e-3 && r.trainRange[0] === 0);
  assert.ok(r.testRange && Math.abs(r.testRange[0] - 8 / FPS) < 1e-3 && Math.abs(r.testRange[1] - 1) < 1e-3);
  for (const f of [...r.train, ...r.test]) assert.ok(Math.abs(f.t - f.index / FPS) < 1e-3);
  assert.equal(r.stats.framesTracked, 12);
  assert.equal(r.stats.framesWithoutFace, 0);
  assert.equal(r.stats.multiFaceFrames, 0);
  // the caller's tracker: no workers started here
  assert.ok(r.stats.loadMs === 0 && r.stats.trackMs > 0 && r.stats.decodeMs > 0);
  assert.ok(lines.some((l) => /training 0\.000–0\.667 s/.test(l)), 'logs through the callback');

  const f = r.train[0]!;
  assert.equal(r.size, 256);
  assert.equal(f.rgba.length, 256 * 256 * 4);
  for (let i = 3; i < f.rgba.length; i += 4) if (f.rgba[i] !== 255) assert.fail('alpha must be 255');
  assert.equal(f.faceCount, 1);
  assert.equal(f.shot, 0);
  // the crop frames the head like enrollIdentityFromPhoto: side = 3 × face size, face centre 0.1 face size above the crop centre
  const [cx, cy] = faceCentre(f.landmarks);
  const faceSize = f.crop.side / 3 * (256 / f.crop.side);
  assert.ok(Math.abs(cx - 128) < 3, `face centre x ${cx}`);
  assert.ok(Math.abs(cy - (128 - 0.1 * faceSize)) < 3, `face centre y ${cy}, expected ${128 - 0.1 * faceSize}`);
  for (let i = 0; i < 478; i++) {
    const x = f.landmarks[i * 3]!, y = f.landmarks[i * 3 + 1]!;
    assert.ok(x > 40 && x < 216 && y > 30 && y < 216, `landmark ${i} at ${x}, ${y} outside the face area of the crop`);
  }
  // the source face spans ~100 px → crop side ~300 source px
  assert.ok(f.crop.side > 250 && f.crop.side < 380, `crop side ${f.crop.side}`);
  // the nose tip in source pixels (from the crop mapping back) sits where the photo's nose is
  const k = f.crop.side / 256;
  const noseX = f.crop.x + f.landmarks[IDX.noseTip * 3]! * k, noseY = f.crop.y + f.landmarks[IDX.noseTip * 3 + 1]! * k;
  assert.ok(Math.abs(noseX - (225 - 65)) < 15 && Math.abs(noseY - (140 - 10)) < 20, `nose at ${noseX}, ${noseY} in source pixels`);
  // humanLandmarks: same x, y; z in Human's units (landmarks' z = humanZ × zScale)
  assert.equal(f.humanLandmarks[0], f.landmarks[0]);
  assert.notEqual(f.humanLandmarks[2], f.landmarks[2]);

  // a still photo does not move: motion is neutral up to quantisation (the neutral is the first frame)
  for (const fr of [...r.train, ...r.test]) {
    const p = fr.motion.pose;
    assert.ok(Math.abs(p.yaw) < 0.1 && Math.abs(p.pitch) < 0.1 && Math.abs(p.roll) < 0.1, JSON.stringify(p));
    assert.ok(Math.abs(p.tx) < 0.05 && Math.abs(p.ty) < 0.05 && Math.abs(p.scale - 1) < 0.05, JSON.stringify(p));
    for (const v of fr.motion.expression) assert.ok(Math.abs(v) < 0.15, `expression ${Array.from(fr.motion.expression)}`);
    // quantised on the wire's grid: expression × 127 is an integer
    for (const v of fr.motion.expression) assert.ok(Math.abs(v * 127 - Math.round(v * 127)) < 1e-4);
  }
  assert.equal(r.train[0]!.motion.expression[EXPR.jawOpen], 0);
  // the neutral reference is in crop pixels (IOD of a ~85 px face in a 256 crop of a ~300 px square)
  assert.ok(r.neutral.scale > 15 && r.neutral.scale < 60, `neutral IOD ${r.neutral.scale}`);
});

test('stabilised crops follow a panned face: in crop pixels the face moves far less than in the source', async () => {
  // every other frame: halves Human's work, and the smoothing works by time, not by frame count
  const r = await prepareClip({ file: clip('pan.mp4'), tracker, minTrainFrames: 10, test: null, train: [0, 2], frameStep: 2, cropMode: 'stabilised' });
  assert.equal(r.train.length, 12);
  assert.equal(r.test.length, 0);
  assert.equal(r.testRange, null);
  const first = r.train[0]!, last = r.train[r.train.length - 1]!;
  const src = (f: typeof first): [number, number] => {
    const [x, y] = faceCentre(f.landmarks);
    return [f.crop.x + (x * f.crop.side) / 256, f.crop.y + (y * f.crop.side) / 256];
  };
  const moveSrc = src(first)[0] - src(last)[0];
  const moveCrop = (faceCentre(first.landmarks)[0] - faceCentre(last.landmarks)[0]) * (first.crop.side / 256);
  // the window moved 20 px/s right for 22/12 s: the face moved ~37 px left in the source
  assert.ok(moveSrc > 29 && moveSrc < 45, `face moved ${moveSrc} source px`);
  assert.ok(Math.abs(moveCrop) < 0.2 * moveSrc, `face moved ${moveCrop} source px within the crop`);
  // the crop itself is steady: the side changes little from frame to frame
  for (let i = 1; i < r.train.length; i++) assert.ok(Math.abs(r.train[i]!.crop.side - r.train[i - 1]!.crop.side) < 2);
  for (const f of r.train) assert.ok(Math.abs(f.motion.pose.yaw) < 0.1, `yaw ${f.motion.pose.yaw}`);
});

test('fixed crops (the default) keep one crop per shot while the face moves inside it, and the motion says where', async () => {
  const r = await prepareClip({ file: clip('pan.mp4'), tracker, minTrainFrames: 10, test: null, train: [0, 2], frameStep: 2 });
  const first = r.train[0]!, last = r.train[r.train.length - 1]!;
  for (const f of r.train) assert.deepEqual(f.crop, first.crop);
  // the window moved right, so the face moves left in the fixed crop and tx follows it
  const move = faceCentre(first.landmarks)[0] - faceCentre(last.landmarks)[0];
  assert.ok(move > 10, `face moved ${move} crop px`);
  assert.ok(last.motion.pose.tx < -0.1, `tx ${last.motion.pose.tx}`);
  await assert.rejects(prepareClip({ file: clip('pan.mp4'), tracker, cropMode: 'wobbly' as never }), TypeError);
});

test('a hard cut is found, splits the clip into shots, and a training range across it is refused with CUT_IN_RANGE', async () => {
  const err = await rejectsWith(prepareClip({ file: clip('cut.mp4'), tracker, train: [1, 2] }), 'CUT_IN_RANGE', /cut at 1\.500 s/);
  assert.match(err.message, /0\.000–1\.500, 1\.500–2\.500/);
  // a training range in one shot with held-out frames in the other shot is fine
  const r = await prepareClip({ file: clip('cut.mp4'), tracker, train: [0.5, 1.5], test: [1.5, 2], minTrainFrames: 6, frameStep: 2 });
  assert.equal(r.cuts.length, 1);
  assert.ok(Math.abs(r.cuts[0]! - 1.5) < 1e-3);
  assert.deepEqual(r.shots.map((s) => [s.start, s.end].map((v) => Math.round(v * 1000) / 1000)), [[0, 1.5], [1.5, 2.5]]);
  assert.deepEqual(r.train.map((f) => f.index), [6, 8, 10, 12, 14, 16]);
  assert.ok(r.train.every((f) => f.shot === 0));
  assert.deepEqual(r.test.map((f) => f.index), [18, 20, 22]);
  assert.ok(r.test.every((f) => f.shot === 1));
  // the closer shot gives a bigger face in the source, so a bigger crop; crops never mix the shots
  assert.ok(r.test[0]!.crop.side > 1.2 * r.train[r.train.length - 1]!.crop.side);
});

test('default ranges come from the longest shot', async () => {
  const r = await prepareClip({ file: clip('cut.mp4'), tracker, minTrainFrames: 5, frameStep: 2 });
  // shot 0 has 18 frames: training 0..12, held-out 13..17, every other frame of each
  assert.deepEqual(r.train.map((f) => f.index), [0, 2, 4, 6, 8, 10, 12]);
  assert.deepEqual(r.test.map((f) => f.index), [13, 15, 17]);
  assert.ok([...r.train, ...r.test].every((f) => f.shot === 0));
  assert.ok(r.testRange && Math.abs(r.testRange[1] - 1.5) < 1e-3);
});

test('a clip with a display rotation is decoded upright, at its displayed size', async () => {
  // no tracker passed: prepareClip starts (and at the end terminates) its own worker
  const threads = threadCount();
  const r = await prepareClip({ file: clip('rotated.mp4'), threads: 1, train: [0, 0.5], minTrainFrames: 6 });
  assert.ok((await threadsBackTo(threads)) <= threads, 'the worker thread is gone');
  assert.ok(r.stats.loadMs > 0);
  assert.equal(r.stats.threads, 1);
  assert.equal(r.width, 320);
  assert.equal(r.height, 240);
  assert.equal(r.train.length, 6);
  // upright: the head is not rolled by 90°, and the crop sits where the face is in the upright frame
  for (const f of r.train) assert.ok(Math.abs(f.motion.pose.roll) < 0.15, `roll ${f.motion.pose.roll}`);
  const c = r.train[0]!.crop;
  assert.ok(Math.abs(c.x + c.side / 2 - 160) < 20, `crop centre x ${c.x + c.side / 2}`);
});

test('a clip without a face fails with NO_FACE', async () => {
  await rejectsWith(prepareClip({ file: clip('noface.mp4'), tracker }), 'NO_FACE', /no face/);
});

test('two people side by side fail with MULTIPLE_PEOPLE', async () => {
  await rejectsWith(prepareClip({ file: clip('two.mp4'), tracker, minTrainFrames: 1 }), 'MULTIPLE_PEOPLE', /second person/);
});

test('too few frames with a face fail with TOO_FEW_FRAMES, and frameStep uses every k-th frame', async () => {
  await rejectsWith(prepareClip({ file: clip('static.mp4'), tracker, train: [0, 0.25] }), 'TOO_FEW_FRAMES', /only 3 training frames/);
  const r = await prepareClip({ file: clip('static.mp4'), tracker, train: [0, 1], frameStep: 3, minTrainFrames: 4, size: 128 });
  assert.deepEqual(r.train.map((f) => f.index), [0, 3, 6, 9]);
  assert.equal(r.train[0]!.rgba.length, 128 * 128 * 4);
  assert.equal(r.frameStep, 3);
});

test('ranges outside the clip, empty, reversed or overlapping the held-out range fail with BAD_RANGE', async () => {
  const file = clip('static.mp4');
  for (const [train, test] of [
    [[-1, 1], undefined],
    [[1, 0.5], undefined],
    [[0, 1], [1.2, 3]],
    [[0, 1], [0.5, 1.2]],
    [[0, 1], [1.01, 1.02]],
  ] as [[number, number], [number, number] | undefined][]) {
    await rejectsWith(prepareClip({ file, tracker, train, test }), 'BAD_RANGE');
  }
});

test('a missing file fails with NOT_FOUND, garbage bytes with DECODE_FAILED, bad options with TypeError', async () => {
  await rejectsWith(prepareClip({ file: clip('missing.mp4'), tracker }), 'NOT_FOUND');
  await rejectsWith(prepareClip({ file: dir, tracker }), 'NOT_FOUND');
  await rejectsWith(prepareClip({ file: clip('garbage.mp4'), tracker }), 'DECODE_FAILED');
  const file = clip('static.mp4');
  await assert.rejects(prepareClip({ file: '' }), TypeError);
  await assert.rejects(prepareClip({ file, size: 255 }), TypeError);
  await assert.rejects(prepareClip({ file, size: 32 }), TypeError);
  await assert.rejects(prepareClip({ file, threads: 0 }), TypeError);
  await assert.rejects(prepareClip({ file, train: [0, NaN] }), TypeError);
  await assert.rejects(prepareClip({ file, frameStep: 1.5 }), TypeError);
  await assert.rejects(prepareClip({ file, cropFactor: 0 }), TypeError);
  assert.equal(ffmpegChildren().length, 0);
});

test('an abort stops decoding and tracking with ABORTED and leaves no ffmpeg running', async () => {
  const ac = new AbortController();
  const threads = threadCount();
  const p = prepareClip({
    file: clip('static.mp4'),
    threads: 1,
    signal: ac.signal,
    // abort once the workers are up, i.e. in the middle of decoding and tracking
    log: (l) => { if (/tracking worker/.test(l)) setTimeout(() => ac.abort(new Error('test abort')), 50); },
  });
  await rejectsWith(p, 'ABORTED', /test abort/);
  // SIGKILLed children are reaped asynchronously
  for (let i = 0; i < 50 && ffmpegChildren().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ffmpegChildren(), []);
  assert.ok((await threadsBackTo(threads)) <= threads, 'the worker thread is gone');
  // an already aborted signal fails before any work
  await rejectsWith(prepareClip({ file: clip('static.mp4'), tracker, signal: AbortSignal.abort() }), 'ABORTED');
});

test('crop smoothing keeps a steady pan exactly, even at the ends of a shot, and never mixes two shots', () => {
  // two shots of 10 frames at 10 fps: a ramp, then a constant far away; frame 4 missing (no face)
  const t: number[] = [], segment: number[] = [], values: number[] = [];
  for (let i = 0; i < 20; i++) {
    if (i === 4) continue;
    t.push(i / 10);
    segment.push(i < 10 ? 0 : 1);
    values.push(i < 10 ? 100 + 30 * (i / 10) : 500);
  }
  const out = localLinearSmooth({ t, segment, values, dim: 1 }, 0.3);
  for (let j = 0; j < t.length; j++) {
    const want = segment[j] === 0 ? 100 + 30 * t[j]! : 500;
    assert.ok(Math.abs(out[j]! - want) < 1e-6, `sample ${j}: ${out[j]} vs ${want}`);
  }
  // a plain weighted mean lags at the ends of the ramp; the local line does not
  const mean = gaussianSmooth({ t, segment, values, dim: 1 }, 0.3);
  assert.ok(mean[0]! > 100 + 3, `the mean pulls the first sample inwards (${mean[0]})`);
});

test('landmark smoothing averages frame-to-frame jitter within a shot only', () => {
  const t: number[] = [], segment: number[] = [], values: number[] = [];
  for (let i = 0; i < 24; i++) {
    t.push(i / 12);
    segment.push(i < 12 ? 0 : 1);
    values.push(i % 2 ? 1 : -1, i < 12 ? 0 : 10);
  }
  const out = gaussianSmooth({ t, segment, values, dim: 2 }, 1 / 12);
  for (let i = 2; i < 10; i++) assert.ok(Math.abs(out[i * 2]!) < 0.3, `jitter left ${out[i * 2]}`);
  for (let i = 0; i < 24; i++) assert.equal(out[i * 2 + 1], i < 12 ? 0 : 10);
  assert.throws(() => gaussianSmooth({ t, segment, values, dim: 3 }, 0.1), TypeError);
  assert.throws(() => gaussianSmooth({ t, segment, values, dim: 2 }, 0), TypeError);
});
