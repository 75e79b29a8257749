/**
 * Keypoint-avatar render benchmark: single-threaded MeshAvatarGenerator over a synthetic driving
 * sequence (head turns, mouth opening and closing, blinks, free-view sweep).
 * `benchRender()` returns numbers; run directly to print them:
 *   node --import tsx bench/keypoint-render.ts
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { enrollIdentityFromPhoto, type EnrolledIdentity } from '../server/src/avatar/identity/enroll.ts';
import { MeshAvatarGenerator } from '../worker/src/generator/mesh-generator.ts';
import type { PixelFormat, RenderedFrame } from '../worker/src/generator/generator.ts';
import { EXPR, EXPRESSION_SIZE } from '../models/face/expression-code.ts';

export interface BenchRenderOptions {
  /** default [256, 512] */
  sizes?: number[];
  /** frames per size, default 200 (after 10 warm-up frames) */
  frames?: number;
  format?: PixelFormat;
  /** enrolled identity; default: the astronaut fixture (enrollment runs Human once, ~1 s) */
  identity?: EnrolledIdentity;
}

export interface BenchRenderResult {
  size: number;
  frames: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  /** frames per second of one core, rendering only */
  fps: number;
}

export async function benchRender(opts: BenchRenderOptions = {}): Promise<BenchRenderResult[]> {
  const identity = opts.identity ?? (await enrollIdentityFromPhoto(readFileSync(new URL('../test/fixtures/astronaut.png', import.meta.url))));
  const gen = new MeshAvatarGenerator();
  await gen.initialize(identity);
  const rest = gen.restMotion();
  const frames = opts.frames ?? 200;
  const results: BenchRenderResult[] = [];
  const expr = new Float32Array(EXPRESSION_SIZE);
  for (const size of opts.sizes ?? [256, 512]) {
    let reuse: RenderedFrame | undefined;
    const times: number[] = [];
    for (let i = -10; i < frames; i++) {
      const t = i / 30;
      expr.fill(0);
      expr[EXPR.jawOpen] = Math.max(0, Math.sin(t * 2 * Math.PI * 2.5)) * 0.7;
      expr[EXPR.mouthWide] = 0.3 * Math.sin(t * 3.1);
      expr[EXPR.smile] = 0.3 * Math.sin(t * 0.7);
      const blink = (i % 90) < 6 ? 1 - Math.abs((i % 90) - 3) / 3 : 0;
      expr[EXPR.blinkL] = blink;
      expr[EXPR.blinkR] = blink;
      expr[EXPR.browL] = expr[EXPR.browR] = 0.4 * Math.sin(t * 1.3);
      const pose = { ...rest.pose, yaw: rest.pose.yaw + 0.35 * Math.sin(t * 1.1), pitch: rest.pose.pitch + 0.15 * Math.sin(t * 0.8), roll: rest.pose.roll + 0.1 * Math.sin(t * 0.5) };
      const view = { yaw: 0.3 * Math.sin(t * 0.4), pitch: 0.1 * Math.sin(t * 0.6), roll: 0 };
      const fr = gen.render({ pose, expression: expr }, view, { size, format: opts.format ?? 'i420', reuse });
      reuse = fr;
      if (i >= 0) times.push(fr.renderMs);
    }
    times.sort((a, b) => a - b);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
    results.push({ size, frames, meanMs: mean, p50Ms: q(0.5), p95Ms: q(0.95), maxMs: times[times.length - 1], fps: 1000 / mean });
  }
  gen.close();
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const res = await benchRender();
  for (const r of res) {
    console.log(`${r.size}²: mean ${r.meanMs.toFixed(2)} ms, p50 ${r.p50Ms.toFixed(2)} ms, p95 ${r.p95Ms.toFixed(2)} ms, max ${r.maxMs.toFixed(2)} ms → ${r.fps.toFixed(0)} fps on one core`);
  }
}
