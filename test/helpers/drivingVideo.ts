/**
 * Synthetic "webcam" clips with known motion: renders a driving sequence of one photo with the
 * mesh avatar generator (head turns yaw ±20° with a little nodding, mouth opening and closing,
 * blinks) and writes it as YUV4MPEG2 (.y4m, 4:2:0) for Chromium's
 * `--use-file-for-fake-video-capture`. Returns the ground-truth motion of every frame.
 *
 * Timeline (seconds, scaled to the clip length `frames / fps`, 6 s by default):
 *   [0, 1)      neutral (the tracker's automatic calibration happens here when capture starts)
 *   [1, 5)      yaw = 20° · sin(2π(t − 1)/2)          two full left-right turns
 *               pitch = 6° · sin(2π(t − 1)/1.33)       nodding, not in step with yaw
 *   [1.3, 5.7)  jawOpen = 0.7 · max(0, sin(2π·1.6(t − 1.3)))   "syllables", 0.31 s open each
 *   blinks      150 ms (60 ms closing, 90 ms opening) at 1.2, 3.1 and 4.6 s
 *   end         back to neutral, so the clip loops without a jump
 * The frequencies differ so that yaw, pitch and jawOpen are close to uncorrelated: a tracker
 * output can only match them all at the right time alignment.
 *
 * Ground truth = the motion given to the generator (absolute pose in the landmark conventions of
 * models/face/expression-code.ts: the photo's own pose plus the offsets above).
 *
 * Each frame carries its index as a 16-block gray code in the bottom-left corner (frameCode.ts,
 * on the space suit, away from the face), so a browser test knows which frame it analysed.
 *
 * Output is cached under os.tmpdir()/avatar-sfu-driving/ keyed by the parameters, the photo's
 * bytes and the generator sources' sizes and mtimes (an edited renderer gives a new clip).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { enrollIdentityFromPhoto } from '../../server/src/avatar/identity/enroll.ts';
import { MeshAvatarGenerator } from '../../worker/src/generator/mesh-generator.ts';
import { EXPR, EXPRESSION_SIZE, type HeadPose } from '../../models/face/expression-code.ts';
import { FRAME_CODE, frameCodeBits, frameCodeRect } from './frameCode.ts';

/** bump when the timeline or the file layout changes */
const SEQUENCE_VERSION = 2;
const D = Math.PI / 180;

export interface DrivingVideoOptions {
  /** PNG/JPEG path or bytes; default test/fixtures/astronaut.png */
  photo?: string | Uint8Array;
  /** default 180 (6 s at 30 fps) */
  frames?: number;
  /** default 30 */
  fps?: number;
  /** square frame side in pixels, even; default 480 */
  size?: number;
  /** output .y4m path; default a cache file under os.tmpdir() */
  out?: string;
  /** stamp the frame index into the bottom-left corner (frameCode.ts); default true */
  frameCode?: boolean;
}

export interface GroundTruthFrame {
  /** seconds from the start of the clip */
  t: number;
  pose: HeadPose;
  /** EXPRESSION_NAMES order */
  expression: number[];
}

export interface DrivingVideo {
  path: string;
  frames: number;
  fps: number;
  size: number;
  groundTruth: GroundTruthFrame[];
  /** true when the file came from the cache */
  cached: boolean;
  /** ms spent rendering (0 when cached) */
  renderMs: number;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEFAULT_PHOTO = path.join(root, 'test/fixtures/astronaut.png');
const RENDERER_SOURCES = [
  'worker/src/generator/mesh-generator.ts',
  'worker/src/generator/raster.ts',
  'models/image/resampleRegion.ts',
  'server/src/avatar/identity/enroll.ts',
  'models/face/expression-code.ts',
  'test/helpers/drivingVideo.ts',
];

/** Offsets from the neutral face at time t (seconds) of a clip of `duration` seconds. */
export function drivingMotionAt(t: number, duration = 6): { yaw: number; pitch: number; jawOpen: number; blink: number } {
  const s = t * (6 / duration); // timeline defined on 6 s
  let yaw = 0, pitch = 0, jawOpen = 0, blink = 0;
  if (s >= 1 && s < 5) {
    yaw = 20 * D * Math.sin((2 * Math.PI * (s - 1)) / 2);
    // nod: 3 periods of 1.333 s fit exactly into [1, 5)
    pitch = 6 * D * Math.sin((2 * Math.PI * (s - 1)) / (4 / 3));
  }
  if (s >= 1.3 && s < 5.7) jawOpen = 0.7 * Math.max(0, Math.sin(2 * Math.PI * 1.6 * (s - 1.3)));
  for (const b of [1.2, 3.1, 4.6]) {
    const u = s - b;
    if (u >= 0 && u < 0.06) blink = Math.max(blink, u / 0.06);
    else if (u >= 0.06 && u < 0.15) blink = Math.max(blink, 1 - (u - 0.06) / 0.09);
  }
  return { yaw, pitch, jawOpen, blink };
}

function cacheKey(photo: Uint8Array, frames: number, fps: number, size: number, code: boolean): string {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify({ v: SEQUENCE_VERSION, frames, fps, size, code, layout: FRAME_CODE }));
  h.update(photo);
  for (const rel of RENDERER_SOURCES) {
    try {
      const st = fs.statSync(path.join(root, rel));
      h.update(`${rel}:${st.size}:${st.mtimeMs}`);
    } catch {
      h.update(`${rel}:missing`);
    }
  }
  return h.digest('hex').slice(0, 16);
}

