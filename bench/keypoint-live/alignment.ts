/**
 * Which motion a Node viewer's decoded frames show: nearest-reference decisions against reference
 * renders of the same identity (reference.ts), so "shows the new state" is not a change threshold.
 */
import { cropPlane, meanAbsDiff, quantile, type Box } from '../keypoint-util.ts';
import type { RecordedFrame } from './viewer.ts';

/** Where the head is at 256² (with room for ±25° turns and nodding). */
export const FACE_BOX: Box = { x0: 0.2, y0: 0.15, x1: 0.8, y1: 0.9 };
/** Where the jaw and lips move at 256² (avatar-session.test.ts). */
export const JAW_BOX: Box = { x0: 0.2, y0: 0.45, x1: 0.75, y1: 0.9 };

/**
 * First frame after `t0` (and before `until`) that is closer to `refNew` than to every one of
 * `refOld` (all crops of `box`). Returns its arrival time, or null.
 */
export function firstShowing(frames: readonly RecordedFrame[], width: number, height: number, box: Box, t0: number, until: number, refNew: Uint8Array, refOld: readonly Uint8Array[]): number | null {
  for (const f of frames) {
    if (f.t <= t0 || f.luma.length !== width * height) continue;
    if (f.t > until) break;
    const c = cropPlane(f.luma, width, height, box);
    const dn = meanAbsDiff(c, refNew);
    if (refOld.every((r) => dn < meanAbsDiff(c, r))) return f.t;
  }
  return null;
}

/**
 * Which motion frame each viewer frame shows, and when each motion frame first became visible.
 *
 * The worker renders the latest motion it has, so the motion index shown by successive viewer
 * frames never decreases, and a frame can only show motion captured before it arrived. Each viewer
 * frame (face box) is compared with the reference render of every motion frame captured in the
 * 1.5 s before it; dynamic programming picks the non-decreasing assignment with the least total
 * distance (robust where single frames are ambiguous). A motion frame counts as a "step" when its
 * render differs from the renders of the 3 motion frames before it by more than 1.5 × the codec
 * noise (median distance of a viewer frame to its best reference); its latency is the arrival of
 * the first viewer frame assigned to it or a later motion frame, minus its capture time.
 */
export function alignToMotion(frames: readonly RecordedFrame[], width: number, height: number, capture: readonly number[], refs: readonly Uint8Array[], box: Box, from: number): { latencies: number[]; indices: number[]; steps: number; noise: number; pathDistance: number } {
  const M = capture.length;
  const F = frames.length;
  const dist: Float64Array[] = [];
  const lo: number[] = [];
  const hi: number[] = [];
  const minPerFrame: number[] = [];
  let l = 0;
  let h = 0;
  for (const f of frames) {
    while (l < M && capture[l]! <= f.t - 1500) l++;
    while (h < M && capture[h]! < f.t) h++;
    const row = new Float64Array(M).fill(Infinity);
    const c = cropPlane(f.luma, width, height, box);
    let best = Infinity;
    for (let m = l; m < h; m++) best = Math.min(best, (row[m] = meanAbsDiff(c, refs[m]!)));
    dist.push(row);
    lo.push(l);
    hi.push(h);
    if (Number.isFinite(best)) minPerFrame.push(best);
  }
  const noise = quantile(minPerFrame, 0.5);
  // DP: cost[f][m] = dist[f][m] + min over m' ≤ m of cost[f−1][m']
  const back: Int32Array[] = [];
  let prev: Float64Array | null = null;
  const used: number[] = [];
  for (let f = 0; f < F; f++) {
    if (lo[f]! >= hi[f]!) continue;
    const cur = new Float64Array(M).fill(Infinity);
    const bk = new Int32Array(M).fill(-1);
    let run = Infinity;
    let arg = -1;
    for (let m = 0; m < hi[f]!; m++) {
      if (prev && prev[m]! < run) {
        run = prev[m]!;
        arg = m;
      }
      if (m < lo[f]!) continue;
      const base = prev ? run : 0;
      if (!Number.isFinite(base)) continue;
      cur[m] = base + dist[f]![m]!;
      bk[m] = arg;
    }
    back.push(bk);
    used.push(f);
    prev = cur;
  }
  const assigned = new Int32Array(F).fill(-1);
  if (prev) {
    let m = 0;
    for (let k = 1; k < M; k++) if (prev[k]! < prev[m]!) m = k;
    for (let u = used.length - 1; u >= 0 && m >= 0; u--) {
      assigned[used[u]!] = m;
      m = back[u]![m]!;
    }
  }
  const pathD: number[] = [];
  for (let f = 0; f < F; f++) if (assigned[f]! >= 0) pathD.push(dist[f]![assigned[f]!]!);
  const latencies: number[] = [];
  const indices: number[] = [];
  let steps = 0;
  for (let i = 3; i < M; i++) {
    if (capture[i]! < from || capture[i]! > (frames[F - 1]?.t ?? 0) - 1000) continue;
    const step = Math.min(meanAbsDiff(refs[i]!, refs[i - 1]!), meanAbsDiff(refs[i]!, refs[i - 2]!), meanAbsDiff(refs[i]!, refs[i - 3]!));
    if (!(step > 1.5 * noise)) continue;
    steps++;
    for (let f = 0; f < F; f++) {
      if (assigned[f]! >= i) {
        latencies.push(frames[f]!.t - capture[i]!);
        indices.push(i);
        break;
      }
    }
  }
  return { latencies, indices, steps, noise, pathDistance: quantile(pathD, 0.5) };
}
