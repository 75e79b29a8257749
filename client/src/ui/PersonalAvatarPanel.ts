/**
 * The join form's "Create a personal avatar" flow and "My avatars" list.
 *
 * Record: the camera preview with a guide whose prompts change over the recording (look at the
 * camera, talk, smile, raise the brows, blink, turn a little left and right, nod) and live checks
 * (face tracked, well lit, large enough: faceQuality.ts). Or upload a short video file, decoded by
 * this browser through the <video> element and tracked like the camera (clipRecorder.ts); files too
 * large, too long or too big in pixels are refused before anything is read, a clip without a face
 * before anything is uploaded. The clip's first frame is enrolled as a new identity (its photo
 * avatar, also the fallback), then the clip is uploaded as that identity's training job.
 *
 * Train: progress bar with ETA, held-out PSNR and the job's preview (held-out frame | model), and
 * cancel. "My avatars": each saved identity with its score and its head's turntable (yaw −45° … +45°). The job id is saved with the identity (savedAvatar.ts), so a reload resumes following it.
 */
import { CLIP_UPLOAD_LIMITS } from '../../../protocol/src/clipUpload.ts';
import { ACTIVE_JOB_STATES, type TrainingJobInfo } from '../../../protocol/src/trainingJobs.ts';
import { loadFaceEngine, type FaceEngine } from '../avatar/faceEngine.ts';
import { ClipRecordError, recordClip } from '../avatar/clipRecorder.ts';
import { assessFace } from '../avatar/faceQuality.ts';
import { uploadAvatarPhoto } from '../avatar/uploadAvatarPhoto.ts';
import { cancelTrainingJob, followTrainingJob, getTrainingJob, submitTrainingJob, trainingPreviewUrl, trainingTurntableUrl } from '../avatar/trainingJobsClient.ts';
import { rememberAvatar, rememberTrainingJob, savedAvatars, type SavedAvatar } from '../avatar/savedAvatar.ts';
import { personalAvatarStatus, scoreText } from '../avatar/personalAvatar.ts';
import { guidePrompt } from '../avatar/recordingGuide.ts';

/** Largest video file the page reads (bytes), and its largest frame (pixels). */
export const MAX_VIDEO_FILE_BYTES = 200 * 1024 * 1024;
export const MAX_VIDEO_PIXELS = 3840 * 2160;
/** How often the live checks run while the preview is open. */
const CHECK_INTERVAL_MS = 400;

