/**
 * `voice` suite: the voice avatar, offline and live.
 *
 * Offline, on a clip with a phoneme alignment (default: the held-out LibriVox clip committed in
 * test/fixtures/audio with its pocketsphinx alignment; `--wav F --text "…"` aligns F with pocketsphinx):
 * - realtime_factor, model_ms_per_frame: StreamingAudio2Motion (resampling, features, VAD, model) fed in
 *   10 ms chunks on one thread; feature_lookahead_ms: its total look-ahead.
 * - viseme_accuracy: the model's viseme vs the alignment's, per 10 ms frame.
 * - mouth_corr: the model's expression rendered by the mesh generator at 25 fps, mouth openness measured
 *   by the face model (Human: inner-lip gap / eye-corner distance) on each rendered frame, Pearson
 *   correlation with the alignment's ground-truth jawOpen at the same instants.
 * Live (the server in its own process with one avatar worker; owner and viewer are Node participants on
 * @roamhq/wrtc, loopback): the owner publishes the clip as its microphone in real time, alternating with
 * 1.5 s of silence (one round); the viewer decodes the avatar video and the (republished) audio.
 * - mic_to_lips_ms_p50 (and min/max over the rounds after the first): the delay between the owner
 *   sending the clip and the viewer showing the same mouth motion: the viewer's mouth signal (luma
 *   difference of the jaw box against the closed mouth seen in the silence before) cross-correlated
 *   with the model's jawOpen for the clip computed offline at audio time; the lag of the best match.
 *   Covers capture → encode → SFU → worker (jitter buffer, features, look-ahead, render, VP8) → SFU →
 *   viewer (jitter buffer, A/V sync, decode). The model's own loudness → mouth lag is reported apart.
 * - av_offset_ms: at the viewer, the lag that best aligns the mouth-region signal of the decoded video
 *   with the received audio's envelope (cross-correlation over ±300 ms in 10 ms steps; positive = the
 *   lips come later than the voice), minus the same lag measured offline between the clip's loudness
 *   and the model's jawOpen at audio time (the mouth naturally peaks after the loudness on vowels):
 *   what remains is what the pipeline adds. `av_offset_raw_ms` and `model_intrinsic_lag_ms` are both
 *   reported.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import wrtc from '@roamhq/wrtc';
import type { Suite, OptionValues } from './suite.ts';
import { UsageError, numberOption } from './suite.ts';
import { StreamingAudio2Motion, type MotionOutput } from '../models/audio2motion/Audio2Motion.ts';
import { targetsFromPhones, type TimedPhone } from '../models/audio2motion/visemes.ts';
import { alignClip, haveSphinx } from '../models/audio2motion/data/sphinx.ts';
import { FRAME_48K, frameAt, loadSpeechClip, roundSignal, type SpeechClip } from './voice-audio.ts';
import { pearson } from '../models/audio2motion/evaluate.ts';
import { enrollIdentityFromPhoto } from '../server/src/avatar/identity/enroll.ts';
import { MeshAvatarGenerator } from '../worker/src/generator/mesh-generator.ts';
import { createFaceAnalyzer } from '../server/src/avatar/face/human-node.ts';
import { startServerProcess } from './serverProcess.ts';
import { childPids } from './keypoint-util.ts';
import { ownerKeyOf, uploadPhotoFile, lumaDiff, VideoProbe, WrtcPeerConnection } from '../test/helpers/avatarPeers.ts';
import { CallClient } from '../call/src/CallClient.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_WAV = path.join(root, 'test/fixtures/audio/librivox-0930.wav');
const DEFAULT_PHOTO = path.join(root, 'test/fixtures/astronaut.png');
const JAW_BOX = { x0: 0.2, y0: 0.45, x1: 0.75, y1: 0.9 };
/** Silence after the clip in each live round (s). */
const GAP_S = 1.5;

interface VoiceOptions {
  wav: string;
  /** The clip as read (any rate, mono or stereo) and its 16 kHz mono copy for the aligner. */
  clip: SpeechClip;
  text: string | undefined;
  photo: string;
  seconds: number;
}

