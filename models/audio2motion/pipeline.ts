/**
 * The whole audio2motion recipe (Node only): generate data → train → export ONNX + sidecar →
 * held-out scores. Used by `npm run train -- audio2motion` (scripts/train.ts) and by the tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FEATURE_CONFIG, HOP_MS, MAX_RESAMPLER_LOOKAHEAD_MS, FEATURE_LOOKAHEAD_MS } from './features.ts';
import { exportOnnx, parameterCount, windowFrames, type ArchConfig } from './onnx-export.ts';
import { FULL_ARCH, TINY_ARCH, train, type TrainConfig } from './train.ts';
import { FULL_DATA, TINY_DATA, generateData, pack, defaultCacheDir, type DataConfig, type Utterance } from './data/dataset.ts';
import { predictPacked, score, scoreStream, type Scores } from './evaluate.ts';
import { SyncSession } from './ort-sync.ts';
import { StreamingAudio2Motion, type GateMode, type MotionOutput } from './Audio2Motion.ts';
import { MOUTH_OUTPUTS, VISEMES, VISEME_POSE } from './visemes.ts';
import { SAMPLE_RATE } from './features.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const MODEL_DIR = here;

export interface PipelineOptions {
  tiny?: boolean;
  /** output directory for audio2motion.onnx / audio2motion.json (default: this directory) */
  outDir?: string;
  cacheDir?: string;
  /** override training steps */
  steps?: number;
  /** synthetic-only ablation: no real clips in training */
  noReal?: boolean;
  data?: Partial<DataConfig>;
  arch?: Partial<ArchConfig>;
  log?: (s: string) => void;
}

export interface PipelineResult {
  onnxPath: string;
  sidecarPath: string;
  bytes: number;
  parameters: number;
  seconds: { data: number; train: number; total: number };
  heldOut: Record<string, Scores>;
  stream: Record<string, Record<string, number>>;
}

function round(o: Record<string, number>, d = 4): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number.isInteger(v) ? v : Number(v.toFixed(d))]));
}

