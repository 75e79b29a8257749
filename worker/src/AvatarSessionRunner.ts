/**
 * One avatar session inside a worker: fetches the identity's asset for the assigned generator from
 * the server, joins the room as the owner's avatar peer (same signaling and WebRTC as a browser, via
 * @roamhq/wrtc and the shared call/ package), receives the owner's motion data channel, renders every
 * requested view at the session's frame rate and publishes each view as a VP8 track (wrtc's
 * RTCVideoSource encodes I420).
 *
 * Frames render in the session's render thread (render/RenderThread.ts), all views of a frame in
 * one batch, so this event loop (wrtc, signaling, the audio tap) never waits for a frame. A frame
 * that comes due while the previous one is still rendering is dropped (`framesDropped`), not queued.
 *
 * Quality of service (QualityController.ts): each frame's cost (render batch + VP8 encode) is
 * measured against the frame interval; a session this worker cannot hold at its nominal size and
 * frame rate renders smaller, then slower, and is restored when the load allows. Each change is
 * reported through `onQualityChange` (the worker tells the server, which tells the owner).
 */
import wrtc from '@roamhq/wrtc';
import { CallClient, type LocalTrack } from '../../call/src/CallClient.ts';
import type { WorkerAssign, ViewOffsetDeg } from '../../protocol/src/signaling.ts';
import { clampView, type GeneratorSource, type RenderedFrame, type ViewOffset } from './generator/generator.ts';
import { DEFAULT_GENERATOR } from '../../protocol/src/generators.ts';
import { generatorModule, type GeneratorModule } from './generator/registry.ts';
import { RenderBusyError, RenderThread } from './render/RenderThread.ts';
import type { RenderThreadPool } from './render/RenderThreadPool.ts';
import { MotionReceiver, type MotionDropReason } from './MotionReceiver.ts';
import { VoiceDriver, type AudioToExpression } from './VoiceDriver.ts';
import { FrameScheduler } from './FrameScheduler.ts';
import { AudioTapReceiver } from './AudioTapReceiver.ts';
import { AUDIO_TAP_LABEL } from '../../protocol/src/audioTap.ts';
import { QualityController, type QualityChange, type QualityLevel } from './QualityController.ts';
import type { Logger } from './logger.ts';
import { AssetUnusableError } from './errors.ts';
import { AssetFetchError } from './assets/AssetClient.ts';

/** What a failed asset load means for the session: missing or unusable asset (fallback), else the error itself. */
function assetError(err: unknown, kind: string): unknown {
  if (err instanceof AssetFetchError && err.status === 404) return new AssetUnusableError('ASSET_MISSING', err.message, { cause: err });
  if (err instanceof AssetFetchError && err.code === 'HASH_MISMATCH') return new AssetUnusableError('ASSET_INVALID', err.message, { cause: err });
  // a decode error of the asset bytes (e.g. a malformed identity file)
  if (!(err instanceof AssetFetchError) && !(err instanceof TypeError)) return new AssetUnusableError('ASSET_INVALID', `the ${kind} asset does not load: ${(err as Error)?.message ?? err}`, { cause: err });
  return err;
}

/** Where a session's generator input comes from (the AssetClient: the server's worker API). */
export interface AssetSource {
  loadSource(identityId: string, generator: string): Promise<GeneratorSource>;
}

interface ViewTrack {
  key: string;
  view: ViewOffset;
  /** Slots nobody watches render at 1 fps (keeps their encoder and SFU producer warm). */
  active: boolean;
  source: InstanceType<typeof wrtc.nonstandard.RTCVideoSource>;
  track: MediaStreamTrack;
  stream: MediaStream;
  frame: RenderedFrame | undefined;
  lastRenderAt: number;
}

export interface SessionStats {
  sessionId: string;
  /** Voice sessions: how long the republished audio is delayed to match the lips. */
  audioDelayMs: number;
  frames: number;
  renderMsTotal: number;
  motionAccepted: number;
  motionDropped: Record<MotionDropReason, number>;
  views: number;
  audioTap?: { decoded: number; late: number; duplicate: number; invalid: number; undecodable: number; concealedMs: number };
  earlyFrames: number;
  /** frames that came due while the previous one was still rendering (dropped, not queued) */
  framesDropped: number;
}

const DEG = Math.PI / 180;
/** A voice avatar's expression moving this much (any coefficient) since the last frame renders one early. */
const EARLY_FRAME_CHANGE = 0.12;
/** Views nobody watches render this often (keeps their encoder and SFU producer warm). */
const IDLE_VIEW_INTERVAL_MS = 1000;
/** Per-frame render times kept for the next stats report (bounded when nobody takes them). */
const MAX_RENDER_SAMPLES = 2000;
const toRad = (v: ViewOffsetDeg): ViewOffset => ({ yaw: v.yaw * DEG, pitch: v.pitch * DEG, roll: v.roll * DEG });

