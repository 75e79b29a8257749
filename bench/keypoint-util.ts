/**
 * Helpers of the keypoint-avatar benchmark (bench/keypoint.ts): statistics, image metrics (PSNR,
 * SSIM, box luma distances), I420/RGB conversions, ffmpeg decoding of driving videos, /proc CPU
 * sampling and a server child process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------- statistics

/** Linear-interpolated quantile (q in [0, 1]); NaN for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

/** Rounded number, or null for NaN/undefined (JSON has no NaN). */
export function num(v: number | undefined | null, digits = 1): number | null {
  if (v === undefined || v === null || !Number.isFinite(v)) return null;
  return Math.round(v * 10 ** digits) / 10 ** digits;
}

// ---------------------------------------------------------------- images

/** A box in fractions of the frame: x0, y0 inclusive, x1, y1 exclusive. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export const FULL_BOX: Box = { x0: 0, y0: 0, x1: 1, y1: 1 };

/** Copy of the luma inside `box` of a width×height plane (row-major), for distance checks. */
export function cropPlane(plane: Uint8Array, width: number, height: number, box: Box): Uint8Array {
  const x0 = Math.floor(box.x0 * width), x1 = Math.floor(box.x1 * width);
  const y0 = Math.floor(box.y0 * height), y1 = Math.floor(box.y1 * height);
  const out = new Uint8Array((x1 - x0) * (y1 - y0));
  let o = 0;
  for (let y = y0; y < y1; y++) {
    out.set(plane.subarray(y * width + x0, y * width + x1), o);
    o += x1 - x0;
  }
  return out;
}

/** Mean absolute difference of two equally sized byte arrays (NaN when the sizes differ). */
export function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length || a.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

/** RGB (3 bytes/px) → RGBA. */
export function rgbToRgba(rgb: Uint8Array, n: number, out: Uint8Array = new Uint8Array(n * 4)): Uint8Array {
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    out[i * 4] = rgb[j]!;
    out[i * 4 + 1] = rgb[j + 1]!;
    out[i * 4 + 2] = rgb[j + 2]!;
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** BT.601 full-range luma of RGBA pixels (what SSIM is computed on). */
export function rgbaToLuma(rgba: Uint8Array | Uint8ClampedArray, n: number): Float32Array {
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = 0.299 * rgba[i * 4]! + 0.587 * rgba[i * 4 + 1]! + 0.114 * rgba[i * 4 + 2]!;
  return y;
}

/** PSNR (dB) over the R, G and B channels of two RGBA images of n pixels (peak 255). */
export function psnrRgba(a: Uint8Array | Uint8ClampedArray, b: Uint8Array | Uint8ClampedArray, n: number): number {
  let se = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const d = a[i * 4 + c]! - b[i * 4 + c]!;
      se += d * d;
    }
  }
  const mse = se / (3 * n);
  return mse === 0 ? 100 : 10 * Math.log10((255 * 255) / mse);
}

const SSIM_WINDOW = (() => {
  // 11-tap Gaussian, sigma 1.5 (Wang et al. 2004), separable
  const w = new Float64Array(11);
  let s = 0;
  for (let i = 0; i < 11; i++) s += w[i] = Math.exp(-((i - 5) ** 2) / (2 * 1.5 * 1.5));
  for (let i = 0; i < 11; i++) w[i]! /= s;
  return w;
})();

/** Separable 11×11 Gaussian filter, "valid" region only: (w−10)×(h−10). */
function gaussValid(src: Float64Array, w: number, h: number): Float64Array {
  const ow = w - 10, oh = h - 10;
  const tmp = new Float64Array(ow * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let k = 0; k < 11; k++) s += SSIM_WINDOW[k]! * src[y * w + x + k]!;
      tmp[y * ow + x] = s;
    }
  }
  const out = new Float64Array(ow * oh);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let k = 0; k < 11; k++) s += SSIM_WINDOW[k]! * tmp[(y + k) * ow + x]!;
      out[y * ow + x] = s;
    }
  }
  return out;
}

