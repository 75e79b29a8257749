/**
 * `npm run train -- <model> [options]`: trains one of our own models from scratch.
 *
 *   npm run train -- gaussian --clip VIDEO [--train A:B] [--test C:D] [--out FILE] [--minutes M]
 *                             [--iterations N] [--size N] [--gaussians N] [--seed S] [--threads T]
 *
 * gaussian: fits a per-identity 3D Gaussian head to a 5–10 s clip of one person talking
 * (server/src/avatar/training/gaussianPipeline.ts; times in seconds within the clip; default: the
 * longest shot, 70 % training / 30 % held out) and writes one asset file (default
 * data/avatars/<clip>-<hash>.avgs). Prints progress (iteration, loss, held-out PSNR, ETA).
 *
 *   npm run train -- audio2motion [--tiny] [--out DIR] [--cache DIR] [--steps N] [--no-real]
 *                                 [--future N] [--write-fixture]
 *
 * audio2motion: regenerates its data (espeak-ng synthetic speech with phoneme timings, real
 * pocketsphinx-testdata clips force-aligned with pocketsphinx, noise), trains, exports
 * audio2motion.onnx + audio2motion.json (default: into models/audio2motion/, i.e. the committed
 * weights) and prints held-out scores. Seeds are fixed: the same command gives the same model.
 * Needs Debian packages: espeak-ng libespeak-ng-dev pocketsphinx pocketsphinx-en-us
 * pocketsphinx-testdata, and a C compiler.
 * --write-fixture also rewrites test/fixtures/audio/ (the held-out clip used by the unit tests).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function usage(code: number): never {
  process.stderr.write([
    'usage: npm run train -- audio2motion [--tiny] [--out DIR] [--cache DIR] [--steps N] [--no-real] [--future N] [--write-fixture]',
    '       npm run train -- gaussian --clip VIDEO [--train A:B] [--test C:D] [--out FILE] [--minutes M] [--iterations N] [--size N] [--gaussians N] [--seed S] [--threads T]',
    '',
  ].join('\n'));
  process.exit(code);
}

const args = process.argv.slice(2);
const model = args.shift();
if (!model || model === '--help' || model === '-h') usage(model ? 0 : 2);
if (model === 'gaussian') {
  const { trainGaussianCli } = await import('./train-gaussian.ts');
  process.exit(await trainGaussianCli(args));
}
if (model !== 'audio2motion') {
  process.stderr.write(`unknown model "${model}" (known: audio2motion, gaussian)\n`);
  process.exit(2);
}
const opts: { tiny: boolean; out?: string; cache?: string; steps?: number; future?: number; noReal: boolean; fixture: boolean } = { tiny: false, noReal: false, fixture: false };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--tiny') opts.tiny = true;
  else if (a === '--no-real') opts.noReal = true;
  else if (a === '--write-fixture') opts.fixture = true;
  else if (a === '--out') opts.out = path.resolve(args[++i] ?? usage(2));
  else if (a === '--cache') opts.cache = path.resolve(args[++i] ?? usage(2));
  else if (a === '--steps') opts.steps = Number(args[++i] ?? usage(2));
  else if (a === '--future') opts.future = Number(args[++i] ?? usage(2));
  else usage(2);
}
if (opts.future !== undefined && !(Number.isInteger(opts.future) && opts.future >= 0 && opts.future <= 4)) {
  process.stderr.write(`--future must be an integer 0–4 (10 ms frames of model look-ahead), got ${String(opts.future)}\n`);
  process.exit(2);
}

const { runPipeline } = await import('../models/audio2motion/pipeline.ts');
const log = (s: string) => process.stdout.write(`[audio2motion] ${s}\n`);
const res = await runPipeline({ tiny: opts.tiny, outDir: opts.out, cacheDir: opts.cache, steps: opts.steps, noReal: opts.noReal, ...(opts.future !== undefined ? { arch: { future: opts.future } } : {}), log });
log(`wrote ${path.relative(root, res.onnxPath) || res.onnxPath} (${(res.bytes / 1024).toFixed(1)} KiB, ${res.parameters} parameters) and ${path.basename(res.sidecarPath)}`);
log(`time: data ${res.seconds.data.toFixed(0)} s, training ${res.seconds.train.toFixed(0)} s, total ${res.seconds.total.toFixed(0)} s`);
for (const [set, s] of Object.entries(res.heldOut)) {
  log(`held-out ${set.padEnd(5)} (model, ${s.frames} frames): mouth_corr ${s.mouth_corr.toFixed(3)}  jaw_mae ${s.jaw_mae.toFixed(3)}  wide_corr ${s.wide_corr.toFixed(3)}  viseme_acc ${s.viseme_acc.toFixed(3)} (speech ${s.viseme_acc_speech.toFixed(3)}, 5 groups ${s.viseme_group_acc.toFixed(3)})  voiced_acc ${s.voiced_acc.toFixed(3)}  [energy baseline corr ${s.energy_corr.toFixed(3)}]`);
}
for (const [k, s] of Object.entries(res.stream)) {
  log(`streaming API ${k.padEnd(12)}: ${Object.entries(s).map(([n, v]) => `${n} ${v}`).join('  ')}`);
}

if (opts.fixture) {
  const { realClips, readPcm16, alignClip } = await import('../models/audio2motion/data/sphinx.ts');
  const { defaultCacheDir } = await import('../models/audio2motion/data/espeak.ts');
  const clip = realClips().find((c) => c.id === 'librivox-0930');
  if (!clip) throw new Error('fixture clip missing');
  const dir = path.join(root, 'test/fixtures/audio');
  fs.mkdirSync(dir, { recursive: true });
  const { sampleRate } = readPcm16(clip.file);
  fs.copyFileSync(clip.file, path.join(dir, 'librivox-0930.wav'));
  const phones = alignClip(clip, path.join(opts.cache ?? defaultCacheDir(), 'align'));
  fs.writeFileSync(path.join(dir, 'librivox-0930.json'), JSON.stringify({
    source: '/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0930.wav (Debian pocketsphinx-testdata; LibriVox recording, public domain)',
    text: clip.text,
    heldOut: true,
    sampleRate,
    alignment: 'pocketsphinx_continuous phone forced alignment (models/audio2motion/data/sphinx.ts): [IPA phone ("" = silence), startMs, endMs]',
    phones: '@PHONES@',
  }, null, 1).replace('"@PHONES@"', `[\n${phones.map((p) => `  ${JSON.stringify([p.ph, p.startMs, p.endMs])}`).join(',\n')}\n ]`) + '\n');
  log(`wrote test/fixtures/audio/librivox-0930.{wav,json}`);
}