export class AvatarSessionRunner {
  readonly motion: MotionReceiver;
  readonly #views = new Map<string, ViewTrack>();
  #voice: VoiceDriver | undefined;
  /** Voice sessions: the owner's Opus packets from the SFU's audio tap (preferred over an audio track). */
  #tap: AudioTapReceiver | undefined;
  #audioTrack: MediaStreamTrack | undefined;
  #sinks: { stop(): void }[] = [];
  #scheduler: FrameScheduler | undefined;
  #tapActive = false;
  /** The expression of the last rendered frame (voice sessions: decides early frames). */
  readonly #renderedExpression = new Float32Array(12);
  #closed = false;
  frames = 0;
  renderMsTotal = 0;
  framesDropped = 0;
  readonly #quality: QualityController;
  #qualityTimer: NodeJS.Timeout | undefined;
  #encodeSecondsSeen: number | undefined;
  #renderSamples: number[] = [];
  #onQualityChange: (change: QualityChange) => void;

  private constructor(
    readonly assign: WorkerAssign,
    private readonly client: CallClient,
    private readonly renderer: RenderThread,
    private readonly logger: Logger,
    onDrop: (reason: MotionDropReason) => void,
    onQualityChange: (change: QualityChange) => void,
  ) {
    this.motion = new MotionReceiver(onDrop);
    this.#quality = new QualityController({ size: assign.size, fps: assign.fps });
    this.#onQualityChange = onQualityChange;
  }

