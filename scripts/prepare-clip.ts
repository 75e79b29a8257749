/**
 * Run the Gaussian-head clip preprocessing (server/src/avatar/training/prepareClip.ts) on a video
 * and print what it found: cuts, shots, ranges, frames with a face, timings and the motion ranges;
 * optionally save sample crops as PNG (first, middle and last training frame, last held-out frame).
 *
 *   node --import tsx scripts/prepare-clip.ts CLIP [--train a,b] [--test a,b] [--size 256]
 *        [--step 1] [--threads 2] [--samples DIR] [--json]
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { encodePng } from '../server/src/avatar/face/human-node.ts';
import { ClipError, prepareClip, type ClipFrame } from '../server/src/avatar/training/prepareClip.ts';
import { EXPR } from '../models/face/expression-code.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    train: { type: 'string' },
    test: { type: 'string' },
    size: { type: 'string' },
    step: { type: 'string' },
    threads: { type: 'string' },
    samples: { type: 'string' },
    json: { type: 'boolean' },
  },
});
const file = positionals[0];
if (!file) {
  process.stderr.write('usage: scripts/prepare-clip.ts CLIP [--train a,b] [--test a,b] [--size 256] [--step 1] [--threads 2] [--samples DIR] [--json]\n');
  process.exit(2);
}
const range = (v: string | undefined): [number, number] | undefined => {
  if (v === undefined) return undefined;
  const [a, b] = v.split(',').map(Number);
  return [a!, b!];
};

const t0 = performance.now();
try {
  const r = await prepareClip({
    file,
    train: range(values.train),
    test: range(values.test),
    size: values.size ? Number(values.size) : undefined,
    frameStep: values.step ? Number(values.step) : undefined,
    threads: values.threads ? Number(values.threads) : undefined,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  const all = [...r.train, ...r.test];
  const deg = (v: number): number => Math.round(((v * 180) / Math.PI) * 10) / 10;
  const span = (f: (x: ClipFrame) => number, frames: ClipFrame[]): [number, number] => [Math.min(...frames.map(f)), Math.max(...frames.map(f))];
  const yaw = span((x) => x.motion.pose.yaw, all), pitch = span((x) => x.motion.pose.pitch, all), roll = span((x) => x.motion.pose.roll, all);
  const summary = {
    file: r.file,
    sha256: r.sha256,
    video: `${r.width}×${r.height}, ${r.fps.toFixed(3)} fps, ${r.frameCount} frames, ${r.duration.toFixed(3)} s`,
    cuts: r.cuts.map((c) => Math.round(c * 1000) / 1000),
    shots: r.shots.map((s) => `${s.start.toFixed(3)}–${s.end.toFixed(3)}`),
    trainRange: r.trainRange.map((v) => Math.round(v * 1000) / 1000),
    testRange: r.testRange?.map((v) => Math.round(v * 1000) / 1000) ?? null,
    trainFrames: r.train.length,
    testFrames: r.test.length,
    framesTracked: r.stats.framesTracked,
    framesWithoutFace: r.stats.framesWithoutFace,
    multiFaceFrames: r.stats.multiFaceFrames,
    threads: r.stats.threads,
    loadMs: Math.round(r.stats.loadMs),
    trackMs: Math.round(r.stats.trackMs),
    trackMsPerFrame: Math.round(r.stats.trackMs / r.stats.framesTracked),
    decodeMs: Math.round(r.stats.decodeMs),
    totalMs: Math.round(performance.now() - t0),
    yawDeg: yaw.map(deg),
    pitchDeg: pitch.map(deg),
    rollDeg: roll.map(deg),
    jawOpenMax: Math.round(Math.max(...all.map((x) => x.motion.expression[EXPR.jawOpen]!)) * 100) / 100,
    blinkMax: Math.round(Math.max(...all.map((x) => Math.max(x.motion.expression[EXPR.blinkL]!, x.motion.expression[EXPR.blinkR]!))) * 100) / 100,
    cropSide: span((x) => x.crop.side, all).map(Math.round),
  };
  if (values.samples) {
    fs.mkdirSync(values.samples, { recursive: true });
    const picks: [string, ClipFrame | undefined][] = [
      ['train-first', r.train[0]],
      ['train-middle', r.train[Math.floor(r.train.length / 2)]],
      ['train-last', r.train[r.train.length - 1]],
      ['test-last', r.test[r.test.length - 1]],
    ];
    for (const [name, f] of picks) {
      if (!f) continue;
      const out = path.join(values.samples, `${name}-f${f.index}.png`);
      fs.writeFileSync(out, encodePng(f.rgba, r.size, r.size));
      process.stderr.write(`saved ${out}\n`);
    }
  }
  process.stdout.write(values.json ? `${JSON.stringify(summary)}\n` : `${JSON.stringify(summary, null, 2)}\n`);
} catch (e) {
  if (e instanceof ClipError) {
    process.stderr.write(`${e.code}: ${e.message}\n`);
    process.exit(1);
  }
  throw e;
}
