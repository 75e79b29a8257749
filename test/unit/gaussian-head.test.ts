/**
 * The Gaussian head end to end on a small synthetic clip with a real face: the mesh generator's
 * driving video of astronaut.png (head turns ±20°, nodding, mouth opening, blinks; 2 s at 15 fps,
 * 320²) → prepareClip (real Human tracking) → trainer at 128² → asset → GaussianAvatarGenerator.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeDrivingVideo } from '../helpers/drivingVideo.ts';
import { prepareClip, type PreparedClip } from '../../server/src/avatar/training/prepareClip.ts';
import { scoreHead, toTrainingFrame } from '../../server/src/avatar/training/gaussianPipeline.ts';
import { trainGaussianHead, type TrainResult } from '../../models/gaussian/train.ts';
import { decodeHeadAsset, encodeHeadAsset, HEAD_ASSET_KIND } from '../../models/gaussian/headAsset.ts';
import { AssetFormatError, crc32 } from '../../models/gaussian/asset.ts';
import { GaussianAvatarGenerator } from '../../worker/src/generator/gaussian-generator.ts';
import { RenderThread } from '../../worker/src/render/RenderThread.ts';
import { generatorModule } from '../../worker/src/generator/registry.ts';
import { createFaceAnalyzer, type FaceAnalyzer } from '../../server/src/avatar/face/human-node.ts';
import { EXPRESSION_SIZE } from '../../models/face/expression-code.ts';
import { WasmCompositor } from '../../models/gaussian/wasmCompositor.ts';
import { compileKernel, WASM_DIR } from '../../scripts/build-wasm.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SIZE = 128;
let clip: PreparedClip;
let trained: TrainResult;
let untrainedPsnr = 0;
let tmp: string;
let videoPath: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gaussian-head-test-'));
  const video = await makeDrivingVideo({ frames: 60, fps: 15, size: 320, frameCode: false });
  videoPath = video.path;
  clip = await prepareClip({ file: video.path, train: [0, 3.2], test: [3.2, 4], size: SIZE, minTrainFrames: 20 });
  const frames = clip.train.map(toTrainingFrame);
  const base = { size: SIZE, frames, gaussians: 3000, seed: 3, threads: 2 };
  untrainedPsnr = scoreHead((await trainGaussianHead({ ...base, iterations: 0 })).head, clip.test, SIZE).psnr;
  trained = await trainGaussianHead({ ...base, iterations: 250 });
});

test('fitting a synthetic talking clip reaches 28 dB on held-out frames and gains at least 3 dB over the initial model', (t) => {
  // 28 dB: the clip is the mesh generator's render of one photo, so a faithful fit is possible;
  // measured 32.2 dB (face 26.9) after 250 iterations. The gain check fails if gradients or Adam break
  // (the initial model, coloured from the first frame, already scores ~25.5 dB).
  const s = scoreHead(trained.head, clip.test, SIZE);
  t.diagnostic(`held-out PSNR ${s.psnr.toFixed(2)} dB (untrained ${untrainedPsnr.toFixed(2)}), face ${s.facePsnr.toFixed(2)} dB, SSIM ${s.ssim.toFixed(3)}, ${trained.msPerIteration.toFixed(0)} ms/it`);
  assert.ok(s.frames >= 8, `${s.frames} held-out frames`);
  assert.ok(s.psnr >= 28, `held-out PSNR ${s.psnr.toFixed(2)} dB`);
  assert.ok(s.psnr >= untrainedPsnr + 3, `held-out PSNR ${s.psnr.toFixed(2)} vs untrained ${untrainedPsnr.toFixed(2)} dB`);
  assert.ok(s.facePsnr >= 23, `face PSNR ${s.facePsnr.toFixed(2)} dB`);
});

test('training keeps the last training frames out for validation and returns the snapshot that scored best on them', () => {
  assert.equal(trained.validationFrames, Math.round(clip.train.length * 0.15));
  const score = (c: (typeof trained.curve)[number]): number => (c.validationPsnr + c.validationFacePsnr) / 2;
  const best = trained.curve.reduce((a, c) => (score(c) > score(a) ? c : a));
  assert.equal(trained.bestIteration, best.iteration);
  // the returned model is that snapshot: it scores exactly the recorded validation value again
  const val = clip.train.slice(clip.train.length - trained.validationFrames);
  const again = scoreHead(trained.head, val, SIZE);
  assert.ok(Math.abs(again.psnr - best.validationPsnr) < 0.05, `validation PSNR ${again.psnr.toFixed(3)} vs recorded ${best.validationPsnr.toFixed(3)}`);
});

test('training is deterministic for a given seed and iteration count', async () => {
  const frames = clip.train.map(toTrainingFrame);
  const a = await trainGaussianHead({ size: SIZE, frames, gaussians: 2000, seed: 9, threads: 2, iterations: 15 });
  const b = await trainGaussianHead({ size: SIZE, frames, gaussians: 2000, seed: 9, threads: 2, iterations: 15 });
  assert.deepEqual(a.head.params.p.offset, b.head.params.p.offset);
  assert.deepEqual(a.head.params.p.color, b.head.params.p.color);
  assert.deepEqual(a.head.background, b.head.background);
});

test('the asset round-trips within quantisation error and rejects truncated, corrupted and wrong-version files', () => {
  const bytes = encodeHeadAsset(trained.head, { iterations: trained.iterations, trainSeconds: trained.seconds });
  const { head, metadata } = decodeHeadAsset(bytes);
  assert.equal(metadata.count, trained.head.count);
  assert.equal(head.detail.k, trained.head.detail.k);
  const f = clip.test[0]!;
  const m = { ...f.motion, detail: trained.head.detailCode(f.landmarks, f.motion.expression) };
  const a = trained.head.render(m, undefined, SIZE).slice(), b = head.render(m, undefined, SIZE);
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
  assert.ok(maxDiff < 0.08, `quantised asset renders differ by up to ${maxDiff.toFixed(3)}`);
  for (const cut of [10, 100, bytes.length >> 1, bytes.length - 1]) {
    assert.throws(() => decodeHeadAsset(bytes.subarray(0, cut)), (e: unknown) => e instanceof AssetFormatError && e.code === 'TRUNCATED', `cut at ${cut}`);
  }
  const bad = bytes.slice();
  bad[bad.length >> 1] ^= 0x10;
  assert.throws(() => decodeHeadAsset(bad), (e: unknown) => e instanceof AssetFormatError && e.code === 'CORRUPT');
  const v2 = bytes.slice();
  v2[4] = 2; // container version
  assert.throws(() => decodeHeadAsset(v2), (e: unknown) => e instanceof AssetFormatError && e.code === 'UNSUPPORTED_VERSION');
  // a valid container whose metadata claims another head format
  const json = new TextDecoder().decode(bytes.subarray(16, 16 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true)));
  const swapped = json.replace('"format":1', '"format":7');
  assert.notEqual(swapped, json);
  const other = bytes.slice();
  other.set(new TextEncoder().encode(swapped), 16);
  new DataView(other.buffer).setUint32(other.length - 4, crc32(other, 0, other.length - 4), true);
  assert.throws(() => decodeHeadAsset(other), (e: unknown) => e instanceof AssetFormatError && e.code === 'UNSUPPORTED_VERSION' && /format 7/.test(e.message));
});

test('the generator renders a face that Human finds, with landmarks that follow the motion and free view', async () => {
  const gen = new GaussianAvatarGenerator();
  await assert.rejects(gen.initialize({ kind: 'photo', bytes: new Uint8Array(4) }), TypeError);
  await gen.initialize({ kind: HEAD_ASSET_KIND, bytes: encodeHeadAsset(trained.head, { iterations: trained.iterations, trainSeconds: trained.seconds }) });
  const analyzer: FaceAnalyzer = await createFaceAnalyzer({ embedding: false, maxFaces: 1 });
  try {
    const rest = gen.restMotion();
    const size = 256;
    const noseX = async (yawOffset: number, view = 0): Promise<number> => {
      const m = { pose: { ...rest.pose, yaw: rest.pose.yaw + yawOffset }, expression: new Float32Array(EXPRESSION_SIZE) };
      const fr = gen.render(m, { yaw: view, pitch: 0, roll: 0 }, { size, format: 'rgba+i420' });
      assert.equal(fr.i420!.length, size * size * 1.5);
      const faces = await analyzer.detect(fr.rgba!, size, size, 4);
      assert.equal(faces.length, 1, `no face found at yaw offset ${yawOffset}, view ${view}`);
      const f = faces[0]!;
      // Human's landmarks agree with where the generator says they are
      let d = 0;
      for (let i = 0; i < 468; i++) d += Math.hypot(f.landmarks[i * 3]! - fr.landmarks2d![i * 2]!, f.landmarks[i * 3 + 1]! - fr.landmarks2d![i * 2 + 1]!);
      assert.ok(d / 468 < 8, `Human's landmarks are ${(d / 468).toFixed(1)} px from the rendered mesh`);
      return f.landmarks[1 * 3]!; // nose tip
    };
    const x0 = await noseX(0), xr = await noseX(0.3), xl = await noseX(-0.3);
    assert.ok(xr > x0 + 3 && xl < x0 - 3, `nose x ${xl.toFixed(1)} / ${x0.toFixed(1)} / ${xr.toFixed(1)} does not follow yaw`);
    const xv = await noseX(0, 0.4);
    assert.ok(xv > x0 + 3, `free-view yaw did not turn the head (${x0.toFixed(1)} → ${xv.toFixed(1)})`);
    // 512² is supported
    const big = gen.render(rest, undefined, { size: 512, format: 'rgba' });
    assert.equal(big.rgba!.length, 512 * 512 * 4);
    gen.close();
    assert.throws(() => gen.render(rest), /not initialized/);
  } finally {
    analyzer.close();
  }
});

test('the worker registry\'s "gaussian" generator renders the asset in a render thread, as the generator does in process', async () => {
  const bytes = encodeHeadAsset(trained.head, { iterations: trained.iterations, trainSeconds: trained.seconds });
  const local = new GaussianAvatarGenerator();
  await local.initialize({ kind: HEAD_ASSET_KIND, bytes });
  const thread = await RenderThread.create({ generator: generatorModule('gaussian'), source: { kind: HEAD_ASSET_KIND, bytes } });
  try {
    const rest = local.restMotion();
    const views = [{ yaw: 0, pitch: 0, roll: 0 }, { yaw: 0.6, pitch: 0, roll: 0 }];
    const frames = await thread.render(rest, views, { size: 128, format: 'i420' });
    for (let i = 0; i < views.length; i++) {
      const expected = local.render(rest, views[i], { size: 128, format: 'i420' });
      assert.ok(Buffer.from(frames[i]!.i420!).equals(Buffer.from(expected.i420!)), `view ${i}`);
    }
    assert.ok(thread.capabilities.maxViewOffset.yaw > 0.7, 'free view up to 45° yaw');
  } finally {
    thread.close();
    local.close();
  }
});

test('the live RGBA path composites in WebAssembly SIMD and matches the JavaScript compositor to within one level, at every view and size', () => {
  const head = trained.head;
  assert.equal(WasmCompositor.unavailableReason, undefined, 'WebAssembly SIMD compositor loads');
  let compared = 0;
  for (const size of [128, 200, 256]) {
    const n = size * size;
    const wasm = new Uint8ClampedArray(n * 4), js = new Uint8ClampedArray(n * 4);
    assert.equal(head.compositorAt(size), 'wasm', `size ${size}: the RGBA path uses the WebAssembly compositor`);
    for (const [i, f] of clip.test.slice(0, 4).entries()) {
      const view = { yaw: [0, 0.6, -0.6, 0.3][i]!, pitch: [0, 0.2, -0.1, 0][i]!, roll: 0 };
      const motion = { ...f.motion, detail: head.detailCode(f.landmarks, f.motion.expression) };
      head.renderRgba(motion, view, size, 1, wasm);
      head.renderRgba(motion, view, size, 1, js, 'js');
      let worst = 0, differ = 0, lit = 0;
      for (let p = 0; p < n * 4; p++) {
        const d = Math.abs(wasm[p]! - js[p]!);
        if (d > worst) worst = d;
        if (d > 0) differ++;
        if (p % 4 !== 3 && wasm[p]! > 8) lit++;
      }
      assert.ok(lit > n, `size ${size}, frame ${i}: an image, not black (${lit} lit channels)`);
      assert.ok(worst <= 1, `size ${size}, frame ${i}: WebAssembly vs JavaScript differ by ${worst} levels`);
      assert.ok(differ < n * 4 * 0.01, `size ${size}, frame ${i}: ${differ} of ${n * 4} channels differ (rounding only)`);
      compared++;
    }
  }
  assert.equal(compared, 12);
});

test('a frozen head (a loaded asset, its frame-independent terms precomputed) renders what the unfrozen head renders', () => {
  const bytes = encodeHeadAsset(trained.head, { iterations: trained.iterations, trainSeconds: trained.seconds });
  const plain = decodeHeadAsset(bytes).head, frozen = decodeHeadAsset(bytes).head;
  frozen.freeze();
  assert.ok(frozen.frozen && !plain.frozen);
  const n = SIZE * SIZE;
  const a = new Uint8ClampedArray(n * 4), b = new Uint8ClampedArray(n * 4);
  for (const [i, f] of clip.test.slice(0, 3).entries()) {
    const view = { yaw: [0, 0.5, -0.4][i]!, pitch: [0, -0.2, 0.1][i]!, roll: 0 };
    plain.renderRgba(f.motion, view, SIZE, 1, a, 'js');
    frozen.renderRgba(f.motion, view, SIZE, 1, b, 'js');
    let worst = 0;
    for (let p = 0; p < n * 4; p++) worst = Math.max(worst, Math.abs(a[p]! - b[p]!));
    assert.ok(worst <= 1, `frame ${i}: frozen vs unfrozen differ by ${worst} levels`);
  }
});

test('the committed composite.wasm is the build of its AssemblyScript source (npm run build:wasm)', () => {
  const out = path.join(tmp, 'composite.wasm');
  compileKernel(path.join(WASM_DIR, 'composite.asc.ts'), out);
  assert.ok(fs.readFileSync(out).equals(fs.readFileSync(path.join(WASM_DIR, 'composite.wasm'))), 'rebuild models/gaussian/wasm with npm run build:wasm and commit it');
});

test('npm run train -- gaussian writes an asset from a clip, and refuses bad options with a clear message', () => {
  const out = path.join(tmp, 'cli.avgs');
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'scripts/train.ts'), 'gaussian', '--clip', videoPath, '--train', '0:3', '--test', '3:4', '--size', '128', '--iterations', '20', '--gaussians', '2000', '--out', out], { encoding: 'utf8', cwd: root, timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /held-out PSNR/);
  const { metadata } = decodeHeadAsset(new Uint8Array(fs.readFileSync(out)));
  assert.equal(metadata.training.iterations, 20);
  assert.equal(metadata.training.clipSha256, clip.sha256);
  const bad = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'scripts/train.ts'), 'gaussian', '--clip', videoPath, '--train', '3:1'], { encoding: 'utf8', cwd: root, timeout: 60_000 });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /END must be after START/);
  const missing = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'scripts/train.ts'), 'gaussian', '--clip', path.join(tmp, 'nope.mp4'), '--iterations', '1'], { encoding: 'utf8', cwd: root, timeout: 60_000 });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /NOT_FOUND/);
});
