/** `npm run train -- gaussian …` (see scripts/train.ts): option parsing and the run. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** "A:B" (seconds) → [A, B]; throws with a clear message. */
export function parseRange(name: string, v: string | undefined): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*[:,]\s*(\d+(?:\.\d+)?)\s*$/.exec(v);
  if (!m) throw new Error(`--${name} must be START:END in seconds (e.g. 0.5:6), got "${v}"`);
  const a = Number(m[1]), b = Number(m[2]);
  if (!(b > a)) throw new Error(`--${name} ${v}: END must be after START`);
  return [a, b];
}

function num(name: string, v: string | undefined, min: number, max: number, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < min || x > max || (integer && !Number.isInteger(x))) throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got "${v}"`);
  return x;
}

export async function trainGaussianCli(argv: string[]): Promise<number> {
  let opts;
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        clip: { type: 'string' }, train: { type: 'string' }, test: { type: 'string' }, out: { type: 'string' },
        minutes: { type: 'string' }, iterations: { type: 'string' }, size: { type: 'string' }, gaussians: { type: 'string' },
        seed: { type: 'string' }, threads: { type: 'string' },
      },
    });
    if (!values.clip) throw new Error('--clip VIDEO is required');
    const size = num('size', values.size, 64, 1024, true) ?? 256;
    if (size % 16 !== 0) throw new Error(`--size must be a multiple of 16, got ${size}`);
    opts = {
      clip: path.resolve(values.clip),
      train: parseRange('train', values.train),
      test: parseRange('test', values.test),
      out: values.out ? path.resolve(values.out) : undefined,
      minutes: num('minutes', values.minutes, 0.05, 600, false),
      iterations: num('iterations', values.iterations, 1, 10_000_000, true),
      size,
      gaussians: num('gaussians', values.gaussians, 2000, 500_000, true),
      seed: num('seed', values.seed, 0, 2 ** 31, true),
      threads: num('threads', values.threads, 1, 8, true),
    };
  } catch (err) {
    process.stderr.write(`train gaussian: ${(err as Error).message}\n`);
    return 2;
  }
  const { runGaussianPipeline } = await import('../server/src/avatar/training/gaussianPipeline.ts');
  const { ClipError } = await import('../server/src/avatar/training/prepareClip.ts');
  const log = (s: string): void => void process.stdout.write(`[gaussian] ${s}\n`);
  let out = opts.out;
  if (!out) {
    const h = crypto.createHash('sha256').update(opts.clip).digest('hex').slice(0, 8);
    out = path.join(root, 'data', 'avatars', `${path.basename(opts.clip).replace(/\.[^.]+$/, '')}-${h}.avgs`);
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  try {
    const r = await runGaussianPipeline({ ...opts, out, log });
    log(`done: ${r.iterations} iterations in ${r.trainSeconds.toFixed(0)} s on ${r.threads} threads (${r.msPerIteration.toFixed(1)} ms/it), peak RSS ${r.peakRssMb.toFixed(0)} MB`);
    log(`held-out PSNR curve: ${r.curve.map((c) => `${c.seconds.toFixed(0)}s ${Number.isFinite(c.psnr) ? c.psnr.toFixed(2) : '–'}`).join(', ')}`);
    return 0;
  } catch (err) {
    if (err instanceof ClipError) {
      process.stderr.write(`train gaussian: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
