/**
 * A clip upload as the browser would send it, made from the synthetic driving video (the mesh
 * generator's astronaut.png, drivingVideo.ts): its frames as JPEG plus the face tracking of each
 * frame in frame pixels. The tracking comes from prepareClip (Human on every frame), so an upload
 * and the video file can be compared frame by frame.
 */
import jpeg from 'jpeg-js';
import { makeDrivingVideo } from './drivingVideo.ts';
import { encodeClipUpload, type ClipUpload } from '../../protocol/src/clipUpload.ts';
import { prepareClip, type ClipFrame, type PreparedClip } from '../../server/src/avatar/training/prepareClip.ts';
import { decodeFrames, probeClip } from '../../server/src/avatar/training/clipDecode.ts';

export interface TestClipUpload {
  bytes: Uint8Array;
  /** prepareClip of the same frames (training range = every frame), crops at `size` */
  fromFile: PreparedClip;
}

export async function makeClipUpload(opts: { frames?: number; videoSize?: number; size?: number } = {}): Promise<TestClipUpload> {
  const frames = opts.frames ?? 60;
  const size = opts.size ?? 128;
  const video = await makeDrivingVideo({ frames, size: opts.videoSize ?? 256 });
  const fromFile = await prepareClip({ file: video.path, train: [0, frames / video.fps], size, cropMode: 'fixed' });
  return { bytes: await clipUploadFromFrames(video.path, fromFile.train, size), fromFile };
}

/**
 * The upload of `trackedFrames` of a video file (prepareClip's frames at crop `size`): each frame
 * as JPEG plus its tracking in frame pixels, as the browser's recorder sends them.
 */
export async function clipUploadFromFrames(file: string, trackedFrames: readonly ClipFrame[], size: number): Promise<Uint8Array> {
  const info = await probeClip(file);
  const byIndex = new Map(trackedFrames.map((f) => [f.index, f]));
  const indices = trackedFrames.map((f) => f.index);
  const out: ClipUpload['frames'] = [];
  const header: ClipUpload['header'] = { source: 'file', width: info.width, height: info.height, fps: info.fps, frames: [] };
  for await (const f of decodeFrames(file, info, [{ first: Math.min(...indices), last: Math.max(...indices), step: 1 }], { channels: 4 })) {
    const tracked = byIndex.get(f.index);
    if (!tracked) continue;
    const k = tracked.crop.side / size;
    const lm = new Float32Array(478 * 3);
    for (let p = 0; p < 478; p++) {
      lm[p * 3] = tracked.crop.x + tracked.humanLandmarks[p * 3]! * k;
      lm[p * 3 + 1] = tracked.crop.y + tracked.humanLandmarks[p * 3 + 1]! * k;
      lm[p * 3 + 2] = tracked.humanLandmarks[p * 3 + 2]!;
    }
    out.push({ image: new Uint8Array(jpeg.encode({ width: info.width, height: info.height, data: Buffer.from(f.pixels) }, 92).data), landmarks: lm });
    header.frames.push({ t: tracked.t, faces: 1 });
  }
  return encodeClipUpload({ header, frames: out });
}