export async function runPipeline(o: PipelineOptions = {}): Promise<PipelineResult> {
  const log = o.log ?? (() => {});
  const t0 = performance.now();
  const tiny = !!o.tiny;
  const cacheDir = o.cacheDir ?? defaultCacheDir();
  const dataCfg: DataConfig = { ...(tiny ? TINY_DATA : FULL_DATA), ...(o.noReal ? { realTrain: false } : {}), ...o.data, cacheDir };
  const arch: ArchConfig = { ...(tiny ? TINY_ARCH : FULL_ARCH), ...o.arch };
  const trainCfg: TrainConfig = {
    arch,
    steps: o.steps ?? (tiny ? 5 : 11000),
    batch: tiny ? 32 : 256,
    lr: 2e-3,
    seed: dataCfg.seed,
    logEvery: tiny ? 1 : 500,
  };
  log(`data: ${JSON.stringify({ ...dataCfg, cacheDir: undefined })}`);
  const data = await generateData(dataCfg, log);
  const tData = (performance.now() - t0) / 1000;
  const trainUtts = data.utterances.filter((u) => !u.heldOut);
  const packed = pack(trainUtts, arch.past, arch.future);
  log(`training frames: ${packed.index.length} (${(packed.index.length / 6000).toFixed(1)} min); arch ${JSON.stringify(arch)}, ${parameterCount(arch)} parameters, ${trainCfg.steps} steps × ${trainCfg.batch}`);
  const tr = await train(packed, trainCfg, log);
  const outDir = o.outDir ?? MODEL_DIR;
  fs.mkdirSync(outDir, { recursive: true });
  const onnxPath = path.join(outDir, 'audio2motion.onnx');
  const sidecarPath = path.join(outDir, 'audio2motion.json');
  const onnxBytes = exportOnnx(tr.weights, 'audio2motion: log-mel window → mouth expression code, viseme, voiced. See models/audio2motion/README.md');
  fs.writeFileSync(onnxPath, onnxBytes);

  // ---- held-out scores (ONNX through onnxruntime-node)
  const session = new SyncSession(onnxPath);
  const sets: Record<string, Utterance[]> = {
    real: data.utterances.filter((u) => u.heldOut && u.kind === 'real'),
    synth: data.utterances.filter((u) => u.heldOut && u.kind === 'synth'),
    noise: data.utterances.filter((u) => u.heldOut && u.kind === 'noise'),
  };
  const heldOut: Record<string, Scores> = {};
  for (const [name, utts] of Object.entries(sets)) {
    if (utts.length === 0) continue;
    const p = pack(utts, arch.past, arch.future);
    heldOut[name] = round(score(p, predictPacked(session, p, arch)) as unknown as Record<string, number>) as unknown as Scores;
  }
  session.close();
  const sidecar = {
    name: 'audio2motion',
    version: 1,
    description: 'Streaming audio → mouth expression code (jawOpen, mouthWide, smile), viseme and voiced probability. Trained by scripts/train.ts (npm run train -- audio2motion).',
    inputs: { features: { shape: ['N', windowFrames(arch), FEATURE_CONFIG.featureDim], layout: 'N windows of consecutive raw feature frames (features.ts), oldest first; the predicted frame is at index contextFrames.past; normalisation (mean/invStd) is inside the graph' } },
    contextFrames: { past: arch.past, future: arch.future },
    lookaheadMs: { resamplerWorstCase: Number(MAX_RESAMPLER_LOOKAHEAD_MS.toFixed(3)), featureWindow: FEATURE_LOOKAHEAD_MS, model: arch.future * HOP_MS, total: Number((MAX_RESAMPLER_LOOKAHEAD_MS + FEATURE_LOOKAHEAD_MS + arch.future * HOP_MS).toFixed(3)) },
    features: FEATURE_CONFIG,
    outputs: { mouth: [...MOUTH_OUTPUTS], viseme: [...VISEMES], voiced: 'probability that the frame is inside speech' },
    visemePose: VISEME_POSE,
    arch,
    parameters: parameterCount(arch),
    training: {
      data: { ...dataCfg, cacheDir: undefined, stats: data.stats },
      steps: trainCfg.steps,
      batch: trainCfg.batch,
      lr: trainCfg.lr,
      seed: trainCfg.seed,
      finalLoss: Number(tr.finalLoss.toFixed(5)),
      seconds: { data: Math.round(tData), train: Math.round(tr.seconds) },
    },
    heldOut,
  };
  fs.writeFileSync(sidecarPath, JSON.stringify(sidecar, null, 2) + '\n');

  // ---- the streaming API end to end on held-out audio (gating, post-processing)
  const stream: Record<string, Record<string, number>> = {};
  const gates: GateMode[] = tiny ? ['both'] : ['both', 'silero', 'model', 'none'];
  for (const gate of gates) {
    for (const [name, utts] of Object.entries(sets)) {
      if (utts.length === 0) continue;
      const items: Array<{ u: Utterance; frames: MotionOutput[] }> = [];
      for (const u of utts) {
        if (!u.pcm) continue;
        const a = await StreamingAudio2Motion.create({ modelPath: onnxPath, gate, blinks: false, brows: false });
        const frames = a.push(u.pcm, SAMPLE_RATE, 1);
        frames.push(...a.pushSilence(100));
        a.close();
        items.push({ u, frames });
      }
      if (items.length === 0) continue;
      stream[`${name}/${gate}`] = round(scoreStream(items));
    }
  }
  const bytes = fs.statSync(onnxPath).size;
  const total = (performance.now() - t0) / 1000;
  const sc = JSON.parse(fs.readFileSync(sidecarPath, 'utf8'));
  sc.stream = stream;
  sc.training.seconds.total = Math.round(total);
  fs.writeFileSync(sidecarPath, JSON.stringify(sc, null, 2) + '\n');
  return { onnxPath, sidecarPath, bytes, parameters: parameterCount(arch), seconds: { data: tData, train: tr.seconds, total }, heldOut, stream };
}