/** Lag (in bins, −30…30) of `b` behind `a` that maximises their Pearson correlation. */
function bestLag(a: number[], b: number[]): { lag: number; r: number } {
  let best = { lag: 0, r: -2 };
  for (let lag = -30; lag <= 30; lag++) {
    const xs: number[] = [];
    const ys: number[] = [];
    for (let i = 0; i < a.length; i++) {
      const k = i + lag;
      if (k < 0 || k >= b.length) continue;
      xs.push(a[i]!);
      ys.push(b[k]!);
    }
    const r = pearson(xs, ys);
    if (r > best.r) best = { lag, r };
  }
  return best;
}

function mouthOpenness(lm: Float32Array): number {
  const d = (a: number, b: number): number => Math.hypot(lm[a * 3]! - lm[b * 3]!, lm[a * 3 + 1]! - lm[b * 3 + 1]!);
  return d(13, 14) / d(33, 263);
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface OfflineResult {
  result: Record<string, unknown>;
  /** The model's jawOpen at audio time, one value per 10 ms from `jawT0Ms` (clip time). */
  jaw: number[];
  jawT0Ms: number;
  clipMs: number;
  intrinsicLagMs: number;
}

async function offline(o: VoiceOptions, log: (l: string) => void): Promise<OfflineResult> {
  const { pcm, sampleRate, file16k } = o.clip;
  let phones: TimedPhone[];
  if (o.text) {
    if (!haveSphinx()) throw new UsageError('--text needs pocketsphinx + pocketsphinx-en-us (apt-get install pocketsphinx pocketsphinx-en-us)');
    phones = alignClip({ id: 'bench', file: file16k, text: o.text, heldOut: true }, fs.mkdtempSync(path.join(os.tmpdir(), 'voice-bench-')));
  } else if (o.wav === DEFAULT_WAV) {
    const meta = JSON.parse(fs.readFileSync(DEFAULT_WAV.replace(/\.wav$/, '.json'), 'utf8')) as { phones: [string, number, number][] };
    phones = meta.phones.map(([ph, startMs, endMs]) => ({ ph, startMs, endMs }));
  } else {
    throw new UsageError('--wav needs --text "TRANSCRIPT" (for the phoneme alignment)');
  }
  const a2m = await StreamingAudio2Motion.create();
  const chunk = Math.round(sampleRate / 100);
  const out: MotionOutput[] = [];
  const t0 = performance.now();
  for (let i = 0; i < pcm.length; i += chunk) out.push(...a2m.push(pcm.subarray(i, Math.min(pcm.length, i + chunk)), sampleRate, 1));
  const elapsed = performance.now() - t0;
  out.push(...a2m.pushSilence(Math.ceil(a2m.lookaheadMs) + 20));
  const lookahead = a2m.lookaheadMs;
  a2m.close();
  const durationMs = (pcm.length / sampleRate) * 1000;
  const gt = targetsFromPhones(phones, out.map((f) => f.tMs));
  let visemeHits = 0;
  for (let i = 0; i < out.length; i++) if (out[i]!.viseme === gt.viseme[i]) visemeHits++;
  log(`offline: ${out.length} frames, model ${elapsed.toFixed(0)} ms for ${durationMs.toFixed(0)} ms of audio`);

  // Render at 25 fps and measure the mouth with the face model.
  const identity = await enrollIdentityFromPhoto(fs.readFileSync(o.photo));
  const gen = new MeshAvatarGenerator();
  await gen.initialize(identity);
  const analyzer = await createFaceAnalyzer();
  const measured: number[] = [];
  const truth: number[] = [];
  const pose = { yaw: 0, pitch: 0, roll: 0, tx: 0, ty: 0, scale: 1 };
  for (let t = 0; t < durationMs; t += 40) {
    const i = out.findIndex((f) => f.tMs >= t);
    if (i < 0) break;
    const frame = gen.render({ pose, expression: out[i]!.expression }, undefined, { size: 256, format: 'rgba' });
    const face = (await analyzer.detect(frame.rgba!, frame.width, frame.height))[0];
    if (!face) continue;
    measured.push(mouthOpenness(face.landmarks));
    truth.push(gt.mouth[i * 3]!);
  }
  analyzer.close();
  gen.close();
  // The model's own lag between the voice's loudness and the mouth (no pipeline): the same
  // cross-correlation as the live A/V measurement, on the model's output at audio time. Subtracted
  // from the live lag, it leaves what the pipeline adds.
  const env = out.map((f) => {
    const c = Math.round((f.tMs / 1000) * sampleRate);
    const h = Math.round(sampleRate * 0.0125);
    let s = 0;
    for (let k = Math.max(0, c - h); k < Math.min(pcm.length, c + h); k++) s += pcm[k]! * pcm[k]!;
    return Math.sqrt(s / (2 * h));
  });
  const jaw = out.map((f) => f.expression[0]!);
  const intrinsicLagMs = bestLag(env, jaw).lag * 10;
  return { jaw, jawT0Ms: out[0]?.tMs ?? 0, clipMs: durationMs, intrinsicLagMs, result: {
    realtime_factor: Number((elapsed / durationMs).toFixed(4)),
    feature_lookahead_ms: Number(lookahead.toFixed(1)),
    model_ms_per_frame: Number((elapsed / Math.max(1, durationMs / 10)).toFixed(3)),
    mouth_corr: Number(pearson(measured, truth).toFixed(3)),
    viseme_accuracy: Number((visemeHits / out.length).toFixed(3)),
    rendered_frames_measured: measured.length,
  } };
}

/** Resident memory of a process (MB), null when it is gone. */
function rssMb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return Number.isFinite(kb) ? Math.round(kb / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

/** Value of a 10 ms-step series at time `t` (linear interpolation, 0 outside). */
function sampleAt(series: number[], t0: number, t: number): number {
  const x = (t - t0) / 10;
  const i = Math.floor(x);
  if (i < 0 || i + 1 >= series.length) return 0;
  return series[i]! + (series[i + 1]! - series[i]!) * (x - i);
}

async function live(o: VoiceOptions, off: OfflineResult, log: (l: string) => void): Promise<Record<string, unknown>> {
  const { intrinsicLagMs } = off;
  // One round: the clip at 48 kHz, then 1.5 s of silence, padded to whole 10 ms frames.
  const { signal } = roundSignal(o.clip.pcm, o.clip.sampleRate, GAP_S);
  // The real server in its own process (its own event loop, as deployed), one avatar worker.
  const server = await startServerProcess({ AVATAR_WORKERS: '1' }, fs.mkdtempSync(path.join(os.tmpdir(), 'voice-bench-data-')), log);
  const sinks: { stop(): void }[] = [];
  try {
    const identityId = await uploadPhotoFile(server.url, o.photo);
    const source = new wrtc.nonstandard.RTCAudioSource();
    const track = source.createTrack() as unknown as MediaStreamTrack;
    const owner = new CallClient({ serverUrl: server.url, RTCPeerConnection: WrtcPeerConnection });
    await owner.join({ roomId: 'voice-bench', displayName: 'owner', stream: new wrtc.MediaStream([track as never]) as unknown as MediaStream, avatar: { identityId, ownerKey: ownerKeyOf(identityId), driver: 'voice' } });
    const ownerId = owner.peerId!;
    const viewer = new CallClient({ serverUrl: server.url, RTCPeerConnection: WrtcPeerConnection });
    const probe = new VideoProbe(viewer, () => ownerId);
    const audioEnv: { t: number; rms: number }[] = [];
    const videoSig: { t: number; luma: Uint8Array }[] = [];
    viewer.on('track', (t) => {
      if (t.kind !== 'audio' || t.peerId !== ownerId) return;
      const sink = new wrtc.nonstandard.RTCAudioSink(t.track as never);
      sink.ondata = (d: { samples: Int16Array }) => {
        let s = 0;
        for (let i = 0; i < d.samples.length; i++) s += d.samples[i]! * d.samples[i]!;
        audioEnv.push({ t: performance.now(), rms: Math.sqrt(s / d.samples.length) });
      };
      sinks.push(sink);
    });
    await viewer.join({ roomId: 'voice-bench', displayName: 'viewer', stream: null });
    const deadline = performance.now() + 30_000;
    while (probe.frames < 20 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (probe.frames < 20) throw new Error('no avatar video at the viewer');
    probe.onFrame = (t, luma) => videoSig.push({ t, luma });
    // The viewer's own view of lip sync: NTP instants (sender clock) of the audio and video it plays out.
    const syncErrors: number[] = [];
    const syncPoll = setInterval(() => {
      void viewer.receivePeerConnection?.getStats().then((report) => {
        const playout: Record<string, number> = {};
        report.forEach((s: Record<string, unknown>) => {
          if (s['type'] === 'inbound-rtp' && typeof s['estimatedPlayoutTimestamp'] === 'number') playout[String(s['kind'])] = s['estimatedPlayoutTimestamp'];
        });
        if (playout['audio'] !== undefined && playout['video'] !== undefined) syncErrors.push(playout['audio'] - playout['video']);
      });
    }, 500);
    const workerPid = childPids(server.pid, 'worker/src/main.ts')[0];
    const rssStart = rssMb(workerPid);
    // Play: (speech, silence) × rounds, in real time, 10 ms per chunk.
    const rounds: { clipStart: number; silentRef?: Uint8Array; silentRefAt?: number }[] = [];
    const roundCount = Math.max(1, Math.floor(o.seconds / (signal.length / 48000)));
    // The closed mouth before any speech: the first round's reference (the only one in a one-round run).
    rounds.push({ clipStart: Number.NaN, silentRef: probe.luma.slice(), silentRefAt: performance.now() });
    const start = performance.now();
    let sent = 0;
    const total = signal.length * roundCount;
    await new Promise<void>((resolve) => {
      const pump = setInterval(() => {
        const due = Math.floor(((performance.now() - start) / 1000) * 48000);
        while (sent + FRAME_48K <= Math.min(due, total)) {
          const pos = sent % signal.length;
          const samples = frameAt(signal, sent);
          if (pos === 0) rounds.push({ clipStart: performance.now() });
          // Reference picture of the closed mouth: late in the silence before the next round.
          if (pos === signal.length - 10 * FRAME_48K) rounds.push({ clipStart: Number.NaN, silentRef: probe.luma.slice(), silentRefAt: performance.now() });
          source.onData({ samples, sampleRate: 48000, bitsPerSample: 16, channelCount: 1, numberOfFrames: FRAME_48K });
          sent += FRAME_48K;
        }
        if (sent + FRAME_48K > total) {
          clearInterval(pump);
          resolve();
        }
      }, 5);
    });
    await new Promise((r) => setTimeout(r, 500));
    probe.onFrame = undefined;
    clearInterval(syncPoll);
    const rssEnd = rssMb(workerPid);
    // Mic-to-lips per round (the first is a warm-up): the delay between the owner sending the clip and
    // the viewer showing the same mouth motion. The viewer's mouth signal (luma difference of the jaw box
    // against the closed mouth seen in the silence before) is cross-correlated with the model's jawOpen
    // for the same clip computed offline at audio time; the lag of the best match (0–600 ms, 10 ms
    // steps, refined by a parabola through the peak) is that round's mic-to-lips.
    const latencies: number[] = [];
    const matches: number[] = [];
    const speechRounds = rounds.filter((r) => Number.isFinite(r.clipStart));
    const refs = rounds.filter((r) => r.silentRef);
    const span = Math.ceil((off.clipMs + 200) / 10);
    // The first round is a warm-up unless it is the only one.
    for (const round of speechRounds.length > 1 ? speechRounds.slice(1) : speechRounds) {
      const ref = [...refs].reverse().find((r) => r.silentRefAt! < round.clipStart);
      if (!ref || ref.silentRef!.length === 0) continue;
      // viewer signal every 10 ms from the clip's start to 600 ms after its end (the frame on screen at each instant)
      const frames = videoSig.filter((v) => v.t >= round.clipStart - 100 && v.t <= round.clipStart + off.clipMs + 900);
      if (frames.length < 10) continue;
      const shown: number[] = [];
      let k = 0;
      for (let b = 0; b < span + 60; b++) {
        const t = round.clipStart + b * 10;
        while (k + 1 < frames.length && frames[k + 1]!.t <= t) k++;
        const d = lumaDiff(ref.silentRef!, frames[k]!.luma, probe.width, JAW_BOX);
        shown.push(Number.isFinite(d) ? d : 0);
      }
      const model = Array.from({ length: span }, (_, b) => sampleAt(off.jaw, off.jawT0Ms, b * 10));
      const r: number[] = [];
      for (let lag = 0; lag <= 60; lag++) r.push(pearson(model, shown.slice(lag, lag + span)));
      let best = 0;
      for (let lag = 1; lag < r.length; lag++) if (r[lag]! > r[best]!) best = lag;
      let frac = 0;
      if (best > 0 && best < r.length - 1) {
        const den = r[best - 1]! - 2 * r[best]! + r[best + 1]!;
        if (den < 0) frac = (0.5 * (r[best - 1]! - r[best + 1]!)) / den;
      }
      latencies.push((best + frac) * 10);
      matches.push(r[best]!);
    }
    // Cross-correlate the mouth signal (jaw box against the first closed-mouth reference) and the audio envelope in 10 ms bins.
    const ref0 = refs[0]?.silentRef ?? videoSig[0]!.luma;
    const diffs = videoSig.map((v) => ({ t: v.t, d: lumaDiff(ref0, v.luma, probe.width, JAW_BOX) }));
    const t0 = Math.max(audioEnv[0]?.t ?? 0, diffs[0]?.t ?? 0);
    const t1 = Math.min(audioEnv[audioEnv.length - 1]?.t ?? 0, diffs[diffs.length - 1]?.t ?? 0);
    const bins = Math.floor((t1 - t0) / 10);
    const a = new Float64Array(bins);
    const v = new Float64Array(bins);
    for (const e of audioEnv) {
      const b = Math.floor((e.t - t0) / 10);
      if (b >= 0 && b < bins) a[b] = Math.max(a[b]!, e.rms);
    }
    let j = 0;
    for (let b = 0; b < bins; b++) {
      const t = t0 + b * 10;
      while (j + 1 < diffs.length && diffs[j + 1]!.t <= t) j++;
      v[b] = Number.isFinite(diffs[j]!.d) ? diffs[j]!.d : 0;
    }
    const best = bestLag(Array.from(a), Array.from(v));
    const stats = await (await fetch(`${server.url}/metrics`)).text();
    // Where the viewer holds media: mean jitter-buffer delay per kind (diagnostic for the A/V offset).
    const jitter: Record<string, number | null> = { audio: null, video: null };
    const report = await viewer.receivePeerConnection?.getStats();
    report?.forEach((s: Record<string, unknown>) => {
      if (s['type'] !== 'inbound-rtp') return;
      const emitted = Number(s['jitterBufferEmittedCount'] ?? 0);
      if (emitted > 0) jitter[String(s['kind'])] = Math.round((Number(s['jitterBufferDelay'] ?? 0) / emitted) * 1000);
    });
    log(`live: ${speechRounds.length} rounds, mic-to-lips ${latencies.map((x, i) => `${x.toFixed(0)} ms (r=${matches[i]!.toFixed(2)})`).join(', ')}, A/V xcorr peak r=${best.r.toFixed(2)} at ${best.lag * 10} ms`);
    probe.stop();
    await viewer.leave();
    await owner.leave();
    const sorted = [...latencies].sort((x, y) => x - y);
    return {
      mic_to_lips_ms_p50: median(latencies) === null ? null : Math.round(median(latencies)!),
      mic_to_lips_ms_min: sorted.length ? Math.round(sorted[0]!) : null,
      mic_to_lips_ms_max: sorted.length ? Math.round(sorted[sorted.length - 1]!) : null,
      mic_to_lips_rounds: latencies.length,
      mic_to_lips_match_r: median(matches) === null ? null : Number(median(matches)!.toFixed(3)),
      // long runs (--seconds 300 and more): does the latency creep? last third minus first third of the rounds
      mic_to_lips_drift_ms: latencies.length >= 6 ? Math.round(median(latencies.slice(-Math.floor(latencies.length / 3)))! - median(latencies.slice(0, Math.floor(latencies.length / 3)))!) : null,
      av_offset_ms: Math.round(best.lag * 10 - intrinsicLagMs),
      av_offset_raw_ms: Math.round(best.lag * 10),
      model_intrinsic_lag_ms: intrinsicLagMs,
      av_xcorr_peak: Number(best.r.toFixed(3)),
      viewer_jitter_buffer_ms: jitter,
      viewer_playout_audio_minus_video_ms: median(syncErrors) === null ? null : Math.round(median(syncErrors)!),
      worker_audio_delay_ms: Math.round(Number(/^avatar_voice_audio_delay_ms (\S+)/m.exec(stats)?.[1] ?? NaN)),
      worker_audio_tap: {
        decoded: Number(/^avatar_voice_tap_packets_total\{outcome="decoded"\} (\S+)/m.exec(stats)?.[1] ?? 0),
        late: Number(/^avatar_voice_tap_packets_total\{outcome="late"\} (\S+)/m.exec(stats)?.[1] ?? 0),
        concealed_ms: Math.round(1000 * Number(/^avatar_voice_tap_concealed_seconds_total (\S+)/m.exec(stats)?.[1] ?? 0)),
      },
      worker_rss_mb: { start: rssStart, end: rssEnd },
      worker_early_frames: Number(/^avatar_early_frames_total (\S+)/m.exec(stats)?.[1] ?? 0),
      viewer_video_frames: videoSig.length,
      motion_metrics_ok: /avatar_rendered_frames_total \d+/.test(stats),
    };
  } finally {
    for (const s of sinks) s.stop();
    await server.stop();
  }
}

export const voiceSuite: Suite<VoiceOptions> = {
  name: 'voice',
  summary: 'voice avatar: realtime factor, look-ahead, mic-to-lips latency, A/V offset, mouth correlation, viseme accuracy',
  needsLoopbackNetns: true,
  options: { wav: { type: 'string' }, text: { type: 'string' }, photo: { type: 'string' }, seconds: { type: 'string' } },
  usage: ['--wav PATH --text "TRANSCRIPT"  speech clip and its transcript (default: held-out LibriVox clip)', '--photo PATH  source photo (default astronaut)', '--seconds S  live part length, at least 1 and one round (default 30; one round = the clip + 1.5 s of silence, the first of several is a warm-up)'],
  parse(values: OptionValues): VoiceOptions {
    const wav = typeof values['wav'] === 'string' ? path.resolve(values['wav']) : DEFAULT_WAV;
    if (!fs.existsSync(wav)) throw new UsageError(`--wav ${wav}: no such file`);
    const photo = typeof values['photo'] === 'string' ? path.resolve(values['photo']) : DEFAULT_PHOTO;
    if (!fs.existsSync(photo)) throw new UsageError(`--photo ${photo}: no such file`);
    const text = typeof values['text'] === 'string' ? values['text'] : undefined;
    if (values['wav'] !== undefined && !text) throw new UsageError('--wav needs --text "TRANSCRIPT"');
    let clip: SpeechClip;
    try {
      clip = loadSpeechClip(wav, fs.mkdtempSync(path.join(os.tmpdir(), 'voice-bench-clip-')));
    } catch (err) {
      throw new UsageError(`--wav ${wav}: ${(err as Error).message}`);
    }
    const roundS = roundSignal(clip.pcm, clip.sampleRate, GAP_S).signal.length / 48000;
    const seconds = numberOption(values, 'seconds', Math.max(30, roundS), Math.max(1, roundS), 3600);
    return { wav, clip, text, photo, seconds };
  },
  async run(o, log) {
    const off = await offline(o, log);
    const on = await live(o, off, log);
    const result = { suite: 'voice', ...off.result, ...on };
    return { result, summary: Object.entries(result).map(([k, v]) => `${k}: ${String(v)}`) };
  },
};