export interface PersonalAvatarPanelOptions {
  /** seconds recorded from the camera (default 10) and frames per second grabbed (default 15) */
  seconds?: number;
  fps?: number;
  /** a saved avatar was added or its personal avatar changed: refresh the join form */
  onChange: () => void;
}

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class PersonalAvatarPanel {
  readonly #panel = $<HTMLElement>('personal-panel');
  readonly #stage = $<HTMLElement>('personal-stage');
  readonly #video = $<HTMLVideoElement>('personal-video');
  readonly #guide = $<HTMLElement>('personal-guide');
  readonly #checks = $<HTMLElement>('personal-checks');
  readonly #record = $<HTMLButtonElement>('personal-record');
  readonly #file = $<HTMLInputElement>('personal-file');
  readonly #progress = $<HTMLElement>('personal-progress');
  readonly #bar = $<HTMLProgressElement>('personal-bar');
  readonly #state = $<HTMLElement>('personal-state');
  readonly #eta = $<HTMLElement>('personal-eta');
  readonly #psnr = $<HTMLElement>('personal-psnr');
  readonly #preview = $<HTMLImageElement>('personal-preview');
  readonly #cancel = $<HTMLButtonElement>('personal-cancel');
  readonly #error = $<HTMLElement>('personal-error');
  readonly #listBox = $<HTMLElement>('my-avatars-box');
  readonly #list = $<HTMLUListElement>('my-avatars');
  #engine: Promise<FaceEngine> | undefined;
  #camera: MediaStream | undefined;
  #checkTimer: number | undefined;
  #busy = false;
  /** the job followed now (one at a time) */
  #following: { jobId: string; abort: AbortController } | undefined;

  constructor(private readonly opts: PersonalAvatarPanelOptions) {
    $<HTMLButtonElement>('personal-close').addEventListener('click', () => this.close());
    this.#record.addEventListener('click', () => void this.#recordCamera());
    this.#file.addEventListener('change', () => {
      const f = this.#file.files?.[0];
      if (f) void this.#recordFile(f);
    });
    this.#cancel.addEventListener('click', () => void this.#cancelJob());
  }

  get busy(): boolean {
    return this.#busy;
  }

  /** Opens the recorder with the camera preview and its live checks. */
  async open(): Promise<void> {
    this.#panel.hidden = false;
    this.#showError(null);
    this.#engine ??= loadFaceEngine({});
    if (this.#busy) return;
    try {
      await this.#startCamera();
    } catch (err) {
      this.#showError(`Could not open the camera: ${(err as Error).message}. You can still upload a video file.`);
    }
  }

  close(): void {
    this.#stopChecks();
    this.#stopCamera();
    if (!this.#following) this.#panel.hidden = true;
  }

  async #startCamera(): Promise<void> {
    if (this.#camera) return;
    this.#camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
    this.#stage.classList.remove('file');
    this.#video.removeAttribute('src');
    this.#video.srcObject = this.#camera;
    await this.#video.play();
    this.#guide.textContent = 'Face the camera, then press "Record"';
    this.#startChecks();
  }

  #stopCamera(): void {
    for (const t of this.#camera?.getTracks() ?? []) t.stop();
    this.#camera = undefined;
    if (this.#video.srcObject) this.#video.srcObject = null;
  }

  #startChecks(): void {
    this.#stopChecks();
    const tick = async (): Promise<void> => {
      const engine = await this.#engine;
      if (this.#checkTimer === undefined || !engine) return;
      if (this.#video.readyState >= 2 && this.#video.videoWidth > 0) {
        try {
          const q = await assessFace(engine, this.#video);
          for (const li of this.#checks.querySelectorAll<HTMLElement>('li')) li.classList.toggle('ok', Boolean(q[li.dataset['check'] as 'tracked' | 'lit' | 'large']));
          this.#checks.dataset['faces'] = String(q.faces);
        } catch {
          // a frame the engine could not read (e.g. the video just changed): next tick
        }
      }
      if (this.#checkTimer !== undefined) this.#checkTimer = window.setTimeout(() => void tick(), CHECK_INTERVAL_MS);
    };
    this.#checkTimer = window.setTimeout(() => void tick(), 0);
  }

  #stopChecks(): void {
    if (this.#checkTimer !== undefined) clearTimeout(this.#checkTimer);
    this.#checkTimer = undefined;
  }

  #showError(message: string | null): void {
    this.#error.hidden = message === null;
    this.#error.textContent = message ?? '';
  }

  #setControls(enabled: boolean): void {
    this.#record.disabled = !enabled;
    this.#file.disabled = !enabled;
  }

  async #recordCamera(): Promise<void> {
    if (this.#busy) return;
    try {
      await this.#startCamera();
    } catch (err) {
      this.#showError(`Could not open the camera: ${(err as Error).message}`);
      return;
    }
    await this.#recordFrom(this.#video, this.opts.seconds ?? 10, this.opts.fps ?? 15);
  }

  /** A video file: checked, decoded by a <video> element, tracked like the camera. */
  async #recordFile(file: File): Promise<void> {
    if (this.#busy) return;
    this.#showError(null);
    if (file.size > MAX_VIDEO_FILE_BYTES) return this.#showError(`The video is ${(file.size / 2 ** 20).toFixed(0)} MiB; use one of at most ${MAX_VIDEO_FILE_BYTES / 2 ** 20} MiB (a few seconds are enough).`);
    this.#stopCamera();
    this.#stage.classList.add('file');
    const url = URL.createObjectURL(file);
    const video = this.#video;
    video.srcObject = null;
    video.src = url;
    try {
      await new Promise<void>((resolve, reject) => {
        video.addEventListener('loadeddata', () => resolve(), { once: true });
        video.addEventListener('error', () => reject(new Error('this browser cannot decode that video file')), { once: true });
      });
      if (!(video.duration > 0.5)) throw new Error('the video is empty or too short');
      if (video.duration > CLIP_UPLOAD_LIMITS.maxSeconds + 0.5) throw new Error(`the video is ${video.duration.toFixed(1)} s long; use one of at most ${CLIP_UPLOAD_LIMITS.maxSeconds} s`);
      if (video.videoWidth * video.videoHeight > MAX_VIDEO_PIXELS) throw new Error(`its frames are ${video.videoWidth}×${video.videoHeight}; use a video of at most 4K`);
      video.currentTime = 0;
      video.loop = false;
      await video.play();
      this.#startChecks();
      await this.#recordFrom(video, Math.min(10, video.duration - 0.2), this.opts.fps ?? 15);
    } catch (err) {
      this.#showError(`Could not use that video: ${(err as Error).message}.`);
    } finally {
      video.pause();
      URL.revokeObjectURL(url);
      this.#file.value = '';
    }
  }

  /** Records `seconds` from a playing video, enrolls its first frame, uploads the clip as a job and follows it. */
  async #recordFrom(video: HTMLVideoElement, seconds: number, fps: number): Promise<void> {
    this.#busy = true;
    this.#setControls(false);
    this.#showError(null);
    try {
      const engine = await (this.#engine ??= loadFaceEngine({}));
      // The first frame becomes the identity's photo (its photo avatar, and the fallback).
      const first = document.createElement('canvas');
      first.width = video.videoWidth;
      first.height = video.videoHeight;
      first.getContext('2d')!.drawImage(video, 0, 0);
      const clip = await recordClip({
        video,
        engine,
        seconds,
        fps,
        onProgress: (p) => {
          if (p.phase === 'recording') {
            this.#guide.textContent = guidePrompt(p.done, p.total);
          } else {
            if (p.done === 1) this.#stopChecks();
            this.#guide.textContent = `Tracking your face… ${Math.round((p.done / p.total) * 100)} %`;
          }
        },
      });
      this.#guide.textContent = 'Uploading…';
      const photo = await new Promise<Blob>((resolve, reject) => first.toBlob((b) => (b ? resolve(b) : reject(new Error('snapshot failed'))), 'image/jpeg', 0.92));
      const enrolled = await uploadAvatarPhoto(photo);
      if (!enrolled.ownerKey) throw new Error('the server did not return an owner key');
      rememberAvatar(enrolled.identityId, localStorage, enrolled.ownerKey);
      const job = await submitTrainingJob(enrolled.identityId, enrolled.ownerKey, clip.upload);
      rememberTrainingJob(enrolled.identityId, job.id);
      this.opts.onChange();
      this.#stopCamera();
      this.#guide.textContent = `Recorded ${clip.kept} frames with your face; training…`;
      void this.follow({ identityId: enrolled.identityId, ownerKey: enrolled.ownerKey, savedAt: '', trainingJobId: job.id }, job);
    } catch (err) {
      const message = err instanceof ClipRecordError ? err.message : `Could not create the personal avatar: ${(err as Error).message}`;
      this.#showError(message);
      this.#guide.textContent = '';
      this.#startChecks();
    } finally {
      this.#busy = false;
      this.#setControls(true);
    }
  }

  /** Shows and follows a saved avatar's training job until it ends (also after a reload). */
  async follow(saved: SavedAvatar, job?: TrainingJobInfo): Promise<TrainingJobInfo | undefined> {
    if (!saved.ownerKey || !saved.trainingJobId) return undefined;
    this.#following?.abort.abort();
    const abort = new AbortController();
    const following = { jobId: saved.trainingJobId, abort };
    this.#following = following;
    this.#panel.hidden = false;
    this.#progress.hidden = false;
    this.#cancel.hidden = false;
    let previewVersion = -1;
    const show = (j: TrainingJobInfo): void => {
      this.#bar.value = j.progress;
      this.#state.textContent = j.state === 'queued' && j.queuePosition ? `queued (${j.queuePosition} ahead)` : j.state;
      this.#eta.textContent = j.etaSeconds !== undefined && (ACTIVE_JOB_STATES as readonly string[]).includes(j.state) ? `about ${Math.ceil(j.etaSeconds)} s left` : '';
      this.#psnr.textContent = j.heldOutPsnr !== undefined ? `held-out PSNR ${j.heldOutPsnr.toFixed(1)} dB` : '';
      this.#progress.dataset['state'] = j.state;
      if (j.previewVersion !== previewVersion && j.previewVersion > 0) {
        previewVersion = j.previewVersion;
        void trainingPreviewUrl(j.id, saved.ownerKey!).then((url) => {
          if (!url) return;
          if (this.#preview.src.startsWith('blob:')) URL.revokeObjectURL(this.#preview.src);
          this.#preview.src = url;
        }, () => undefined);
      }
    };
    try {
      const start = job ?? (await getTrainingJob(saved.trainingJobId, saved.ownerKey));
      show(start);
      let final = start;
      // the event stream can drop (server restart, network): poll once and follow again
      for (let attempt = 0; (ACTIVE_JOB_STATES as readonly string[]).includes(final.state) && !abort.signal.aborted; attempt++) {
        if (attempt > 0) await sleep(2000);
        try {
          final = await followTrainingJob(saved.trainingJobId, saved.ownerKey, show, { signal: abort.signal });
        } catch (err) {
          if (abort.signal.aborted) break;
          if (attempt >= 30) throw err;
          final = await getTrainingJob(saved.trainingJobId, saved.ownerKey).catch(() => final);
        }
      }
      show(final);
      this.#cancel.hidden = true;
      if (final.state === 'done') this.#guide.textContent = `Your personal avatar is ready (${scoreText(final)}). Join "as an avatar" to use it.`;
      else if (final.state === 'failed') this.#showError(`Training failed: ${final.error?.message ?? final.error?.code ?? 'unknown error'}`);
      else if (final.state === 'cancelled') this.#guide.textContent = 'Training was cancelled.';
      this.opts.onChange();
      void this.refreshList();
      return final;
    } catch (err) {
      this.#showError(`Lost track of the training job: ${(err as Error).message}`);
      return undefined;
    } finally {
      if (this.#following === following) this.#following = undefined;
    }
  }

  async #cancelJob(): Promise<void> {
    const f = this.#following;
    const saved = savedAvatars().find((s) => s.trainingJobId === f?.jobId);
    if (!f || !saved?.ownerKey) return;
    this.#cancel.disabled = true;
    try {
      await cancelTrainingJob(f.jobId, saved.ownerKey);
    } catch (err) {
      this.#showError(`Could not cancel: ${(err as Error).message}`);
    } finally {
      this.#cancel.disabled = false;
    }
  }

  /** After a reload: follow the newest saved avatar's training job again when it is still running. */
  async resume(): Promise<void> {
    for (const saved of savedAvatars()) {
      if (!saved.ownerKey || !saved.trainingJobId) continue;
      const job = await getTrainingJob(saved.trainingJobId, saved.ownerKey).catch(() => undefined);
      if (job && (ACTIVE_JOB_STATES as readonly string[]).includes(job.state)) {
        void this.follow(saved, job);
        return;
      }
    }
  }

  /** "My avatars": every saved identity with its photo, its personal avatar's state and score, and a "use" button. */
  async refreshList(): Promise<void> {
    const saved = savedAvatars().filter((s) => s.ownerKey);
    this.#listBox.hidden = saved.length === 0;
    const items = await Promise.all(saved.map(async (s, i) => {
      const status = await personalAvatarStatus(s).catch(() => undefined);
      const li = document.createElement('li');
      li.dataset['identityId'] = s.identityId;
      const img = document.createElement('img');
      img.className = 'photo';
      img.alt = 'photo avatar';
      img.src = `/api/identities/${s.identityId}/photo`;
      li.append(img);
      const text = document.createElement('span');
      if (status?.trained) {
        li.dataset['trained'] = 'true';
        text.textContent = `personal avatar, ${scoreText(status.trained)}`;
      } else if (status?.active) text.textContent = `training ${Math.round(status.active.progress * 100)} %`;
      else text.textContent = status?.latest?.state === 'failed' ? `photo avatar (training failed: ${status.latest.error?.code ?? ''})` : 'photo avatar';
      li.append(text);
      if (status?.trained && s.ownerKey) {
        const strip = await trainingTurntableUrl(status.trained.id, s.ownerKey).catch(() => null);
        if (strip) {
          const turntable = document.createElement('img');
          turntable.className = 'turntable';
          turntable.alt = 'your personal avatar turned from −45° to +45°';
          turntable.src = strip;
          li.append(turntable);
        }
      }
      if (i > 0) {
        const use = document.createElement('button');
        use.type = 'button';
        use.textContent = 'Use';
        use.addEventListener('click', () => {
          rememberAvatar(s.identityId, localStorage, s.ownerKey, s.trainingJobId);
          this.opts.onChange();
          void this.refreshList();
        });
        li.append(use);
      } else {
        const cur = document.createElement('em');
        cur.textContent = '(used for joining)';
        li.append(cur);
      }
      return li;
    }));
    this.#list.replaceChildren(...items);
  }
}
