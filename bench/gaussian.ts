/**
 * `npm run bench -- gaussian --json [--clip VIDEO] [--train A:B] [--test C:D] [--minutes M]
 *                                   [--size N] [--iterations N] [--gaussians N] [--seed S]
 *                                   [--pictures DIR]`
 *
 * Per-identity Gaussian head vs the mesh generator on the same held-out frames of a real clip.
 * Default clip: Debian opencv-doc's Megamind.avi (installed with apt-get when missing and root),
 * training on the first 70 % of its longest shot, testing on the rest of that shot. Times are
 * seconds within the clip; --test may lie in another shot of the same person.
 *
 * Method (bench/README.md, section `gaussian`):
 *  1. prepareClip: Human on every frame (worker threads), stabilised per-frame crops in the
 *     keypoint bench's framing rule (enrollIdentityFromPhoto: 3× the face box, centre 0.1 face
 *     down), smoothed landmarks, the wire-quantised motion of each frame (neutral = the first training frame).
 *  2. train (models/gaussian/train.ts) for --minutes (default 10) on both cores; the held-out
 *     PSNR curve over time comes from 8 held-out frames scored during training.
 *  3. held-out: every held-out frame vs the Gaussian render driven by the motion tracked on that
 *     frame (+ its detail code, measured on the frame like the 12 coefficients); face_* inside
 *     the ground-truth face outline. mesh_*: the mesh generator enrolled from the first training
 *     frame's crop (same framing, translation gain 1 like the Gaussian), same motion, same frames.
 *  4. asset: written, re-read (load_ms, median of 5 loads including file read and validation).
 *  5. render: one thread, I420 at --size, driven by the held-out motions: CPU time per frame
 *     (render_cpu_ms_mean) and wall time (render_ms_*), plus VP8 encode (wrtc, libvpx
 *     totalEncodeTime): render_fps_one_core = 1000 / (render CPU + encode) ms. render_compositor
 *     says which compositing stage that was ('wasm': models/gaussian/wasmCompositor.ts);
 *     render_cpu_ms_mean_js_compositor is the same frames with the JavaScript stage.
 *  5b. references (bench/gaussian-references.ts), to read the held-out scores against:
 *     heldout_psnr_true_face (the Gaussian render with the ground truth inside the face outline: what
 *     a perfect face alone would score), reference_training_mean_psnr (the training crops' per-pixel
 *     mean) and reference_training_pca_psnr (each held-out frame's own least-squares projection on
 *     the mean + 24 principal components of the training crops: an oracle for "recombine what the
 *     training frames showed").
 *  6. identity_cosine: Human face descriptor of each render vs that of its ground-truth frame;
 *     freeview_yaw45_face_found: fraction of renders at ±45° yaw view offset where Human finds a face.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createFaceAnalyzer, embeddingSimilarity, encodePng } from '../server/src/avatar/face/human-node.ts';
import { MeshAvatarGenerator } from '../worker/src/generator/mesh-generator.ts';
import { GaussianAvatarGenerator } from '../worker/src/generator/gaussian-generator.ts';
import type { EnrolledIdentity, RenderedFrame } from '../worker/src/generator/generator.ts';
import { FACE_TRIANGLES } from '../models/face/topology.ts';
import { prepareClip, type ClipFrame } from '../server/src/avatar/training/prepareClip.ts';
import { runGaussianPipeline } from '../server/src/avatar/training/gaussianPipeline.ts';
import { WasmCompositor } from '../models/gaussian/wasmCompositor.ts';
import { HEAD_ASSET_KIND } from '../models/gaussian/headAsset.ts';
import { faceMask, psnrBytes } from '../models/gaussian/metrics.ts';
import { measureVp8EncodeCost } from './encodeCost.ts';
import { principalImages, projectionPsnr, truthInsidePsnr } from './gaussian-references.ts';
import { mean, num, psnrRgba, quantile, rgbaToLuma, ssimLuma } from './keypoint-util.ts';
import { intOption, UsageError, type Suite } from './suite.ts';

/** principal components of the training crops in the projection reference */
const PCA_COMPONENTS = 24;

export const MEGAMIND = '/usr/share/doc/opencv-doc/examples/data/Megamind.avi';

export interface GaussianBenchOptions {
  clip: string;
  train: [number, number] | undefined;
  test: [number, number] | undefined;
  minutes: number;
  size: number;
  iterations: number | undefined;
  gaussians: number | undefined;
  seed: number;
  pictures: string | undefined;
  crop: 'stabilised' | 'fixed';
  /** keep the asset here (default: a temp file, removed) */
  out: string | undefined;
}

