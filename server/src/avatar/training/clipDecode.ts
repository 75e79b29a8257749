/**
 * Video decoding for clip preprocessing: ffprobe for the stream's size, frame rate and duration,
 * ffmpeg for raw frames of chosen frame numbers, and a streamed sha256 of the file.
 *
 * ffmpeg and ffprobe are always spawned with an argument array (no shell), so file names are never
 * interpreted. Every child is killed with SIGKILL on every exit path (end, error, abort, or the
 * consumer stopping early), and an AbortSignal kills it at once.
 *
 * Frames are decoded upright: ffmpeg applies the stream's display rotation (phones record portrait
 * video as landscape frames plus a rotation), and probeClip reports the rotated size. Human finds
 * few faces lying on their side, so honouring the rotation matters for phone clips.
 *
 * Frames are chosen by their decode number `n` (ffmpeg's select filter), not by seeking to a time:
 * time-based seeking is not frame-accurate on real files. On Debian's Megamind.avi (MPEG-4 part 2
 * in AVI, the first frame has pts 1) `-ss` to frame 100 returned frame 98. Selecting by number
 * decodes the frames before the range too (cheap next to face tracking: an 11 s 720×528 clip
 * decodes in ~0.3 s here) but converts and pipes only the chosen ones, and `-frames:v` stops ffmpeg
 * after the last one.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { abortedError, ClipError } from './clipErrors.ts';

export interface ClipInfo {
  /** displayed size (after the stream's rotation), the size of decoded frames */
  width: number;
  height: number;
  /** display rotation of the stream in degrees (0, ±90, 180), applied when decoding */
  rotation: number;
  /** average frame rate of the first video stream */
  fps: number;
  /** seconds (container duration, else the stream's, else NaN) */
  duration: number;
  /** the container's start time, seconds: clip time = pts time − startTime (what players show) */
  startTime: number;
  /** frames the container claims (nb_frames), or NaN; the scan in shotCuts.ts counts exactly */
  nbFrames: number;
}

interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Run a tool to completion and collect its output. `onStderrLine` sees each stderr line as it
 * arrives (the scene scan parses showinfo lines this way instead of keeping megabytes of text).
 */
