/**
 * Entry point of one training job's child process (started by TrainingJobs): clip upload → prepared
 * clip → fitted Gaussian head → asset file (written atomically), with progress and previews sent
 * to the parent over IPC. It lowers its own priority before anything else runs, so that every thread
 * it starts (the compositing worker) inherits it and calls on the same host keep their CPU.
 *
 * The parent's end of the IPC channel closing means the server is gone: the job stops at once.
 */
import os from 'node:os';

try {
  os.setPriority(19);
} catch {
  // not permitted here: the parent has tried too, and the job runs at normal priority
}
if (typeof process.send !== 'function' || !process.connected) process.exit(0);
process.on('disconnect', () => process.exit(0));

async function main(): Promise<void> {
  const fs = await import('node:fs');
  const { createHash } = await import('node:crypto');
  const jpeg = (await import('jpeg-js')).default;
  const { fromTrainingProcessSchema, toTrainingProcessSchema } = await import('./trainingMessages.ts');
  type FromTrainingProcess = import('./trainingMessages.ts').FromTrainingProcess;
  const { prepareUpload } = await import('./prepareUpload.ts');
  const { runGaussianPipeline } = await import('./gaussianPipeline.ts');
  const { ClipError } = await import('./clipErrors.ts');
  const { ClipUploadError } = await import('../../../../protocol/src/clipUpload.ts');
  const { TrainingAborted } = await import('../../../../models/gaussian/train.ts');
  const { renderTurntable } = await import('../../../../models/gaussian/turntable.ts');
  const path = await import('node:path');
  const { TURNTABLE_FILE } = await import('./trainingMessages.ts');

  const send = (m: FromTrainingProcess): void => {
    fromTrainingProcessSchema.parse(m);
    process.send?.(m);
  };
  const abort = new AbortController();

  /** ground truth | model, side by side, as a JPEG written atomically */
  const writePreview = (file: string, truth: Uint8Array, model: Float32Array, size: number): void => {
    const w = size * 2;
    const data = Buffer.alloc(w * size * 4);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const p = y * size + x, l = (y * w + x) * 4, r = (y * w + size + x) * 4;
        data[l] = truth[p * 4]!; data[l + 1] = truth[p * 4 + 1]!; data[l + 2] = truth[p * 4 + 2]!; data[l + 3] = 255;
        for (let c = 0; c < 3; c++) data[r + c] = Math.max(0, Math.min(255, Math.round(model[p * 3 + c]! * 255)));
        data[r + 3] = 255;
      }
    }
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, jpeg.encode({ width: w, height: size, data }, 85).data);
    fs.renameSync(tmp, file);
  };

  const run = async (m: Extract<import('./trainingMessages.ts').ToTrainingProcess, { type: 'start' }>): Promise<void> => {
    const { settings } = m;
    send({ type: 'stage', stage: 'preparing', message: 'decoding the clip' });
    const bytes = new Uint8Array(await fs.promises.readFile(m.uploadPath));
    const prepared = await prepareUpload(bytes, { size: settings.size, name: `job-${m.jobId}`, signal: abort.signal });
    send({ type: 'stage', stage: 'training', message: `${prepared.train.length} training frames, ${prepared.test.length} held out` });
    const res = await runGaussianPipeline({
      clip: prepared.file,
      prepared,
      size: settings.size,
      minutes: settings.minutes,
      iterations: settings.iterations,
      gaussians: settings.gaussians,
      threads: settings.threads,
      seed: settings.seed,
      out: m.assetPath,
      signal: abort.signal,
      trainer: { evaluations: settings.evaluations },
      onEvaluation: (e) => {
        let preview = false;
        if (e.preview && e.previewTruth) {
          try {
            writePreview(m.previewPath, e.previewTruth, e.preview, settings.size);
            preview = true;
          } catch {
            // a preview is a nicety: the job goes on without it
          }
        }
        const num = (v: number): number | null => (Number.isFinite(v) ? v : null);
        send({ type: 'progress', progress: e.progress, etaSeconds: Number.isFinite(e.etaSeconds) ? e.etaSeconds : 0, iteration: e.point.iteration, seconds: e.point.seconds, heldOutPsnr: num(e.point.psnr), heldOutFacePsnr: num(e.point.facePsnr), preview });
      },
    });
    send({ type: 'stage', stage: 'writing', message: 'asset written' });
    // The owner's turntable preview (yaw −45° … +45°), next to the job's preview; a nicety like it.
    try {
      const strip = renderTurntable(res.head, 128);
      const file = path.join(path.dirname(m.previewPath), TURNTABLE_FILE);
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, jpeg.encode({ width: strip.width, height: strip.height, data: Buffer.from(strip.rgba.buffer, strip.rgba.byteOffset, strip.rgba.length) }, 85).data);
      fs.renameSync(tmp, file);
    } catch {
      // the job's result is the asset; it goes on without the turntable
    }
    const asset = await fs.promises.readFile(m.assetPath);
    send({
      type: 'done',
      assetBytes: asset.length,
      assetSha256: createHash('sha256').update(asset).digest('hex'),
      iterations: res.iterations,
      trainSeconds: res.trainSeconds,
      heldOut: res.heldOut ? { psnr: res.heldOut.psnr, ssim: res.heldOut.ssim, facePsnr: res.heldOut.facePsnr } : null,
    });
  };

  let started = false;
  process.on('message', (raw: unknown) => {
    const parsed = toTrainingProcessSchema.safeParse(raw);
    if (!parsed.success) return;
    const m = parsed.data;
    if (m.type === 'cancel') {
      abort.abort(new Error('cancelled'));
      return;
    }
    if (started) return;
    started = true;
    run(m).then(
      () => setTimeout(() => process.exit(0), 50),
      (err: unknown) => {
        const code = err instanceof ClipError || err instanceof ClipUploadError ? err.code : err instanceof TrainingAborted || abort.signal.aborted ? 'CANCELLED' : 'INTERNAL';
        const message = err instanceof Error ? err.message : String(err);
        try {
          send({ type: 'failed', code, message: message.slice(0, 2000) });
        } finally {
          setTimeout(() => process.exit(1), 50);
        }
      },
    );
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`training process fatal: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