function range(name: string, v: unknown): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*[:,]\s*(\d+(?:\.\d+)?)\s*$/.exec(String(v));
  if (!m || !(Number(m[2]) > Number(m[1]))) throw new UsageError(`--${name} must be START:END seconds with END > START, got ${String(v)}`);
  return [Number(m[1]), Number(m[2])];
}

/** Install Debian opencv-doc (Megamind.avi) when it is missing and we are root. */
export function ensureMegamind(log: (l: string) => void): void {
  if (fs.existsSync(MEGAMIND)) return;
  if (process.getuid?.() !== 0) throw new Error(`${MEGAMIND} is missing: install Debian opencv-doc (apt-get install opencv-doc) or pass --clip`);
  log('installing opencv-doc (Megamind.avi) with apt-get');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', 'opencv-doc']]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed`);
  }
  if (!fs.existsSync(MEGAMIND)) throw new Error(`opencv-doc installed but ${MEGAMIND} is missing`);
}

/** The mesh generator's identity from a prepared crop: same framing, same landmarks, no re-detection. */
function identityFromCrop(f: ClipFrame, size: number): EnrolledIdentity {
  const texture = new Uint8ClampedArray(f.rgba);
  return {
    size, texture, background: texture, landmarks: f.landmarks.slice(), humanLandmarks: f.humanLandmarks.slice(),
    mesh: { triangles: FACE_TRIANGLES, vertexCount: 468 }, faceCount: 1, crop: { x: 0, y: 0, size }, sourceWidth: size, sourceHeight: size,
    angles: { yaw: f.motion.pose.yaw, pitch: f.motion.pose.pitch, roll: f.motion.pose.roll },
  };
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}


