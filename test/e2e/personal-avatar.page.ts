/**
 * Browser side of test/e2e/personal-avatar.test.ts (bundled by the test with esbuild, served by the
 * avatar server itself): records a clip from the (fake) camera with the real face engine, uploads it
 * as a training job and follows the job to its end. Exposes `window.personalTest`; results are JSON.
 */
import { loadFaceEngine } from '../../client/src/avatar/faceEngine.ts';
import { ClipRecordError, recordClip } from '../../client/src/avatar/clipRecorder.ts';
import { followTrainingJob, submitTrainingJob } from '../../client/src/avatar/trainingJobsClient.ts';
import type { TrainingJobInfo } from '../../protocol/src/trainingJobs.ts';

export interface PersonalRunResult {
  grabbed: number;
  kept: number;
  bytes: number;
  recordMs: number;
  final: TrainingJobInfo;
  updates: { state: string; progress: number }[];
}

async function playing(stream: MediaStream): Promise<HTMLVideoElement> {
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  await video.play();
  while (video.videoWidth === 0) await new Promise((r) => setTimeout(r, 20));
  return video;
}

const personalTest = {
  async run(identityId: string, ownerKey: string, seconds: number, fps: number): Promise<PersonalRunResult> {
    const engine = await loadFaceEngine({});
    const video = await playing(await navigator.mediaDevices.getUserMedia({ video: { width: 480, height: 480 } }));
    const t0 = performance.now();
    const rec = await recordClip({ video, engine, seconds, fps });
    const recordMs = performance.now() - t0;
    const job = await submitTrainingJob(identityId, ownerKey, rec.upload);
    const updates: PersonalRunResult['updates'] = [];
    const final = await followTrainingJob(job.id, ownerKey, (j) => updates.push({ state: j.state, progress: j.progress }));
    (video.srcObject as MediaStream).getTracks().forEach((t) => t.stop());
    return { grabbed: rec.grabbed, kept: rec.kept, bytes: rec.upload.length, recordMs, final, updates };
  },
  /** records a faceless (flat grey) stream: the recorder must refuse it before any upload */
  async faceless(): Promise<{ code: string; message: string } | null> {
    const engine = await loadFaceEngine({});
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 240;
    const ctx = canvas.getContext('2d')!;
    const timer = setInterval(() => { ctx.fillStyle = '#777'; ctx.fillRect(0, 0, 320, 240); }, 30);
    const video = await playing(canvas.captureStream(30));
    try {
      await recordClip({ video, engine, seconds: 1, fps: 10 });
      return null;
    } catch (err) {
      return err instanceof ClipRecordError ? { code: err.code, message: err.message } : { code: 'OTHER', message: String(err) };
    } finally {
      clearInterval(timer);
    }
  },
};

declare global {
  interface Window {
    personalTest: typeof personalTest;
  }
}
window.personalTest = personalTest;