/** Mean SSIM of two luma images (Gaussian 11×11, σ 1.5, K1 0.01, K2 0.03, L 255, valid windows). */
export function ssimLuma(a: Float32Array, b: Float32Array, w: number, h: number): number {
  const n = w * h;
  const A = new Float64Array(n), B = new Float64Array(n), AA = new Float64Array(n), BB = new Float64Array(n), AB = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = a[i]!, y = b[i]!;
    A[i] = x; B[i] = y; AA[i] = x * x; BB[i] = y * y; AB[i] = x * y;
  }
  const mA = gaussValid(A, w, h), mB = gaussValid(B, w, h), sAA = gaussValid(AA, w, h), sBB = gaussValid(BB, w, h), sAB = gaussValid(AB, w, h);
  const C1 = (0.01 * 255) ** 2, C2 = (0.03 * 255) ** 2;
  let sum = 0;
  for (let i = 0; i < mA.length; i++) {
    const ma = mA[i]!, mb = mB[i]!;
    const va = sAA[i]! - ma * ma, vb = sBB[i]! - mb * mb, cov = sAB[i]! - ma * mb;
    sum += ((2 * ma * mb + C1) * (2 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
  }
  return sum / mA.length;
}

// ---------------------------------------------------------------- driving videos (ffmpeg)

export interface VideoInfo {
  width: number;
  height: number;
  fps: number;
}

/** Width, height and frame rate of the first video stream (ffprobe). */
export function probeVideo(file: string): VideoInfo {
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height,avg_frame_rate,r_frame_rate', '-of', 'json', file], { encoding: 'utf8' });
  if (r.error) throw new Error(`ffprobe: ${r.error.message} (install Debian ffmpeg)`);
  if (r.status !== 0) throw new Error(`ffprobe ${file}: ${r.stderr.trim()}`);
  const s = (JSON.parse(r.stdout) as { streams?: { width?: number; height?: number; avg_frame_rate?: string; r_frame_rate?: string }[] }).streams?.[0];
  if (!s?.width || !s.height) throw new Error(`${file}: no video stream`);
  const rate = (v: string | undefined): number => {
    const [a, b] = (v ?? '0/0').split('/').map(Number);
    return a && b ? a / b : NaN;
  };
  const fps = Number.isFinite(rate(s.avg_frame_rate)) ? rate(s.avg_frame_rate) : rate(s.r_frame_rate);
  return { width: s.width, height: s.height, fps: Number.isFinite(fps) ? fps : 30 };
}

/**
 * Decode up to `maxFrames` frames of a video to RGB24 with ffmpeg (argument array, no shell) and
 * call `onFrame` for each in order; the next frame is read only after the promise resolves.
 * `-noautorotate` keeps frames at the size ffprobe reports.
 */
export async function decodeVideo(file: string, maxFrames: number, onFrame: (rgb: Uint8Array, index: number, info: VideoInfo) => Promise<void>): Promise<{ frames: number; info: VideoInfo }> {
  const info = probeVideo(file);
  const frameBytes = info.width * info.height * 3;
  const child = spawn('ffmpeg', ['-v', 'error', '-nostdin', '-noautorotate', '-i', file, '-frames:v', String(maxFrames), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => void (stderr = (stderr + d).slice(-2000)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  let buf: Buffer = Buffer.alloc(0);
  let index = 0;
  try {
    for await (const chunk of child.stdout!) {
      buf = buf.length ? Buffer.concat([buf, chunk as Buffer]) : (chunk as Buffer);
      while (buf.length >= frameBytes && index < maxFrames) {
        const frame = new Uint8Array(buf.subarray(0, frameBytes));
        buf = buf.subarray(frameBytes);
        await onFrame(frame, index++, info);
      }
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  const code = await exited;
  if (code !== 0 && index === 0) throw new Error(`ffmpeg could not decode ${file}: ${stderr.trim()}`);
  return { frames: index, info };
}

/**
 * Convert any video to a .y4m for Chromium's fake camera: square crop to `size`, `fps`, at most `seconds`.
 * ffmpeg writes into a pipe that this process copies to `out`: if the bench dies (even SIGKILLed),
 * ffmpeg's next write fails (EPIPE/SIGPIPE) and it exits instead of converting on alone.
 */
export async function videoToY4m(file: string, out: string, size: number, fps: number, seconds: number): Promise<void> {
  const vf = `crop='min(iw,ih)':'min(iw,ih)',scale=${size}:${size},fps=${fps},format=yuv420p`;
  const child = spawn('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-t', String(seconds), '-vf', vf, '-an', '-f', 'yuv4mpegpipe', 'pipe:1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => void (stderr = (stderr + d).slice(-2000)));
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, error }));
    child.once('close', (code) => resolve({ code }));
  });
  try {
    await pipeline(child.stdout!, fs.createWriteStream(out));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  const { code, error } = await exited;
  if (error) throw new Error(`ffmpeg → y4m failed: ${error.message} (install Debian ffmpeg)`);
  if (code !== 0) throw new Error(`ffmpeg → y4m failed (${code}): ${stderr.trim()}`);
}

// ---------------------------------------------------------------- /proc

const CLK_TCK = 100;

/** utime + stime of a process in seconds (NaN when it is gone). */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Children of `ppid` whose command line contains `needle`. */
export function childPids(ppid: number, needle: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) !== ppid) continue;
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export interface MachineSample {
  at: number;
  busy: number;
  total: number;
  /** /proc/pressure/cpu "some" total, µs */
  pressureUs: number;
}

export function sampleMachine(): MachineSample {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  let pressureUs = NaN;
  try {
    const m = /^some .*total=(\d+)/m.exec(fs.readFileSync('/proc/pressure/cpu', 'utf8'));
    if (m) pressureUs = Number(m[1]);
  } catch {
    // no PSI
  }
  return { at: performance.now(), busy: total - (v[3] ?? 0) - (v[4] ?? 0), total, pressureUs };
}

/** Machine CPU busy (% of all cores, 100 = one core) and CPU pressure (% of the time) between two samples. */
export function machineLoad(a: MachineSample, b: MachineSample, cores: number): { machine_cpu_pct: number | null; cpu_pressure_pct: number | null } {
  return {
    machine_cpu_pct: num(((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100 * cores),
    cpu_pressure_pct: num(((b.pressureUs - a.pressureUs) / 1e3 / Math.max(1, b.at - a.at)) * 100),
  };
}

// ---------------------------------------------------------------- server child process

export { startServerProcess, type ServerProcess } from './serverProcess.ts';

/** Newest mtime (ms) of the files under `dirs` (recursive), 0 when none. */
export function newestMtime(dirs: string[]): number {
  let newest = 0;
  const walk = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const d of dirs) walk(d);
  return newest;
}