async function runGaussianBench(o: GaussianBenchOptions, log: (l: string) => void): Promise<{ result: Record<string, unknown>; summary: string[] }> {
  if (o.clip === MEGAMIND) ensureMegamind(log);
  const size = o.size;
  if (o.pictures) fs.mkdirSync(o.pictures, { recursive: true });
  const prepared = await prepareClip({ file: o.clip, train: o.train, test: o.test, size, cropMode: o.crop, log });
  if (prepared.test.length === 0) throw new UsageError('no held-out frames: give --test C:D (or omit --train for the default split)');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-gaussian-bench-'));
  try {
    const assetPath = o.out ?? path.join(tmp, 'head.avgs');
    const trained = await runGaussianPipeline({ clip: o.clip, prepared, size, out: assetPath, minutes: o.minutes, iterations: o.iterations, gaussians: o.gaussians, seed: o.seed, log });
    const test = prepared.test;
    const n = size * size;

    // asset load
    const loads: number[] = [];
    let gen!: GaussianAvatarGenerator;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const g = new GaussianAvatarGenerator();
      await g.initialize({ kind: HEAD_ASSET_KIND, bytes: new Uint8Array(fs.readFileSync(assetPath)) });
      loads.push(performance.now() - t0);
      if (i === 4) gen = g; else g.close();
    }
    const assetBytes = fs.statSync(assetPath).size;

    // held-out: the LOADED asset (quantised) vs the mesh generator, same motion
    const mesh = new MeshAvatarGenerator({ translationGain: 1 });
    await mesh.initialize(identityFromCrop(prepared.train[0]!, size));
    const analyzer = await createFaceAnalyzer({ embedding: true, maxFaces: 1 });
    const g = { psnr: [] as number[], ssim: [] as number[], face: [] as number[] };
    const m = { psnr: [] as number[], ssim: [] as number[], face: [] as number[] };
    const sims: number[] = [];
    const trueFace: number[] = [];
    const mask = new Uint8Array(n);
    const pics: Uint8ClampedArray[] = [];
    const picAt = new Set([0, Math.floor(test.length / 2), test.length - 1]);
    let gr: RenderedFrame | undefined, mr: RenderedFrame | undefined;
    for (let i = 0; i < test.length; i++) {
      const f = test[i]!;
      const detail = trained.head.detailCode(f.landmarks, f.motion.expression);
      gr = gen.render({ ...f.motion, ...(detail ? { detail } : {}) }, undefined, { size, format: 'rgba', reuse: gr });
      mr = mesh.render(f.motion, undefined, { size, format: 'rgba', reuse: mr });
      faceMask(f.landmarks, size, mask);
      const ly = rgbaToLuma(f.rgba, n);
      for (const [acc, fr] of [[g, gr], [m, mr]] as const) {
        acc.psnr.push(psnrRgba(f.rgba, fr.rgba!, n));
        acc.ssim.push(ssimLuma(ly, rgbaToLuma(fr.rgba!, n), size, size));
        acc.face.push(psnrBytes(f.rgba, fr.rgba!, n, mask));
      }
      trueFace.push(truthInsidePsnr(gr.rgba!, f.rgba, mask, n));
      const [eg, et] = await Promise.all([analyzer.embed(gr.rgba!, size, size), analyzer.embed(f.rgba, size, size)]);
      if (eg && et) sims.push(embeddingSimilarity(eg, et));
      if (picAt.has(i)) {
        const row = new Uint8ClampedArray(n * 3 * 4);
        for (let y = 0; y < size; y++) {
          row.set(f.rgba.subarray(y * size * 4, (y + 1) * size * 4), y * size * 12);
          row.set(gr.rgba!.subarray(y * size * 4, (y + 1) * size * 4), y * size * 12 + size * 4);
          row.set(mr.rgba!.subarray(y * size * 4, (y + 1) * size * 4), y * size * 12 + size * 8);
        }
        pics.push(row);
      }
    }

    // references (bench/gaussian-references.ts): the training crops' mean, and each held-out
    // frame's own projection on their principal components
    const basis = principalImages(prepared.train.map((f) => f.rgba), n, PCA_COMPONENTS);
    const refMean = mean(test.map((f) => projectionPsnr(f.rgba, basis, 0, n)));
    const refPca = mean(test.map((f) => projectionPsnr(f.rgba, basis, basis.components.length, n)));

    // free view ±45° yaw
    let fvFound = 0, fvTotal = 0;
    const step = Math.max(1, Math.floor(test.length / 6));
    for (let i = 0; i < test.length; i += step) {
      const f = test[i]!;
      const detail = trained.head.detailCode(f.landmarks, f.motion.expression);
      for (const yaw of [-Math.PI / 4, Math.PI / 4]) {
        gr = gen.render({ ...f.motion, ...(detail ? { detail } : {}) }, { yaw, pitch: 0, roll: 0 }, { size, format: 'rgba', reuse: gr });
        fvTotal++;
        if ((await analyzer.detect(gr.rgba!, size, size, 4)).length > 0) fvFound++;
        if (o.pictures && i === 0) fs.writeFileSync(path.join(o.pictures, `freeview-${yaw > 0 ? 'plus' : 'minus'}45.png`), encodePng(gr.rgba!, size, size));
      }
    }
    analyzer.close();

    // render cost, one thread, I420 (+ VP8)
    const times: number[] = [];
    let ri: RenderedFrame | undefined;
    const motions = test.map((f) => ({ ...f.motion, detail: trained.head.detailCode(f.landmarks, f.motion.expression) }));
    let cpu0 = 0;
    for (let i = -10; i < 300; i++) {
      if (i === 0) cpu0 = cpuMs();
      ri = gen.render(motions[((i % motions.length) + motions.length) % motions.length]!, undefined, { size, format: 'i420', reuse: ri });
      if (i >= 0) times.push(ri.renderMs);
    }
    // CPU time of this (single-threaded) loop: the cost on one core even when other jobs share the
    // machine; wall-clock times (render_ms_*) include waiting for the CPU on a loaded machine
    const renderCpuMs = (cpuMs() - cpu0) / 300;
    const renderMean = mean(times);
    // the same frames with the JavaScript compositing stage (the fallback where WebAssembly SIMD is missing)
    const genJs = new GaussianAvatarGenerator({ compositor: 'js' });
    await genJs.initialize({ kind: HEAD_ASSET_KIND, bytes: new Uint8Array(fs.readFileSync(assetPath)) });
    let rj: RenderedFrame | undefined;
    let cpuJs0 = 0;
    for (let i = -10; i < 150; i++) {
      if (i === 0) cpuJs0 = cpuMs();
      rj = genJs.render(motions[((i % motions.length) + motions.length) % motions.length]!, undefined, { size, format: 'i420', reuse: rj });
    }
    const renderCpuMsJs = (cpuMs() - cpuJs0) / 150;
    genJs.close();
    let ei: RenderedFrame | undefined;
    const enc = await measureVp8EncodeCost(size, 25, 4, (i) => (ei = gen.render(motions[i % motions.length]!, undefined, { size, format: 'i420', reuse: ei })).i420!);
    const fps = 1000 / (renderCpuMs + (enc.encodeMsMean ?? 0));
    let fps512: number | null = null;
    if (size === 256) {
      const t512: number[] = [];
      let r5: RenderedFrame | undefined;
      for (let i = 0; i < 40; i++) { r5 = gen.render(motions[i % motions.length]!, undefined, { size: 512, format: 'i420', reuse: r5 }); t512.push(r5.renderMs); }
      fps512 = 1000 / mean(t512.slice(5));
    }
    gen.close();
    mesh.close();

    if (o.pictures) {
      const all = new Uint8ClampedArray(pics.length * n * 3 * 4);
      pics.forEach((p, i) => all.set(p, i * n * 3 * 4));
      fs.writeFileSync(path.join(o.pictures, 'heldout-gt-gaussian-mesh.png'), encodePng(all, size * 3, size * pics.length));
      fs.writeFileSync(path.join(o.pictures, 'curve.json'), JSON.stringify(trained.curve));
    }

    const result: Record<string, unknown> = {
      suite: 'gaussian',
      clip: path.basename(o.clip),
      crop: o.crop,
      train_range: prepared.trainRange,
      test_range: prepared.testRange,
      train_frames: prepared.train.length,
      size,
      train_seconds: num(trained.trainSeconds, 1),
      iterations: trained.iterations,
      best_iteration: trained.bestIteration,
      validation_frames: trained.validationFrames,
      ms_per_iteration: num(trained.msPerIteration, 1),
      threads: trained.threads,
      gaussians: trained.head.count,
      detail_size: trained.head.detail.k,
      peak_rss_mb: num(trained.peakRssMb, 0),
      heldout_frames: test.length,
      heldout_psnr: num(mean(g.psnr), 2),
      heldout_ssim: num(mean(g.ssim), 3),
      heldout_face_psnr: num(mean(g.face), 2),
      mesh_heldout_psnr: num(mean(m.psnr), 2),
      mesh_heldout_ssim: num(mean(m.ssim), 3),
      mesh_heldout_face_psnr: num(mean(m.face), 2),
      psnr_gain_over_mesh: num(mean(g.psnr) - mean(m.psnr), 2),
      heldout_psnr_true_face: num(mean(trueFace), 2),
      reference_training_mean_psnr: num(refMean, 2),
      reference_training_pca_psnr: num(refPca, 2),
      reference_pca_components: basis.components.length,
      identity_cosine: num(mean(sims), 3),
      render_fps_one_core: num(fps, 1),
      render_cpu_ms_mean: num(renderCpuMs, 2),
      render_compositor: WasmCompositor.unavailableReason === undefined ? 'wasm' : 'js',
      render_cpu_ms_mean_js_compositor: num(renderCpuMsJs, 2),
      render_ms_mean: num(renderMean, 2),
      render_ms_p95: num(quantile(times, 0.95), 2),
      vp8_encode_ms_mean: num(enc.encodeMsMean, 2),
      render_fps_512_no_encode: num(fps512, 1),
      asset_bytes: assetBytes,
      load_ms: num(quantile(loads, 0.5), 1),
      freeview_yaw45_face_found: num(fvFound / Math.max(1, fvTotal), 3),
      heldout_psnr_curve: trained.curve.map((c) => [num(c.seconds, 0), num(c.psnr, 2), num(c.facePsnr, 2)]),
      validation_psnr_curve: trained.curve.map((c) => [num(c.seconds, 0), num(c.validationPsnr, 2), num(c.validationFacePsnr, 2)]),
      prepare_seconds: num((prepared.stats.decodeMs + prepared.stats.trackMs + prepared.stats.loadMs) / 1000, 1),
    };
    const targets: [string, boolean][] = [
      ['heldout_psnr >= 25', mean(g.psnr) >= 25],
      ['heldout_ssim >= 0.82', mean(g.ssim) >= 0.82],
      ['psnr_gain_over_mesh >= 4', mean(g.psnr) - mean(m.psnr) >= 4],
      ['train_seconds <= 600', trained.trainSeconds <= 600],
      ['render_fps_one_core >= 25', fps >= 25],
      ['load_ms < 1000', quantile(loads, 0.5) < 1000],
    ];
    result['targets'] = Object.fromEntries(targets);
    const summary = [
      `gaussian head on ${path.basename(o.clip)}: ${prepared.train.length} training frames, ${test.length} held-out frames, ${trained.head.count} Gaussians, ${trained.iterations} iterations in ${trained.trainSeconds.toFixed(0)} s (${trained.threads} threads, peak RSS ${trained.peakRssMb.toFixed(0)} MB)`,
      `held-out PSNR ${mean(g.psnr).toFixed(2)} dB  SSIM ${mean(g.ssim).toFixed(3)}  face PSNR ${mean(g.face).toFixed(2)} dB   |  mesh: ${mean(m.psnr).toFixed(2)} dB  ${mean(m.ssim).toFixed(3)}  face ${mean(m.face).toFixed(2)} dB`,
      `references: the training crops' mean ${refMean.toFixed(2)} dB; each held-out frame projected on the training crops' ${basis.components.length} principal components ${refPca.toFixed(2)} dB; the Gaussian render with a perfect face ${mean(trueFace).toFixed(2)} dB`,
      `identity cosine ${mean(sims).toFixed(3)}; free view ±45° face found ${fvFound}/${fvTotal}`,
      `render ${renderCpuMs.toFixed(1)} ms CPU (wall ${renderMean.toFixed(1)} ms, p95 ${quantile(times, 0.95).toFixed(1)}) + VP8 ${enc.encodeMsMean?.toFixed(1) ?? '–'} ms → ${fps.toFixed(1)} fps on one core at ${size}²; asset ${(assetBytes / 1024).toFixed(0)} KiB, load ${quantile(loads, 0.5).toFixed(0)} ms`,
      `targets: ${targets.map(([k, v]) => `${k} ${v ? 'met' : 'MISSED'}`).join('; ')}`,
    ];
    return { result, summary };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export const gaussianSuite: Suite<GaussianBenchOptions> = {
  name: 'gaussian',
  summary: 'per-identity Gaussian head fitted from a clip vs the mesh generator on held-out frames',
  options: {
    clip: { type: 'string' }, train: { type: 'string' }, test: { type: 'string' }, minutes: { type: 'string' }, size: { type: 'string' },
    iterations: { type: 'string' }, gaussians: { type: 'string' }, seed: { type: 'string' }, pictures: { type: 'string' }, crop: { type: 'string' }, out: { type: 'string' },
  },
  usage: [
    `--clip VIDEO      default ${MEGAMIND} (Debian opencv-doc)`,
    '--train A:B       training range, seconds (default: first 70 % of the longest shot)',
    '--test C:D        held-out range, seconds (default: the rest of that shot)',
    '--minutes M       training wall time (default 10)',
    '--iterations N    exact iteration count instead (deterministic)',
    '--size N          crop and render size (default 256, multiple of 16)',
    '--gaussians N     Gaussian budget (default 12000)',
    '--seed S          default 1',
    '--out FILE        keep the trained asset',
    '--pictures DIR    write GT | Gaussian | mesh strips, free-view renders and the curve',
    '--crop MODE       fixed (default: one crop per shot, the keypoint bench\'s framing) or stabilised (each frame\'s crop follows the smoothed face)',
  ],
  parse(v) {
    const minutes = v['minutes'] === undefined ? 10 : Number(v['minutes']);
    if (!(minutes > 0 && minutes <= 600)) throw new UsageError(`--minutes must be in (0, 600], got ${String(v['minutes'])}`);
    const size = intOption(v, 'size', 256, 64, 1024);
    if (size % 16 !== 0) throw new UsageError(`--size must be a multiple of 16, got ${size}`);
    const clip = v['clip'] === undefined ? MEGAMIND : path.resolve(String(v['clip']));
    if (v['clip'] !== undefined && !fs.existsSync(clip)) throw new UsageError(`--clip ${clip}: no such file`);
    return {
      clip, train: range('train', v['train']), test: range('test', v['test']), minutes, size,
      iterations: v['iterations'] === undefined ? undefined : intOption(v, 'iterations', 1, 1, 10_000_000),
      gaussians: v['gaussians'] === undefined ? undefined : intOption(v, 'gaussians', 12000, 2000, 500_000),
      seed: intOption(v, 'seed', 1, 0, 2 ** 31 - 1),
      pictures: v['pictures'] === undefined ? undefined : path.resolve(String(v['pictures'])),
      out: v['out'] === undefined ? undefined : path.resolve(String(v['out'])),
      crop: ((): 'stabilised' | 'fixed' => {
        const c = v['crop'] ?? 'fixed';
        if (c !== 'stabilised' && c !== 'fixed') throw new UsageError(`--crop must be stabilised or fixed, got ${String(c)}`);
        return c;
      })(),
    };
  },
  run: runGaussianBench,
};