  static async start(opts: {
    assign: WorkerAssign;
    serverUrl: string;
    assets: AssetSource;
    /** the generator module of a kind (default: the registry's; tests pass doubles) */
    generatorModule?: (kind: string) => GeneratorModule;
    /** Voice sessions: the streaming audio-to-motion model. */
    createAudioModel?: () => Promise<AudioToExpression>;
    logger: Logger;
    onDrop?: (reason: MotionDropReason) => void;
    /** The session's size or frame rate changed (quality of service). */
    onQualityChange?: (change: QualityChange) => void;
    /** the worker's booted spare render threads (absent: the session starts its own) */
    renderThreads?: RenderThreadPool;
  }): Promise<AvatarSessionRunner> {
    const { assign } = opts;
    const logger = opts.logger.child({ sessionId: assign.sessionId, roomId: assign.roomId, ownerPeerId: assign.ownerPeerId });
    const kind = assign.generator ?? DEFAULT_GENERATOR;
    const module = (opts.generatorModule ?? generatorModule)(kind);
    // the asset fetch and the render thread's start overlap; a failed fetch keeps its own error
    let sourceError: unknown;
    const source = opts.assets.loadSource(assign.identityId, kind).catch((err: unknown) => {
      sourceError = assetError(err, kind);
      throw sourceError;
    });
    const renderer = await RenderThread.create({ generator: module, source, ...(opts.renderThreads ? { pool: opts.renderThreads } : {}) }).catch((err: unknown) => {
      if (sourceError !== undefined && err === sourceError) throw err;
      // the generator's initialize() refused the asset (its container's error)
      throw new AssetUnusableError('ASSET_INVALID', `the ${kind} generator could not load the asset: ${(err as Error)?.message ?? err}`, { cause: err });
    });
    const client = new CallClient({ serverUrl: opts.serverUrl, RTCPeerConnection: wrtc.RTCPeerConnection as unknown as typeof RTCPeerConnection });
    const runner = new AvatarSessionRunner(assign, client, renderer, logger, opts.onDrop ?? (() => undefined), opts.onQualityChange ?? (() => undefined));
    const sizes = renderer.capabilities.sizes;
    if (sizes.length > 0 && !sizes.includes(assign.size)) logger.warn({ generator: kind, size: assign.size, sizes }, 'generator renders other sizes best');
    try {
      if (assign.driver === 'voice') {
        if (!opts.createAudioModel) throw new Error('this worker has no audio-to-motion model');
        const model = await opts.createAudioModel();
        let tap: AudioTapReceiver;
        try {
          tap = await AudioTapReceiver.create((chunk) => runner.#voice?.pushAudio(chunk));
        } catch (err) {
          model.close();
          throw err;
        }
        runner.#startVoice(model, tap);
      }
      await runner.#run();
    } catch (err) {
      runner.close();
      throw err;
    }
    return runner;
  }

  #startVoice(model: AudioToExpression, tap: AudioTapReceiver): void {
    this.#tap = tap;
    const source = new wrtc.nonstandard.RTCAudioSource();
    this.#audioTrack = source.createTrack() as unknown as MediaStreamTrack;
    this.#voice = new VoiceDriver(model, (chunk) => source.onData({ ...chunk, bitsPerSample: 16 }));
    this.#voice.onExpression = (e) => {
      let change = 0;
      for (let i = 0; i < e.length && i < this.#renderedExpression.length; i++) change = Math.max(change, Math.abs(e[i]! - this.#renderedExpression[i]!));
      if (change >= EARLY_FRAME_CHANGE) this.#scheduler?.nudge();
    };
    this.client.on('track', (t) => {
      if (t.kind !== 'audio' || t.peerId !== this.assign.ownerPeerId || !this.#voice) return;
      const sink = new wrtc.nonstandard.RTCAudioSink(t.track as never);
      sink.ondata = (d: { samples: Int16Array; sampleRate: number; channelCount: number; numberOfFrames: number }) => {
        // a server with AVATAR_VOICE_INPUT=track; the tap wins if both arrive
        if (!this.#tapActive) this.#voice?.pushAudio(d);
      };
      this.#sinks.push(sink);
    });
  }

  async #run(): Promise<void> {
    const a = this.assign;
    this.client.on('data', ({ label, channel }) => {
      if (label === 'motion') {
        channel.binaryType = 'arraybuffer';
        channel.addEventListener('message', (ev) => this.motion.push((ev as MessageEvent).data as ArrayBuffer));
      } else if (label === AUDIO_TAP_LABEL && this.#tap) {
        const tap = this.#tap;
        channel.binaryType = 'arraybuffer';
        this.#tapActive = true;
        channel.addEventListener('message', (ev) => tap.push((ev as MessageEvent).data as ArrayBuffer));
      }
    });
    this.client.on('disconnected', ({ reason }) => {
      this.logger.warn({ reason }, 'avatar peer lost its signaling connection');
      this.close();
    });
    this.#addView('default', { yaw: 0, pitch: 0, roll: 0 }).active = true;
    for (let i = 0; i < a.viewSlots; i++) this.#addView(`slot-${i}`, { yaw: 0, pitch: 0, roll: 0 });
    this.#applyViews(a.views);
    await this.#renderAll(); // frames exist before the tracks are negotiated
    await this.client.join({ roomId: a.roomId, displayName: a.ownerDisplayName, stream: null, avatarSession: a.token });
    const tracks: LocalTrack[] = [...this.#views.values()].map((v) => ({ track: v.track, stream: v.stream, viewKey: v.key }));
    if (this.#audioTrack) tracks.push({ track: this.#audioTrack, stream: new wrtc.MediaStream([this.#audioTrack as never]) as unknown as MediaStream });
    await this.client.publish(tracks);
    this.#startScheduler(a.fps);
    this.#qualityTimer = setInterval(() => void this.#qualityTick(), this.#quality.windowMs);
    this.logger.info({ views: this.#views.size, size: a.size, fps: a.fps }, 'avatar session live');
  }

  #startScheduler(fps: number): void {
    this.#scheduler?.stop();
    const earlyFrames = this.#scheduler?.earlyFrames ?? 0;
    this.#scheduler = new FrameScheduler({ fps, render: () => void this.#renderAll() });
    this.#scheduler.earlyFrames = earlyFrames;
    this.#scheduler.start();
  }

  /** The size and frame rate this session renders at now (quality of service). */
  get quality(): QualityLevel & { loadPct: number } {
    return { ...this.#quality.current, loadPct: Math.round(this.#quality.lastLoad * 1000) / 10 };
  }

  /** The render time of each frame since the last call (for the per-generator histogram). */
  takeRenderSamples(): number[] {
    const samples = this.#renderSamples;
    this.#renderSamples = [];
    return samples;
  }

  /** Once per window: adds the encoder's time to the measured cost and applies a level change. */
  async #qualityTick(): Promise<void> {
    const encodeSeconds = await this.#encodeSeconds();
    if (this.#closed) return;
    if (encodeSeconds !== undefined) {
      if (this.#encodeSecondsSeen !== undefined) this.#quality.addCost(Math.max(0, encodeSeconds - this.#encodeSecondsSeen) * 1000);
      this.#encodeSecondsSeen = encodeSeconds;
    }
    const change = this.#quality.evaluate();
    if (!change) return;
    const nominal = this.#quality.levels[0]!;
    this.logger.warn({ level: change.level, size: change.size, fps: change.fps, nominalSize: nominal.size, nominalFps: nominal.fps, loadPct: change.loadPct }, change.direction === 'down' ? 'avatar session cannot hold its frame rate: lowering its quality' : 'avatar session load allows: restoring its quality');
    if (this.#scheduler && this.#scheduler.intervalMs !== 1000 / change.fps) this.#startScheduler(change.fps);
    this.#onQualityChange(change);
  }

  /** VP8 encode time of all this session's video tracks so far (the send connection's stats), seconds. */
  async #encodeSeconds(): Promise<number | undefined> {
    const pc = this.client.sendPeerConnection;
    if (!pc) return undefined;
    try {
      let total = 0;
      (await pc.getStats()).forEach((s: Record<string, unknown>) => {
        if (s['type'] === 'outbound-rtp' && s['kind'] === 'video') total += Number(s['totalEncodeTime'] ?? 0);
      });
      return total;
    } catch {
      return undefined;
    }
  }

  #addView(key: string, view: ViewOffsetDeg): ViewTrack {
    const source = new wrtc.nonstandard.RTCVideoSource();
    const track = source.createTrack() as unknown as MediaStreamTrack;
    const stream = new wrtc.MediaStream([track as never]) as unknown as MediaStream;
    const vt: ViewTrack = { key, view: toRad(view), active: false, source, track, stream, frame: undefined, lastRenderAt: Number.NEGATIVE_INFINITY };
    this.#views.set(key, vt);
    return vt;
  }

  /** The server changed which views to render: retarget the default view and the slots (no renegotiation). */
  updateViews(views: WorkerAssign['views']): void {
    if (!this.#closed) this.#applyViews(views);
  }

  #applyViews(views: WorkerAssign['views']): void {
    const wanted = new Map(views.map((v) => [v.key, v.view]));
    for (const vt of this.#views.values()) {
      const view = wanted.get(vt.key);
      vt.active = vt.key === 'default' || view !== undefined;
      if (view) vt.view = toRad(view);
    }
  }

  /**
   * Renders the views due now in one batch on the render thread and publishes them. Resolves when
   * they are published; a call while the previous batch renders drops this frame at once.
   */
  async #renderAll(): Promise<void> {
    if (this.#closed) return;
    if (this.renderer.busy) {
      this.framesDropped++;
      this.#quality.recordDrop();
      return;
    }
    const now = performance.now();
    const motion = this.#voice ? this.#voice.current(now) : this.motion.current();
    for (let i = 0; i < this.#renderedExpression.length; i++) this.#renderedExpression[i] = motion.expression[i] ?? 0;
    const due = [...this.#views.values()].filter((vt) => vt.active || now - vt.lastRenderAt >= IDLE_VIEW_INTERVAL_MS);
    if (due.length === 0) return;
    const limits = this.renderer.capabilities.maxViewOffset;
    let frames: RenderedFrame[];
    try {
      frames = await this.renderer.render(motion, due.map((vt) => clampView(vt.view, limits)), {
        size: this.#quality.current.size,
        format: 'i420',
        reuse: due.map((vt) => vt.frame),
      });
    } catch (err) {
      if (err instanceof RenderBusyError) {
        this.framesDropped++;
        this.#quality.recordDrop();
      } else if (!this.#closed) this.logger.error({ err, views: due.map((vt) => vt.key) }, 'render failed');
      return;
    }
    if (this.#closed) return;
    for (let i = 0; i < due.length; i++) {
      const vt = due[i]!;
      const frame = frames[i];
      vt.frame = undefined;
      if (!frame || !this.#views.has(vt.key)) continue;
      vt.lastRenderAt = now;
      this.frames++;
      this.renderMsTotal += frame.renderMs;
      if (this.#renderSamples.length < MAX_RENDER_SAMPLES) this.#renderSamples.push(Math.round(frame.renderMs * 100) / 100);
      if (frame.i420) vt.source.onFrame({ width: frame.width, height: frame.height, data: frame.i420 });
      // onFrame copied the picture: the buffers go back to the thread with the next batch
      vt.frame = frame;
    }
    // the batch's wall time: thread round trip, every view's render, and handing them to the encoders
    this.#quality.recordFrame(performance.now() - now);
  }

  stats(): SessionStats {
    const t = this.#tapActive ? this.#tap?.stats : undefined;
    return {
      sessionId: this.assign.sessionId,
      frames: this.frames,
      audioDelayMs: this.#voice?.delayMs ?? 0,
      renderMsTotal: this.renderMsTotal,
      motionAccepted: this.motion.accepted,
      motionDropped: { ...this.motion.dropped },
      views: this.#views.size,
      ...(t ? { audioTap: { decoded: t.decoded, late: t.late, duplicate: t.duplicates, invalid: t.invalid, undecodable: t.decodeErrors, concealedMs: t.concealedMs } } : {}),
      earlyFrames: this.#scheduler?.earlyFrames ?? 0,
      framesDropped: this.framesDropped,
    };
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#scheduler?.stop();
    clearInterval(this.#qualityTimer);
    for (const vt of this.#views.values()) vt.track.stop();
    this.#views.clear();
    for (const s of this.#sinks) s.stop();
    this.#sinks = [];
    this.#audioTrack?.stop();
    this.#tap?.close();
    this.#voice?.close();
    void this.client.leave();
    this.renderer.close();
  }
}
