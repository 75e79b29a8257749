/**
 * Shot cuts of a clip: one ffmpeg pass over the whole clip with
 *   showinfo,select='gt(scene,0.3)',showinfo
 * The first showinfo lists every decoded frame (its decode number n and pts), which gives the
 * exact frame count and each frame's time; the second lists the frames whose scene-change score
 * (ffmpeg's normalised difference to the previous frame) exceeds the threshold: the first frames
 * of new shots. A cut is reported at that frame's time, so shot k is [cut(k−1), cut(k)).
 *
 * Frame times come from the pts, not n/fps: containers such as AVI may start the first frame one
 * frame late (Megamind.avi's first frame has pts 1/23.976 s), and ranges the user picks in a player
 * are in pts time.
 */
import { abortedError, ClipError } from './clipErrors.ts';
import { runTool, type ClipInfo } from './clipDecode.ts';

export interface ClipScan {
  /** clip time (seconds, pts − container start) of every decoded frame, by decode number */
  frameTimes: Float64Array;
  /** decode numbers of the first frame of each shot after the first (ascending) */
  cutFrames: number[];
  /** times of those frames, seconds */
  cuts: number[];
}

export interface Shot {
  start: number;
  end: number;
}

/** The default scene-change threshold (ffmpeg's scene score is 0..1). */
export const SCENE_THRESHOLD = 0.3;

const SHOWINFO = /^\[Parsed_showinfo_(\d+) @ [^\]]*\]\s+n:\s*(\d+)\s+pts:\s*(\S+)\s+pts_time:\s*(\S+)/;

export async function scanClip(file: string, info: Pick<ClipInfo, 'fps' | 'startTime'>, opts: { threshold?: number; signal?: AbortSignal } = {}): Promise<ClipScan> {
  const threshold = opts.threshold ?? SCENE_THRESHOLD;
  let times: number[] = [];
  const cutTimes: number[] = [];
  const r = await runTool('ffmpeg', [
    '-hide_banner', '-nostats', '-nostdin', '-loglevel', 'info', '-i', file, '-an', '-sn', '-dn',
    '-vf', `showinfo,select='gt(scene,${threshold})',showinfo`,
    '-fps_mode', 'passthrough', '-f', 'null', '-',
  ], {
    signal: opts.signal,
    onStderrLine: (line) => {
      const m = SHOWINFO.exec(line);
      if (!m) return;
      const n = Number(m[2]);
      // pts_time is NOPTS for streams without timestamps: fall back to the frame number
      const pts = Number(m[4]);
      if (m[1] === '0') {
        const t = Number.isFinite(pts) ? pts - info.startTime : n / info.fps;
        if (n === times.length) times.push(t);
        else times[n] = t;
      } else {
        cutTimes.push(Number.isFinite(pts) ? pts - info.startTime : NaN);
      }
    },
  });
  if (opts.signal?.aborted) throw abortedError(opts.signal, 'shot detection');
  if (r.code !== 0) throw new ClipError('DECODE_FAILED', `ffmpeg cannot decode ${file}: ${r.stderr.trim().split('\n').slice(-3).join(' ') || `exit ${r.code ?? r.signal}`}`);
  if (times.length === 0) throw new ClipError('DECODE_FAILED', `ffmpeg decoded no video frames from ${file}`);
  const frameTimes = Float64Array.from(times);
  times = [];
  // map each cut time to its frame: the frame with the nearest time (times ascend for normal clips)
  const cutFrames: number[] = [];
  for (const t of cutTimes) {
    let best = -1, bestD = Infinity;
    for (let i = 0; i < frameTimes.length; i++) {
      const d = Math.abs(frameTimes[i]! - t);
      if (d < bestD) { bestD = d; best = i; }
    }
    // a "cut" at the first frame separates nothing
    if (best > 0 && (cutFrames.length === 0 || best > cutFrames[cutFrames.length - 1]!)) cutFrames.push(best);
  }
  return { frameTimes, cutFrames, cuts: cutFrames.map((i) => frameTimes[i]!) };
}

/** Shots between cuts: [0, c0), [c0, c1), …, [c_last, duration). */
export function shotsFromCuts(cuts: readonly number[], duration: number): Shot[] {
  const edges = [0, ...cuts, duration];
  const shots: Shot[] = [];
  for (let i = 0; i + 1 < edges.length; i++) shots.push({ start: edges[i]!, end: edges[i + 1]! });
  return shots;
}

/** Shot index of each frame (the number of cuts at or before it). */
export function shotOfFrames(frameCount: number, cutFrames: readonly number[]): Int32Array {
  const out = new Int32Array(frameCount);
  let s = 0;
  for (let i = 0; i < frameCount; i++) {
    while (s < cutFrames.length && cutFrames[s]! <= i) s++;
    out[i] = s;
  }
  return out;
}
