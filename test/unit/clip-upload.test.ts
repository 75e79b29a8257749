/**
 * The browser's clip upload (protocol/src/clipUpload.ts) and the server's preparation of it
 * (prepareUpload): a versioned, bounded, checked container, and frames that become the same
 * training crops and motion as the video-file path (prepareClip) gives for the same frames.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import jpeg from 'jpeg-js';
import { makeClipUpload } from '../helpers/clipUpload.ts';
import { CLIP_UPLOAD_LIMITS, ClipUploadError, decodeClipUpload, encodeClipUpload, type ClipUpload } from '../../protocol/src/clipUpload.ts';
import { crc32 } from '../../protocol/src/crc32.ts';
import type { PreparedClip } from '../../server/src/avatar/training/prepareClip.ts';
import { prepareUpload } from '../../server/src/avatar/training/prepareUpload.ts';
import { ClipError } from '../../server/src/avatar/training/clipErrors.ts';
import { psnrBytes } from '../../models/gaussian/metrics.ts';

function tinyUpload(frames = 3, faces = 1): ClipUpload {
  const img = jpeg.encode({ width: 64, height: 64, data: Buffer.alloc(64 * 64 * 4, 128) }, 80).data;
  return {
    header: { source: 'camera', width: 64, height: 64, fps: 30, frames: Array.from({ length: frames }, (_, i) => ({ t: i / 30, faces })) },
    frames: Array.from({ length: frames }, (_, i) => ({ image: new Uint8Array(img), landmarks: new Float32Array(478 * 3).fill(i) })),
  };
}

function expectCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof ClipUploadError && e.code === code, `expected ClipUploadError ${code}`);
}

test('a clip upload round-trips its header, images and landmarks exactly', () => {
  const clip = tinyUpload(4);
  const bytes = encodeClipUpload(clip);
  const back = decodeClipUpload(bytes);
  assert.deepEqual(back.header, clip.header);
  assert.equal(back.frames.length, 4);
  for (let i = 0; i < 4; i++) {
    assert.deepEqual(back.frames[i]!.image, clip.frames[i]!.image);
    assert.deepEqual(back.frames[i]!.landmarks, clip.frames[i]!.landmarks);
  }
});

test('truncated, foreign, future-version, damaged and inconsistent uploads are refused with their own codes', () => {
  const bytes = encodeClipUpload(tinyUpload(3));
  expectCode(() => decodeClipUpload(bytes.subarray(0, 10)), 'TRUNCATED');
  expectCode(() => decodeClipUpload(bytes.subarray(0, bytes.length - 100)), 'TRUNCATED');
  const foreign = bytes.slice(); foreign[0] = 0x50;
  expectCode(() => decodeClipUpload(foreign), 'BAD_MAGIC');
  const future = bytes.slice(); future[4] = 2;
  expectCode(() => decodeClipUpload(future), 'BAD_VERSION');
  const flipped = bytes.slice(); flipped[bytes.length - 200]! ^= 0x10;
  expectCode(() => decodeClipUpload(flipped), 'CORRUPT');
  const longer = new Uint8Array(bytes.length + 8); longer.set(bytes);
  expectCode(() => decodeClipUpload(longer), 'CORRUPT');
  // a header that parses but lies about the frames: re-sealed with a valid CRC, still refused
  const lying = encodeClipUpload(tinyUpload(3));
  const dv = new DataView(lying.buffer);
  const hLen = dv.getUint32(12, true);
  const json = new TextDecoder().decode(lying.subarray(16, 16 + hLen)).replace('"fps":30', '"fps":99');
  const patched = lying.slice();
  patched.set(new TextEncoder().encode(json), 16);
  new DataView(patched.buffer).setUint32(patched.length - 4, crc32(patched, 0, patched.length - 4), true);
  expectCode(() => decodeClipUpload(patched), 'BAD_LAYOUT');
  expectCode(() => decodeClipUpload(new Uint8Array(CLIP_UPLOAD_LIMITS.maxBytes + 1)), 'TOO_LARGE');
});

test('an upload beyond the limits cannot even be encoded, and says which limit', () => {
  const many = tinyUpload(1);
  many.header.frames = Array.from({ length: CLIP_UPLOAD_LIMITS.maxFrames + 1 }, (_, i) => ({ t: i / 60, faces: 1 }));
  assert.throws(() => encodeClipUpload(many), /frames/);
  const big = tinyUpload(1);
  big.header.width = 1920; big.header.height = 1080;
  assert.throws(() => encodeClipUpload(big), /pixels/);
  const backwards = tinyUpload(3);
  backwards.header.frames[2]!.t = 0;
  assert.throws(() => encodeClipUpload(backwards), /increase/);
  const mismatch = tinyUpload(3);
  mismatch.frames.pop();
  assert.throws(() => encodeClipUpload(mismatch), /2 frames but the header lists 3/);
});

test('an upload with too few frames, a second person or a broken JPEG gets a clear clip error', async () => {
  await assert.rejects(prepareUpload(encodeClipUpload(tinyUpload(10))), (e: unknown) => e instanceof ClipError && e.code === 'TOO_FEW_FRAMES' && /record longer/.test(e.message));
  await assert.rejects(prepareUpload(encodeClipUpload(tinyUpload(40, 2))), (e: unknown) => e instanceof ClipError && e.code === 'MULTIPLE_PEOPLE');
  const broken = tinyUpload(40);
  broken.frames[5] = { ...broken.frames[5]!, image: new Uint8Array([0xff, 0xd8, 1, 2, 3]) };
  await assert.rejects(prepareUpload(encodeClipUpload(broken)), (e: unknown) => e instanceof ClipError && e.code === 'DECODE_FAILED' && /frame 5/.test(e.message));
});

let fromFile: PreparedClip;
let upload: Uint8Array;
before(async () => {
  ({ bytes: upload, fromFile } = await makeClipUpload({ frames: 60, size: 128 }));
});

test('frames tracked in the browser become the same training crops and motion as the video file gives', async () => {
  const prepared = await prepareUpload(upload, { size: 128, heldOutShare: 0.15 });
  const all = [...prepared.train, ...prepared.test];
  assert.equal(all.length, fromFile.train.length);
  assert.equal(prepared.test.length, Math.round(0.15 * all.length), 'the last 15 % are held out');
  assert.ok(prepared.test[0]!.t > prepared.train.at(-1)!.t, 'held-out frames come after the training frames');
  let yawErr = 0, jawErr = 0, psnr = 0;
  for (let i = 0; i < all.length; i++) {
    const a = all[i]!, b = fromFile.train[i]!;
    assert.equal(a.rgba.length, 128 * 128 * 4);
    yawErr = Math.max(yawErr, Math.abs(a.motion.pose.yaw - b.motion.pose.yaw));
    jawErr = Math.max(jawErr, Math.abs(a.motion.expression[0]! - b.motion.expression[0]!));
    psnr += psnrBytes(a.rgba, b.rgba, 128 * 128) / all.length;
    for (const k of ['x', 'y', 'side'] as const) assert.ok(Math.abs(a.crop[k] - b.crop[k]) < 0.01 * b.crop.side, `frame ${i}: crop ${k} ${a.crop[k].toFixed(2)} vs ${b.crop[k].toFixed(2)}`);
  }
  // the browser's landmarks are prepareClip's smoothed ones, smoothed once more (σ = 1 frame)
  assert.ok(yawErr < (2 * Math.PI) / 180, `yaw differs by ${(yawErr * 180 / Math.PI).toFixed(2)}° at most`);
  assert.ok(jawErr < 0.15, `first expression coefficient differs by ${jawErr.toFixed(3)} at most`);
  assert.ok(psnr > 30, `crops agree at ${psnr.toFixed(1)} dB (JPEG q92)`);
  // the motion follows the clip: the head turns by tens of degrees within the training range
  const yaws = all.map((f) => f.motion.pose.yaw);
  assert.ok(Math.max(...yaws) - Math.min(...yaws) > (15 * Math.PI) / 180);
});