/** YUV4MPEG2 stream header: W/H, frame rate, progressive, square pixels, 4:2:0 with JPEG siting. */
export function y4mHeader(width: number, height: number, fps: number): string {
  return `YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C420jpeg\n`;
}

/** Write the frame-index blocks into an I420 frame (luma on/off, chroma neutral). */
function stampFrameCode(i420: Uint8Array, size: number, index: number): void {
  const [x0, y0, w, h] = frameCodeRect(size);
  const bits = frameCodeBits(index);
  const { block, on, off } = FRAME_CODE;
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) i420[y * size + x] = bits[Math.floor((x - x0) / block)] ? on : off;
  }
  const cw = size >> 1, cs = cw * cw;
  for (let y = y0 >> 1; y < (y0 + h + 1) >> 1; y++) {
    for (let x = x0 >> 1; x < (x0 + w + 1) >> 1; x++) {
      i420[size * size + y * cw + x] = 128;
      i420[size * size + cs + y * cw + x] = 128;
    }
  }
}

/** Remove cached clips with the same parameters but another key (older renderer or photo). */
function pruneStale(dir: string, keep: string): void {
  const suffix = keep.slice(keep.indexOf('-', 'driving-'.length));
  for (const f of fs.readdirSync(dir)) {
    if (f.startsWith('driving-') && f !== keep && f !== `${keep}.json` && (f.endsWith(suffix) || f.endsWith(`${suffix}.json`))) {
      fs.rmSync(path.join(dir, f), { force: true });
    }
  }
}

export async function makeDrivingVideo(opts: DrivingVideoOptions = {}): Promise<DrivingVideo> {
  const frames = opts.frames ?? 180;
  const fps = opts.fps ?? 30;
  const size = opts.size ?? 480;
  if (!Number.isInteger(frames) || frames < 1) throw new Error(`frames must be a positive integer, got ${frames}`);
  if (!Number.isInteger(fps) || fps < 1 || fps > 120) throw new Error(`fps must be an integer in 1..120, got ${fps}`);
  if (!Number.isInteger(size) || size < 64 || size > 2048 || size % 2) throw new Error(`size must be an even integer in 64..2048, got ${size}`);
  const photo = typeof opts.photo === 'string' || opts.photo === undefined ? new Uint8Array(fs.readFileSync(opts.photo ?? DEFAULT_PHOTO)) : opts.photo;
  const code = opts.frameCode ?? true;
  if (code && frames > 1 << FRAME_CODE.indexBits) throw new Error(`at most ${1 << FRAME_CODE.indexBits} frames with frameCode`);
  const key = cacheKey(photo, frames, fps, size, code);
  const out = opts.out ?? path.join(os.tmpdir(), 'avatar-sfu-driving', `driving-${key}-${size}-${fps}x${frames}.y4m`);
  const meta = `${out}.json`;
  const frameBytes = size * size * 1.5;
  const expectedBytes = Buffer.byteLength(y4mHeader(size, size, fps)) + frames * (6 + frameBytes);
  if (fs.existsSync(out) && fs.existsSync(meta)) {
    try {
      const m = JSON.parse(fs.readFileSync(meta, 'utf8')) as { key: string; groundTruth: GroundTruthFrame[] };
      if (m.key === key && fs.statSync(out).size === expectedBytes && m.groundTruth.length === frames) {
        return { path: out, frames, fps, size, groundTruth: m.groundTruth, cached: true, renderMs: 0 };
      }
    } catch {
      // re-render
    }
  }

  const t0 = performance.now();
  const identity = await enrollIdentityFromPhoto(photo, { textureSize: Math.max(512, size) });
  const gen = new MeshAvatarGenerator();
  await gen.initialize(identity);
  const rest = gen.restMotion().pose;
  const duration = frames / fps;
  const groundTruth: GroundTruthFrame[] = [];
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, y4mHeader(size, size, fps));
    const frameTag = Buffer.from('FRAME\n');
    let reuse: ReturnType<MeshAvatarGenerator['render']> | undefined;
    for (let i = 0; i < frames; i++) {
      const t = i / fps;
      const m = drivingMotionAt(t, duration);
      const expression = new Float32Array(EXPRESSION_SIZE);
      expression[EXPR.jawOpen] = m.jawOpen;
      expression[EXPR.blinkL] = m.blink;
      expression[EXPR.blinkR] = m.blink;
      const pose: HeadPose = { ...rest, yaw: rest.yaw + m.yaw, pitch: rest.pitch + m.pitch };
      const fr = gen.render({ pose, expression }, undefined, { size, format: 'i420', reuse });
      reuse = fr;
      if (code) stampFrameCode(fr.i420!, size, i);
      fs.writeSync(fd, frameTag);
      fs.writeSync(fd, fr.i420!, 0, frameBytes);
      groundTruth.push({ t, pose, expression: Array.from(expression) });
    }
  } finally {
    fs.closeSync(fd);
    gen.close();
  }
  const metaTmp = `${tmp}.json`;
  fs.writeFileSync(metaTmp, JSON.stringify({ key, frames, fps, size, groundTruth }));
  fs.renameSync(metaTmp, meta);
  fs.renameSync(tmp, out);
  if (!opts.out) pruneStale(path.dirname(out), path.basename(out));
  return { path: out, frames, fps, size, groundTruth, cached: false, renderMs: performance.now() - t0 };
}
