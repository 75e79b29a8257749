/**
 * Silero VAD v5 (MIT, shipped inside the @ricky0123/vad-web npm package) on onnxruntime-node,
 * synchronous, fed with the 16 kHz stream in 512-sample chunks (+ 64 samples of context carried
 * from the previous chunk, as silero-vad's own wrapper does). Chunk c covers samples
 * [512c, 512c + 512); `probAt(sample)` returns the probability of the last chunk that ended at or
 * before `sample`, so results do not depend on how the caller chunked the audio.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { ort, SyncSession } from './ort-sync.ts';

const CHUNK = 512;
const CONTEXT = 64;
const HISTORY = 128;

export function defaultSileroPath(): string | null {
  try {
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve('@ricky0123/vad-web/package.json'));
    const f = path.join(dir, 'dist', 'silero_vad_v5.onnx');
    return fs.existsSync(f) ? f : null;
  } catch {
    return null;
  }
}

export class SileroVad {
  private readonly session: SyncSession;
  private state: ort.Tensor;
  private readonly sr: ort.Tensor;
  private readonly input = new Float32Array(CONTEXT + CHUNK);
  private readonly inputTensor: ort.Tensor;
  private fill = 0;
  /** chunks processed */
  chunks = 0;
  private readonly probs = new Float32Array(HISTORY);

  constructor(modelPath: string) {
    this.session = new SyncSession(modelPath);
    this.state = new ort.Tensor('float32', new Float32Array(2 * 128), [2, 1, 128]);
    this.sr = new ort.Tensor('int64', BigInt64Array.from([16000n]), []);
    this.inputTensor = new ort.Tensor('float32', this.input, [1, CONTEXT + CHUNK]);
  }

  /** feeds 16 kHz mono samples */
  push(x: Float32Array): void {
    let i = 0;
    while (i < x.length) {
      const take = Math.min(CHUNK - this.fill, x.length - i);
      this.input.set(x.subarray(i, i + take), CONTEXT + this.fill);
      this.fill += take;
      i += take;
      if (this.fill === CHUNK) {
        const out = this.session.run({ input: this.inputTensor, state: this.state, sr: this.sr });
        this.state = out['stateN'];
        const p = (out['output'].data as Float32Array)[0];
        this.probs[this.chunks % HISTORY] = Number.isFinite(p) ? p : 0;
        this.chunks++;
        this.input.copyWithin(0, CHUNK, CHUNK + CONTEXT);
        this.fill = 0;
      }
    }
  }

  /** speech probability of the latest chunk that ended at or before 16 kHz sample index `sample` (0 if none) */
  probAt(sample: number): number {
    const c = Math.floor(sample / CHUNK) - 1;
    if (c < 0) return 0;
    const last = Math.min(c, this.chunks - 1);
    if (last < 0 || this.chunks - 1 - last >= HISTORY) return 0;
    return this.probs[last % HISTORY];
  }

  reset(): void {
    this.state = new ort.Tensor('float32', new Float32Array(2 * 128), [2, 1, 128]);
    this.input.fill(0);
    this.fill = 0;
    this.chunks = 0;
  }

  close(): void {
    this.session.close();
  }
}