export function runTool(
  cmd: string,
  args: string[],
  opts: { signal?: AbortSignal; onStderrLine?: (line: string) => void; keepStderr?: number } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(abortedError(opts.signal, cmd));
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = opts.keepStderr ?? 4000;
    let stdout = '';
    let stderr = '';
    let partial = '';
    const onAbort = (): void => void child.kill('SIGKILL');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.setEncoding('utf8').on('data', (d: string) => void (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-keep);
      if (!opts.onStderrLine) return;
      partial += d;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        opts.onStderrLine(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
    });
    let spawnError: Error | undefined;
    child.once('error', (e) => void (spawnError = e));
    child.once('close', (code, signal) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (partial && opts.onStderrLine) opts.onStderrLine(partial);
      if (opts.signal?.aborted) return reject(abortedError(opts.signal, cmd));
      if (spawnError) return reject(new ClipError('DECODE_FAILED', `${cmd} could not be started: ${spawnError.message} (install Debian ffmpeg)`, { cause: spawnError }));
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function rate(v: string | undefined): number {
  const [a, b] = (v ?? '0/0').split('/').map(Number);
  return a && b ? a / b : NaN;
}

/** Size, frame rate, duration and start time of the first video stream. DECODE_FAILED when there is none. */
export async function probeClip(file: string, signal?: AbortSignal): Promise<ClipInfo> {
  const r = await runTool('ffprobe', [
    '-v', 'error', '-select_streams', 'v:0',
    '-show_entries', 'stream=width,height,avg_frame_rate,r_frame_rate,duration,nb_frames:stream_tags=rotate:stream_side_data=rotation:format=duration,start_time',
    '-of', 'json', file,
  ], { signal });
  if (r.code !== 0) throw new ClipError('DECODE_FAILED', `ffprobe cannot read ${file}: ${r.stderr.trim() || `exit ${r.code ?? r.signal}`}`);
  type Probe = {
    streams?: {
      width?: number; height?: number; avg_frame_rate?: string; r_frame_rate?: string; duration?: string; nb_frames?: string;
      tags?: { rotate?: string }; side_data_list?: { rotation?: number }[];
    }[];
    format?: { duration?: string; start_time?: string };
  };
  let p: Probe;
  try {
    p = JSON.parse(r.stdout) as Probe;
  } catch {
    throw new ClipError('DECODE_FAILED', `ffprobe gave unreadable output for ${file}`);
  }
  const s = p.streams?.[0];
  if (!s?.width || !s.height) throw new ClipError('DECODE_FAILED', `${file} has no video stream`);
  const avg = rate(s.avg_frame_rate);
  const fps = Number.isFinite(avg) && avg > 0 ? avg : rate(s.r_frame_rate);
  if (!(fps > 0)) throw new ClipError('DECODE_FAILED', `${file}: unknown frame rate`);
  const fmtDur = Number(p.format?.duration);
  const streamDur = Number(s.duration);
  const start = Number(p.format?.start_time);
  // the display matrix (side data) is what ffmpeg applies; the old 'rotate' tag is a fallback
  const sideRot = s.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation;
  const rotation = Number(sideRot ?? s.tags?.rotate ?? 0) || 0;
  const quarter = Math.abs(Math.round(rotation / 90)) % 2 === 1;
  return {
    width: quarter ? s.height : s.width,
    height: quarter ? s.width : s.height,
    rotation,
    fps,
    duration: Number.isFinite(fmtDur) && fmtDur > 0 ? fmtDur : Number.isFinite(streamDur) && streamDur > 0 ? streamDur : NaN,
    startTime: Number.isFinite(start) ? start : 0,
    nbFrames: Number(s.nb_frames ?? NaN),
  };
}

/** Frames first, first + step, … ≤ last (decode numbers). */
export interface FrameSpan {
  first: number;
  last: number;
  step: number;
}

/** The frame numbers of spans, sorted and without duplicates. */
export function spanFrames(spans: readonly FrameSpan[]): number[] {
  const set = new Set<number>();
  for (const s of spans) for (let n = s.first; n <= s.last; n += s.step) set.add(n);
  return [...set].sort((a, b) => a - b);
}

export interface DecodedFrame {
  /** decode number of the frame in the clip */
  index: number;
  /** width × height × channels bytes; a fresh buffer per frame (it may be transferred) */
  pixels: Uint8Array;
}

/**
 * Decode the frames of `spans` as raw RGB24 (3 channels) or RGBA (4) in decode order. The next
 * frame is read from ffmpeg only when the consumer asks for it, so at most one frame (plus the
 * pipe's buffer) is held here. DECODE_FAILED when ffmpeg fails or delivers fewer frames than asked.
 */
export async function* decodeFrames(
  file: string,
  info: Pick<ClipInfo, 'width' | 'height'>,
  spans: readonly FrameSpan[],
  opts: { channels?: 3 | 4; signal?: AbortSignal } = {},
): AsyncGenerator<DecodedFrame> {
  const indices = spanFrames(spans);
  if (indices.length === 0) return;
  const channels = opts.channels ?? 3;
  const frameBytes = info.width * info.height * channels;
  const signal = opts.signal;
  if (signal?.aborted) throw abortedError(signal, 'decoding');
  // between() keeps the expression short for ranges; the step is relative to each span's start
  const expr = spans
    .filter((s) => s.first <= s.last)
    .map((s) => (s.step === 1 ? `between(n,${s.first},${s.last})` : `between(n,${s.first},${s.last})*not(mod(n-${s.first},${s.step}))`))
    .join('+');
  const args = [
    '-v', 'error', '-nostdin', '-i', file, '-an', '-sn', '-dn',
    '-vf', `select='${expr}'`,
    // passthrough: without it ffmpeg duplicates frames to fill the gaps select leaves
    '-fps_mode', 'passthrough',
    '-frames:v', String(indices.length),
    '-f', 'rawvideo', '-pix_fmt', channels === 4 ? 'rgba' : 'rgb24', 'pipe:1',
  ];
  const child = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => void (stderr = (stderr + d).slice(-2000)));
  let spawnError: Error | undefined;
  child.once('error', (e) => void (spawnError = e));
  const exited = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve) => child.once('close', (code, sig) => resolve({ code, sig })));
  const onAbort = (): void => void child.kill('SIGKILL');
  signal?.addEventListener('abort', onAbort, { once: true });
  let k = 0;
  try {
    let frame = new Uint8Array(frameBytes);
    let filled = 0;
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(frameBytes - filled, chunk.length - off);
        frame.set(chunk.subarray(off, off + n), filled);
        filled += n;
        off += n;
        if (filled === frameBytes) {
          if (k >= indices.length) break;
          const out = frame;
          frame = new Uint8Array(frameBytes);
          filled = 0;
          yield { index: indices[k++]!, pixels: out };
        }
      }
    }
    const { code, sig } = await exited;
    if (signal?.aborted) throw abortedError(signal, 'decoding');
    if (spawnError) throw new ClipError('DECODE_FAILED', `ffmpeg could not be started: ${spawnError.message} (install Debian ffmpeg)`, { cause: spawnError });
    if (code !== 0) throw new ClipError('DECODE_FAILED', `ffmpeg failed on ${file} (${code ?? sig}): ${stderr.trim()}`);
    if (k < indices.length) throw new ClipError('DECODE_FAILED', `ffmpeg delivered ${k} of ${indices.length} frames of ${file}${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** sha256 (hex) of a file's bytes, streamed (clips can be large). */
export async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const stream = fs.createReadStream(file, { signal });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) hash.update(chunk);
  } catch (e) {
    if (signal?.aborted) throw abortedError(signal, 'hashing');
    throw e;
  }
  return hash.digest('hex');
}
