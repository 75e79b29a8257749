/**
 * Offline parts of the keypoint-avatar benchmark (no network):
 * - quality over a driving video: Human on every driving frame → landmarksToMotion (neutral = the
 *   first frame with a face, like the browser tracker's calibration) → wire quantisation → render
 *   at 256² → Human on the rendered frame. akd_px, identity_cosine and (self-reenactment) PSNR/SSIM.
 * - render cost on one core (benchRender) and VP8 encode cost (wrtc RTCVideoSource in-process).
 */
import fs from 'node:fs';
import { createFaceAnalyzer, embeddingSimilarity, encodePng, type FaceAnalyzer } from '../server/src/avatar/face/human-node.ts';
import { EnrollError, enrollIdentityFromPhoto, type EnrolledIdentity } from '../server/src/avatar/identity/enroll.ts';
import { MeshAvatarGenerator } from '../worker/src/generator/mesh-generator.ts';
import { resampleRegion } from '../models/image/resampleRegion.ts';
import type { AvatarMotion, RenderedFrame } from '../worker/src/generator/generator.ts';
import { computeNeutralReference, landmarksToMotion, EXPR, EXPRESSION_SIZE, type NeutralReference } from '../models/face/expression-code.ts';
import { quantizeMotion } from '../protocol/src/motion.ts';
import { benchRender } from './keypoint-render.ts';
import { measureVp8EncodeCost } from './encodeCost.ts';
import { decodeVideo, mean, psnrRgba, quantile, rgbaToLuma, rgbToRgba, ssimLuma } from './keypoint-util.ts';

/** What the avatar worker gets (kept as an alias of the protocol's quantizeMotion for existing importers). */
export const throughWire: (m: AvatarMotion, seq?: number) => AvatarMotion = quantizeMotion;

export interface QualityOptions {
  /** source photo; undefined = self-reenactment (the driving video's first frame is the source) */
  photo?: string;
  /** any video ffmpeg reads */
  driving: string;
  maxFrames: number;
  /** render size, 256 */
  size: number;
}

export interface QualityResult {
  mode: 'self' | 'photo';
  identity: EnrolledIdentity;
  /** self-reenactment: index of the driving frame used as the source photo (earlier frames have no usable face and are skipped), and that frame as PNG */
  sourceIndex: number;
  sourcePng: Buffer | undefined;
  drivingFrames: number;
  drivingWidth: number;
  drivingHeight: number;
  /** driving frames where Human found a face (→ a motion) */
  drivenFrames: number;
  /** rendered frames where Human found a face (akd / identity are over these) */
  analysedFrames: number;
  akdPx: number;
  akdPxP95: number;
  akdPxMax: number;
  identityCosine: number;
  identityCosineMin: number;
  selfPsnr: number | null;
  selfSsim: number | null;
  /** per-frame PSNR p5 (worst frames) and median */
  selfPsnrP5: number | null;
  selfPsnrP50: number | null;
  /** per-frame PSNR, in driving-frame order (frames with a rendered face) */
  psnrs: number[];
  akds: number[];
  /** motion range seen by the tracker over the sequence (degrees / coefficient units), to show it moved */
  yawRangeDeg: number;
  pitchRangeDeg: number;
  jawOpenMax: number;
  blinkMax: number;
  humanMsP50: number;
  elapsedMs: number;
}

export async function runQuality(opts: QualityOptions, log: (l: string) => void, analyzerIn?: FaceAnalyzer): Promise<QualityResult> {
  const t0 = performance.now();
  const analyzer = analyzerIn ?? (await createFaceAnalyzer({ embedding: true, maxFaces: 1 }));
  const size = opts.size;
  const gen = new MeshAvatarGenerator();
  let identity: EnrolledIdentity | undefined;
  let sourceEmbedding: Float32Array | null = null;
  const init = async (id: EnrolledIdentity): Promise<void> => {
    identity = id;
    await gen.initialize(id);
    // the source's descriptor on the same 256² framing the rendered frames are analysed at
    const tex = resampleRegion(id.texture, id.size, id.size, 0, 0, id.size, size);
    sourceEmbedding = (await analyzer.embed(tex, size, size)) ?? id.embedding ?? null;
    if (!sourceEmbedding) throw new Error('no face descriptor for the source photo');
  };
  if (opts.photo) await init(await enrollIdentityFromPhoto(new Uint8Array(fs.readFileSync(opts.photo)), { analyzer }));

  let neutral: NeutralReference | undefined;
  let sourceIndex = 0;
  let sourcePng: Buffer | undefined;
  const akd: number[] = [];
  const sims: number[] = [];
  const psnrs: number[] = [];
  const ssims: number[] = [];
  const humanMs: number[] = [];
  const yaws: number[] = [];
  const pitches: number[] = [];
  let jawMax = 0;
  let blinkMax = 0;
  let driven = 0;
  let reuse: RenderedFrame | undefined;
  let rgba: Uint8Array | undefined;
  const { frames, info } = await decodeVideo(opts.driving, opts.maxFrames, async (rgb, index, vi) => {
    const n = vi.width * vi.height;
    rgba = rgbToRgba(rgb, n, rgba);
    if (!identity) {
      // self-reenactment: the first frame (with a usable face) is the source photo
      const png = encodePng(rgba, vi.width, vi.height);
      try {
        await init(await enrollIdentityFromPhoto(new Uint8Array(png), { analyzer }));
        sourceIndex = index;
        sourcePng = png;
      } catch (err) {
        if (err instanceof EnrollError && (err.code === 'NO_FACE' || err.code === 'FACE_TOO_SMALL') && index < 60) return;
        throw new Error(`no frame among the first ${index + 1} of the driving video can be the source photo: ${(err as Error).message}`);
      }
    }
    const th = performance.now();
    const faces = await analyzer.detect(rgb, vi.width, vi.height, 3);
    humanMs.push(performance.now() - th);
    const face = faces[0];
    if (!face) return;
    neutral ??= computeNeutralReference(face.landmarks);
    const motion = throughWire(landmarksToMotion(face.landmarks, { neutral }), index);
    driven++;
    yaws.push((motion.pose.yaw * 180) / Math.PI);
    pitches.push((motion.pose.pitch * 180) / Math.PI);
    jawMax = Math.max(jawMax, motion.expression[EXPR.jawOpen]!);
    blinkMax = Math.max(blinkMax, motion.expression[EXPR.blinkL]!, motion.expression[EXPR.blinkR]!);
    const fr = gen.render(motion, undefined, { size, format: 'rgba', reuse });
    reuse = fr;
    const out = fr.rgba!;
    const det = (await analyzer.detect(out, size, size, 4))[0];
    if (det) {
      let s = 0;
      for (let i = 0; i < 468; i++) s += Math.hypot(det.landmarks[i * 3]! - fr.landmarks2d![i * 2]!, det.landmarks[i * 3 + 1]! - fr.landmarks2d![i * 2 + 1]!);
      akd.push(s / 468);
      if (det.embedding && sourceEmbedding) sims.push(embeddingSimilarity(sourceEmbedding, det.embedding));
    }
    if (!opts.photo) {
      const c = identity!.crop;
      const ref = resampleRegion(rgba, vi.width, vi.height, c.x, c.y, c.size, size);
      psnrs.push(psnrRgba(ref, out, size * size));
      ssims.push(ssimLuma(rgbaToLuma(ref, size * size), rgbaToLuma(out, size * size), size, size));
    }
    if ((index + 1) % 60 === 0) log(`quality: ${index + 1} driving frames`);
  });
  gen.close();
  if (!analyzerIn) analyzer.close();
  if (!identity) throw new Error(`no frames decoded from ${opts.driving}`);
  const range = (v: number[]): number => (v.length ? Math.max(...v) - Math.min(...v) : NaN);
  return {
    mode: opts.photo ? 'photo' : 'self',
    identity,
    sourceIndex,
    sourcePng,
    drivingFrames: frames,
    drivingWidth: info.width,
    drivingHeight: info.height,
    drivenFrames: driven,
    analysedFrames: akd.length,
    akdPx: mean(akd),
    akdPxP95: quantile(akd, 0.95),
    akdPxMax: akd.length ? Math.max(...akd) : NaN,
    identityCosine: mean(sims),
    identityCosineMin: sims.length ? Math.min(...sims) : NaN,
    selfPsnr: opts.photo ? null : mean(psnrs),
    selfSsim: opts.photo ? null : mean(ssims),
    selfPsnrP5: opts.photo ? null : quantile(psnrs, 0.05),
    selfPsnrP50: opts.photo ? null : quantile(psnrs, 0.5),
    psnrs,
    akds: akd,
    yawRangeDeg: range(yaws),
    pitchRangeDeg: range(pitches),
    jawOpenMax: jawMax,
    blinkMax,
    humanMsP50: quantile(humanMs, 0.5),
    elapsedMs: performance.now() - t0,
  };
}

export interface RenderCost {
  renderMsMean: number;
  renderMsP50: number;
  renderMsP95: number;
  renderFps: number;
  /** libvpx time per frame from wrtc's outbound-rtp totalEncodeTime / framesEncoded */
  encodeMsMean: number | null;
  encodeFramesMeasured: number;
  encodeKbps: number | null;
  /** process CPU (all threads) per frame while rendering + encoding at the session rate (includes the loopback receiver's decode) */
  pipelineCpuMsPerFrame: number | null;
}

/**
 * Render cost (benchRender, 256², I420 included, one thread) and VP8 encode cost: rendered frames
 * fed to a wrtc RTCVideoSource at `fps` on a loopback RTCPeerConnection pair in this process.
 */
export async function measureRenderCost(identity: EnrolledIdentity, size: number, fps: number, encodeSeconds: number): Promise<RenderCost> {
  const [r] = await benchRender({ sizes: [size], frames: 300, identity, format: 'i420' });
  const render = r!;
  const gen = new MeshAvatarGenerator();
  await gen.initialize(identity);
  const rest = gen.restMotion();
  const expr = new Float32Array(EXPRESSION_SIZE);
  let reuse: RenderedFrame | undefined;
  try {
    const enc = await measureVp8EncodeCost(size, fps, encodeSeconds, (i) => {
      const t = i / fps;
      expr.fill(0);
      expr[EXPR.jawOpen] = Math.max(0, Math.sin(t * 2 * Math.PI * 2.5)) * 0.7;
      const blink = i % 90 < 6 ? 1 : 0;
      expr[EXPR.blinkL] = expr[EXPR.blinkR] = blink;
      const pose = { ...rest.pose, yaw: rest.pose.yaw + 0.35 * Math.sin(t * 1.1), pitch: rest.pose.pitch + 0.15 * Math.sin(t * 0.8) };
      reuse = gen.render({ pose, expression: expr }, undefined, { size, format: 'i420', reuse });
      return reuse.i420!;
    });
    return {
      renderMsMean: render.meanMs,
      renderMsP50: render.p50Ms,
      renderMsP95: render.p95Ms,
      renderFps: render.fps,
      encodeMsMean: enc.encodeMsMean,
      encodeFramesMeasured: enc.framesEncoded,
      encodeKbps: enc.kbps,
      pipelineCpuMsPerFrame: enc.pipelineCpuMsPerFrame,
    };
  } finally {
    gen.close();
  }
}
