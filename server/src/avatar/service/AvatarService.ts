/**
 * Avatar sessions and the workers that render them.
 *
 * Workers connect over socket.io with the worker token and register a capacity; each avatar owner
 * (a participant who joined "as avatar") gets a session that is assigned to the least-loaded worker.
 * The worker then joins the room as an avatar peer with the session token. When a worker disconnects,
 * its sessions are reassigned at once to another worker, or to the next one that registers (a
 * supervisor restarts local workers). Free views: each distinct personal view (rounded to 1°) is one
 * extra rendered stream, shared by the viewers who chose it, capped per avatar; its view key is the
 * viewers' presentation slot in the room. Each session composes the owner's media in the room with
 * an AvatarRouting, and keeps what the owner's tile shows in the owner's PeerInfo attributes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Socket } from 'socket.io';
import { EnhancedEventEmitter } from '../../util/EnhancedEventEmitter.ts';
import { AppError, InvalidStateError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { Config } from '../../config.ts';
import type { Room } from '../../rooms/Room.ts';
import type { Peer } from '../../rooms/Peer.ts';
import { errorBody, workerRequestSchemas, type AvatarFallback, type AvatarQuality, type ViewOffsetDeg, type WorkerAssign } from '../../../../protocol/src/signaling.ts';
import type { AvatarMetrics } from './AvatarMetrics.ts';
import { AvatarRouting, type AvatarDriver } from './AvatarRouting.ts';

export type AvatarSessionState = 'starting' | 'live' | 'recovering' | 'failed';
import { GENERATOR_ASSET, type AssetKind, type GeneratorKind, type GeneratorOffer } from '../../../../protocol/src/generators.ts';
import { anyWorkerRenders, DEFAULT_VIEW_LIMITS_DEG, generatorsFor, offerFromName, placeSession, type PlacementWorker } from './placement.ts';

/** The asset kinds an identity has (the identity store); placement chooses the generator from them. */
export type IdentityAssetLookup = (identityId: string) => Promise<AssetKind[]>;
/** Without a lookup every identity is taken to have its enrolled photo only. */
const PHOTO_ONLY: readonly AssetKind[] = Object.freeze(['enrolled-photo']);

export interface AvatarSession {
  readonly id: string;
  /**
   * The session token of its current assignment (what the worker's runner joins with), bound to
   * the worker it was given to (`tokenWorkerId`): valid only while the session is assigned there, a
   * new one when it is assigned to another worker, so a runner of a moved session is refused.
   */
  token: string;
  /** The worker `token` was given to. */
  tokenWorkerId: string | undefined;
  readonly room: Room;
  readonly owner: Peer;
  readonly identityId: string;
  readonly driver: AvatarDriver;
  /** The owner's media in the room (avatar peers' video and voice presented as the owner's). */
  readonly routing: AvatarRouting;
  /** What the owner's tile shows (with `reason`, `paused` and `defaultView`: PeerInfo.avatar). */
  state: AvatarSessionState;
  /** Why a failed avatar failed (shown in its tile). */
  reason: string | undefined;
  /** The owner stopped the camera that drives it (keypoint avatars): it idles. */
  paused: boolean;
  workerId: string | undefined;
  avatarPeer: Peer | undefined;
  defaultView: ViewOffsetDeg;
  /** personal view slot ("slot-<i>") → the view it renders */
  personalViews: Map<string, ViewOffsetDeg>;
  startedAt: number;
  /** When the session lost its renderer (worker died), for the recovery-time metric. */
  lostAt: number | undefined;
  /** Workers that reported they could not start this session; after MAX_START_FAILURES it gives up. */
  failures: number;
  /**
   * Runners that died (avatar peer closed, worker still connected) since it was last live; past
   * config.workers.maxRunnerRestarts it gives up.
   */
  runnerDeaths: number;
  /** Counts its assignments; an avatar peer belongs to the one it joined under. */
  assignment: number;
  /** Runs while the session is not live: when it fires the session shows "failed" (config.workers.startTimeoutMs). */
  startTimer: NodeJS.Timeout | undefined;
  /** Given up for good (every worker failed it): no more assignment. A timed-out session keeps trying. */
  gaveUp: boolean;
  /** The identity's asset kinds, once looked up (placement waits for them). */
  assets: readonly AssetKind[] | undefined;
  /** The generator its current worker renders it with. */
  generator: GeneratorKind | undefined;
  /** The size and frame rate its worker renders it at (quality of service); undefined: nominal. */
  quality: AvatarQuality | undefined;
  /** The generator the owner asked for in the join (`avatar.generator`), if any. */
  readonly requestedGenerator: GeneratorKind | undefined;
  /** Generators this session no longer tries (their asset failed to load, or every start failed), and why. */
  readonly excluded: Map<GeneratorKind, AvatarFallback>;
  /** It renders with another generator than the requested one, and why (PeerInfo.avatar.fallback). */
  fallback: AvatarFallback | undefined;
}

interface WorkerEntry {
  id: string;
  socket: Socket;
  capacity: number;
  offers: Map<string, GeneratorOffer>;
  sessions: Set<string>;
  /** Its control socket dropped: it keeps its sessions until `graceTimer` fires or it re-registers. */
  connected: boolean;
  graceTimer: NodeJS.Timeout | undefined;
}

export type AvatarServiceEvents = {
  /** The owner's avatar state or default view changed: tell the room. */
  avatarstate: [session: AvatarSession];
  /** The session's quality of service changed: tell its owner. */
  avatarquality: [session: AvatarSession, quality: AvatarQuality];
};

const ZERO_VIEW: ViewOffsetDeg = Object.freeze({ yaw: 0, pitch: 0, roll: 0 });
const ASSIGN_ACK_TIMEOUT_MS = 5000;
const MAX_START_FAILURES = 3;

export function clampViewDeg(v: ViewOffsetDeg, limits = { yaw: 30, pitch: 20, roll: 20 }): ViewOffsetDeg {
  const c = (x: number, l: number): number => Math.max(-l, Math.min(l, Math.round(x)));
  return { yaw: c(v.yaw, limits.yaw), pitch: c(v.pitch, limits.pitch), roll: c(v.roll, limits.roll) };
}

/** Identical (rounded) views share one stream. */
export function viewKey(v: ViewOffsetDeg): string {
  const s = (x: number): string => (x < 0 ? `m${-x}` : `p${x}`);
  return `y${s(v.yaw)}_p${s(v.pitch)}_r${s(v.roll)}`;
}

export class AvatarService extends EnhancedEventEmitter<AvatarServiceEvents> {
  readonly #workers = new Map<string, WorkerEntry>();
  readonly #sessions = new Map<string, AvatarSession>();
  readonly #byToken = new Map<string, AvatarSession>();
  readonly #byOwner = new Map<Peer, AvatarSession>();
  readonly #pending = new Set<string>();
  /** Latest lip-sync delay each session's worker reported: the gauge is their maximum. */
  readonly #audioDelayMs = new Map<string, number>();
  #closed = false;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly metrics: AvatarMetrics,
    private readonly identityAssets?: IdentityAssetLookup,
  ) {
    super();
  }

  get sessions(): ReadonlyMap<string, AvatarSession> {
    return this.#sessions;
  }

  get workerCount(): number {
    return this.#workers.size;
  }

  /**
   * A socket that presented a worker credential; `boundWorkerId`: the only id it may register as (a
   * per-worker credential, auth/workerCredentials.ts); undefined: any (the shared master token).
   */
  attachWorker(socket: Socket, boundWorkerId?: string): void {
    if (this.#closed) {
      socket.disconnect(true);
      return;
    }
    let entry: WorkerEntry | undefined;
    socket.on('worker:register', (payload: unknown, ack?: (r: unknown) => void) => {
      const parsed = workerRequestSchemas['worker:register'].safeParse(payload);
      if (!parsed.success || entry) {
        ack?.({ ok: false, error: errorBody('BAD_REQUEST', entry ? 'already registered' : 'invalid worker:register') });
        return;
      }
      if (boundWorkerId !== undefined && parsed.data.workerId !== boundWorkerId) {
        this.logger.warn({ workerId: parsed.data.workerId, credentialWorkerId: boundWorkerId }, 'worker refused: its credential is for another worker id');
        ack?.({ ok: false, error: errorBody('FORBIDDEN', `this credential is for worker "${boundWorkerId}", not "${parsed.data.workerId}"`) });
        socket.disconnect(true);
        return;
      }
      const old = this.#workers.get(parsed.data.workerId);
      const offers = new Map(parsed.data.generators.map((g) => (typeof g === 'string' ? offerFromName(g, parsed.data.capacity) : g)).map((o) => [o.kind, o] as const));
      entry = { id: parsed.data.workerId, socket, capacity: parsed.data.capacity, offers, sessions: new Set(), connected: true, graceTimer: undefined };
      const lost = old ? this.#takeOver(old, entry, parsed.data.sessions ?? []) : [];
      this.#workers.set(entry.id, entry);
      this.metrics.workers.set(this.#workers.size);
      this.logger.info({ workerId: entry.id, capacity: entry.capacity, generators: [...offers.keys()], kept: entry.sessions.size, lost: lost.length }, 'avatar worker registered');
      ack?.({ ok: true, data: {} });
      for (const session of lost) this.#assign(session);
      this.#assignPending();
    });
    socket.on('worker:session-state', (payload: unknown) => {
      const parsed = workerRequestSchemas['worker:session-state'].safeParse(payload);
      if (!parsed.success) return;
      const session = this.#sessions.get(parsed.data.sessionId);
      if (!session || session.workerId !== entry?.id) return;
      if (parsed.data.state === 'failed') {
        this.logger.warn({ sessionId: session.id, message: parsed.data.message, code: parsed.data.code, generator: session.generator }, 'worker failed a session');
        const generator = session.generator;
        this.#unassign(session);
        // Its asset cannot be loaded (missing, corrupt): another generator the identity has an asset
        // for (the photo's mesh) renders it instead, and the owner is told why.
        const others = generator !== undefined && this.#otherGenerators(session, generator);
        if (generator && others && parsed.data.code) {
          this.#exclude(session, generator, parsed.data.code, parsed.data.message);
          this.#assign(session);
          return;
        }
        if (++session.failures >= MAX_START_FAILURES && generator && others) {
          this.#exclude(session, generator, 'GENERATOR_FAILED', parsed.data.message);
          session.failures = 0;
          this.#assign(session);
          return;
        }
        if (session.failures >= MAX_START_FAILURES) {
          this.logger.error({ sessionId: session.id, failures: session.failures }, 'avatar session failed on every try; giving up');
          this.#giveUp(session, `the avatar could not be started (${session.failures} tries${parsed.data.message ? `: ${parsed.data.message}` : ''})`);
          return;
        }
        this.#assign(session, entry?.id);
      }
    });
    socket.on('worker:session-quality', (payload: unknown) => {
      const parsed = workerRequestSchemas['worker:session-quality'].safeParse(payload);
      if (!parsed.success) return;
      const session = this.#sessions.get(parsed.data.sessionId);
      if (!session || session.workerId !== entry?.id) return;
      const q = parsed.data.quality;
      const before = session.quality?.level ?? 0;
      if (q.level !== before) this.metrics.qualityChanges.inc({ direction: q.level > before ? 'down' : 'up' });
      this.logger.info({ sessionId: session.id, workerId: session.workerId, level: q.level, size: q.size, fps: q.fps, loadPct: q.loadPct }, 'avatar session quality changed');
      this.#setQuality(session, q);
    });
    // Counters arrive cumulative per session; export the increments.
    const last = new Map<string, { frames: number; renderMsTotal: number; motionAccepted: number; dropped: Record<string, number>; tap: Record<string, number>; earlyFrames: number; framesDropped: number }>();
    socket.on('worker:stats', (payload: unknown) => {
      const parsed = workerRequestSchemas['worker:stats'].safeParse(payload);
      if (!parsed.success) return;
      for (const s of parsed.data.sessions) {
        const prev = last.get(s.sessionId) ?? { frames: 0, renderMsTotal: 0, motionAccepted: 0, dropped: {}, tap: {}, earlyFrames: 0, framesDropped: 0 };
        this.metrics.renderedFrames.inc(Math.max(0, s.frames - prev.frames));
        this.metrics.renderSeconds.inc(Math.max(0, s.renderMsTotal - prev.renderMsTotal) / 1000);
        this.metrics.motionFrames.inc({ outcome: 'accepted' }, Math.max(0, s.motionAccepted - prev.motionAccepted));
        for (const [reason, n] of Object.entries(s.motionDropped)) this.metrics.motionFrames.inc({ outcome: `dropped_${reason}` }, Math.max(0, n - (prev.dropped[reason] ?? 0)));
        const tap: Record<string, number> = s.audioTap ?? {};
        for (const [key, n] of Object.entries(tap)) {
          const inc = Math.max(0, n - (prev.tap[key] ?? 0));
          if (key === 'concealedMs') this.metrics.audioTapConcealedSeconds.inc(inc / 1000);
          else this.metrics.audioTapPackets.inc({ outcome: key }, inc);
        }
        this.metrics.earlyFrames.inc(Math.max(0, s.earlyFrames - prev.earlyFrames));
        this.metrics.droppedFrames.inc(Math.max(0, s.framesDropped - prev.framesDropped));
        const rendering = this.#sessions.get(s.sessionId);
        if (rendering && rendering.workerId === entry?.id) for (const ms of s.renderMs) this.metrics.renderMs.observe({ generator: rendering.generator ?? 'mesh' }, ms);
        last.set(s.sessionId, { frames: s.frames, renderMsTotal: s.renderMsTotal, motionAccepted: s.motionAccepted, dropped: { ...s.motionDropped }, tap: { ...tap }, earlyFrames: s.earlyFrames, framesDropped: s.framesDropped });
      }
      for (const id of [...last.keys()]) if (!parsed.data.sessions.some((s) => s.sessionId === id)) last.delete(id);
      // Per session, from the worker that renders it (another worker's report does not overwrite it).
      for (const s of parsed.data.sessions) if (this.#sessions.get(s.sessionId)?.workerId === entry?.id) this.#audioDelayMs.set(s.sessionId, s.audioDelayMs);
      for (const id of entry?.sessions ?? []) if (!parsed.data.sessions.some((s) => s.sessionId === id)) this.#audioDelayMs.delete(id);
      this.#updateAudioDelay();
    });
    socket.on('disconnect', (reason: string) => {
      const gone = entry;
      if (!gone || this.#workers.get(gone.id) !== gone) return;
      const graceMs = this.config.workers.reconnectGraceMs;
      if (this.#closed || graceMs <= 0 || gone.sessions.size === 0) {
        this.#onWorkerGone(gone);
        return;
      }
      // Its runners may well still be rendering (a blip on the control connection): the sessions
      // stay with it for the grace; re-registering in time reconciles them (#takeOver).
      gone.connected = false;
      this.logger.warn({ workerId: gone.id, sessions: gone.sessions.size, graceMs, reason }, 'avatar worker control socket dropped; keeping its sessions for the grace period');
      gone.graceTimer = setTimeout(() => {
        gone.graceTimer = undefined;
        if (this.#workers.get(gone.id) === gone) this.#onWorkerGone(gone);
      }, graceMs);
      gone.graceTimer.unref?.();
    });
  }

  /**
   * `next` registers with the id of `old` (the same worker, reconnected): the sessions it reports
   * still running stay with it (same token); the ones it lost are returned, to be assigned again;
   * the ones it runs that are no longer its own are released.
   */
  #takeOver(old: WorkerEntry, next: WorkerEntry, running: readonly string[]): AvatarSession[] {
    clearTimeout(old.graceTimer);
    old.graceTimer = undefined;
    if (old.connected) old.socket.disconnect(true);
    old.connected = false;
    const runs = new Set(running);
    const lost: AvatarSession[] = [];
    for (const id of old.sessions) {
      const session = this.#sessions.get(id);
      if (!session || session.workerId !== old.id) continue;
      if (runs.has(id)) {
        next.sessions.add(id);
        continue;
      }
      this.#audioDelayMs.delete(id);
      session.workerId = undefined;
      this.#byToken.delete(session.token);
      session.tokenWorkerId = undefined;
      if (session.gaveUp) continue;
      session.lostAt ??= performance.now();
      this.#armStartTimer(session);
      this.#setState(session, 'recovering');
      lost.push(session);
    }
    for (const id of runs) if (!next.sessions.has(id)) next.socket.emit('worker:release', { sessionId: id });
    old.sessions.clear();
    this.#updateAudioDelay();
    this.logger.info({ workerId: next.id, kept: next.sessions.size, lost: lost.length }, 'avatar worker reconnected; sessions reconciled');
    return lost;
  }

  /**
   * Start rendering `owner`'s avatar (the owner joined with `avatar: {identityId}`); with
   * `requestedGenerator` (the join's `avatar.generator`) placement prefers it over AVATAR_GENERATOR,
   * and the avatar's state says why when another generator renders it instead.
   */
  startSession(room: Room, owner: Peer, identityId: string, driver: AvatarDriver = 'keypoint', requestedGenerator?: GeneratorKind): AvatarSession {
    if (this.#closed) throw new InvalidStateError('avatar service closed');
    if (this.#byOwner.has(owner)) throw new AppError('ALREADY_JOINED', 'this peer already has an avatar');
    const routing = new AvatarRouting({ room, owner, driver, config: this.config, logger: this.logger.child({ roomId: room.id }) });
    const session: AvatarSession = {
      id: randomUUID().replaceAll('-', '').slice(0, 16),
      token: randomBytes(24).toString('base64url'),
      tokenWorkerId: undefined,
      room,
      owner,
      identityId,
      driver,
      routing,
      state: 'starting',
      reason: undefined,
      paused: false,
      workerId: undefined,
      avatarPeer: undefined,
      defaultView: ZERO_VIEW,
      personalViews: new Map(),
      startedAt: performance.now(),
      lostAt: undefined,
      failures: 0,
      runnerDeaths: 0,
      assignment: 0,
      startTimer: undefined,
      gaveUp: false,
      assets: this.identityAssets ? undefined : PHOTO_ONLY,
      generator: undefined,
      quality: undefined,
      requestedGenerator,
      excluded: new Map(),
      fallback: undefined,
    };
    this.#sessions.set(session.id, session);
    this.#byOwner.set(owner, session);
    this.#showState(session);
    routing.on('live', (avatarPeer) => this.markLive(avatarPeer));
    owner.once('close', () => this.endSession(session.id));
    this.metrics.sessions.set(this.#sessions.size);
    this.#armStartTimer(session);
    if (session.assets) this.#assign(session);
    else {
      this.identityAssets!(identityId).then(
        (kinds) => {
          session.assets = kinds;
        },
        (err: unknown) => {
          this.logger.warn({ err, sessionId: session.id, identityId }, 'could not list the identity\'s assets; placing it by its photo');
          session.assets = PHOTO_ONLY;
        },
      ).finally(() => {
        if (this.#sessions.get(session.id) === session && !session.workerId) this.#assign(session);
      });
    }
    return session;
  }

  endSession(sessionId: string): void {
    const session = this.#sessions.get(sessionId);
    if (!session) return;
    this.#sessions.delete(sessionId);
    this.#byToken.delete(session.token);
    if (this.#byOwner.get(session.owner) === session) this.#byOwner.delete(session.owner);
    session.routing.close();
    this.#pending.delete(sessionId);
    clearTimeout(session.startTimer);
    session.startTimer = undefined;
    const worker = session.workerId ? this.#workers.get(session.workerId) : undefined;
    if (worker) {
      worker.sessions.delete(sessionId);
      worker.socket.emit('worker:release', { sessionId });
    }
    session.avatarPeer?.close();
    this.metrics.sessions.set(this.#sessions.size);
    // Its personal views and its audio delay end with it.
    if (session.personalViews.size > 0) this.metrics.personalViews.dec(session.personalViews.size);
    session.personalViews.clear();
    this.#audioDelayMs.delete(sessionId);
    this.#updateAudioDelay();
    this.#dropQualityMetric(session);
  }

  /** Records a session's quality (its worker's report, or nominal on a new worker) and tells the owner. */
  #setQuality(session: AvatarSession, quality: AvatarQuality | undefined): void {
    const before = session.quality;
    if (!before && !quality) return;
    this.#dropQualityMetric(session);
    session.quality = quality && quality.level > 0 ? quality : undefined;
    if (session.generator) this.metrics.qualityLevel.set({ session: session.id, generator: session.generator }, quality?.level ?? 0);
    const shown: AvatarQuality = quality ?? { ...before!, level: 0, size: before!.nominalSize, fps: before!.nominalFps, loadPct: 0 };
    this.safeEmit('avatarquality', session, shown);
  }

  #dropQualityMetric(session: AvatarSession): void {
    if (session.generator) this.metrics.qualityLevel.remove({ session: session.id, generator: session.generator });
  }

  /** The avatar session of a participant who joined as an avatar. */
  sessionOf(owner: Peer): AvatarSession | undefined {
    return this.#byOwner.get(owner);
  }

  #updateAudioDelay(): void {
    this.metrics.audioDelayMs.set(Math.max(0, ...this.#audioDelayMs.values()));
  }

  /** An avatar peer joining with `avatarSession`: returns the session it may render, or throws 401. */
  sessionForToken(token: string, roomId: string): AvatarSession {
    const session = this.#byToken.get(token);
    if (!session || session.room.id !== roomId || session.room.closed || session.owner.closed) {
      throw new AppError('UNAUTHORIZED', 'unknown or expired avatar session');
    }
    return session;
  }

  bindAvatarPeer(session: AvatarSession, peer: Peer): void {
    const previous = session.avatarPeer;
    session.avatarPeer = peer;
    previous?.close();
    const assignment = session.assignment;
    peer.once('close', () => {
      if (session.avatarPeer !== peer) return;
      session.avatarPeer = undefined;
      if (!this.#sessions.has(session.id) || session.gaveUp) return;
      session.lostAt ??= performance.now();
      this.#armStartTimer(session);
      this.#setState(session, 'recovering');
      // Its worker is still there (else #onWorkerGone moves it): the runner died. Left alone the
      // session would stay "recovering" for good (the worker thinks it still runs it).
      const worker = session.workerId ? this.#workers.get(session.workerId) : undefined;
      if (worker && session.assignment === assignment) this.#onRunnerDied(session, worker);
    });
  }

  /** The runner of `session` on `worker` died: release it there and assign it again, or give up. */
  #onRunnerDied(session: AvatarSession, worker: WorkerEntry): void {
    session.runnerDeaths++;
    const max = this.config.workers.maxRunnerRestarts;
    this.metrics.runnerDeaths.inc();
    if (session.runnerDeaths > max) {
      this.logger.error({ sessionId: session.id, ownerPeerId: session.owner.id, workerId: worker.id, runnerDeaths: session.runnerDeaths }, 'avatar runner keeps dying; giving up');
      this.#giveUp(session, `the avatar renderer stopped ${session.runnerDeaths} times in a row; the avatar was turned off`);
      return;
    }
    this.logger.warn({ sessionId: session.id, ownerPeerId: session.owner.id, workerId: worker.id, runnerDeaths: session.runnerDeaths, max }, 'avatar runner died; reassigning the session');
    this.#unassign(session);
    // another worker if there is one with room; the same one otherwise
    this.#assign(session, worker.id);
  }

  /** The avatar peer published its default video. */
  markLive(avatarPeer: Peer): void {
    for (const session of this.#sessions.values()) {
      if (session.avatarPeer !== avatarPeer) continue;
      if (session.gaveUp) continue;
      clearTimeout(session.startTimer);
      session.startTimer = undefined;
      session.runnerDeaths = 0;
      if (session.lostAt !== undefined) {
        this.metrics.recoverySeconds.observe((performance.now() - session.lostAt) / 1000);
        session.lostAt = undefined;
      } else {
        this.metrics.startSeconds.observe((performance.now() - session.startedAt) / 1000);
      }
      this.#setState(session, 'live');
    }
  }

  /**
   * Free view. "default" changes what everyone sees (owner only); "personal" gives `viewer` its own
   * rendering (shared with viewers of the same rounded view, at most maxPersonalViews per avatar).
   */
  setView(viewer: Peer, owner: Peer, scope: 'personal' | 'default', view: ViewOffsetDeg | null): { view: ViewOffsetDeg | null; shared: boolean } {
    const session = this.#byOwner.get(owner);
    if (!session) throw new AppError('NOT_FOUND', 'that peer is not an avatar');
    if (scope === 'default') {
      if (viewer !== owner) throw new AppError('FORBIDDEN', "only the avatar's owner can set its default view");
      session.defaultView = view ? clampViewDeg(view, this.#viewLimits(session)) : ZERO_VIEW;
      this.#showState(session);
      this.#pushViews(session);
      this.safeEmit('avatarstate', session);
      return { view: session.defaultView, shared: true };
    }
    if (view === null) {
      session.room.setSlot(viewer, owner, undefined);
      this.#gcViews(session);
      return { view: null, shared: true };
    }
    const clamped = clampViewDeg(view, this.#viewLimits(session));
    const wanted = viewKey(clamped);
    let slot = [...session.personalViews].find(([, v]) => viewKey(v) === wanted)?.[0];
    const shared = slot !== undefined;
    if (slot === undefined) {
      this.#gcViews(session, viewer);
      for (let i = 0; i < this.config.workers.maxPersonalViews && slot === undefined; i++) if (!session.personalViews.has(`slot-${i}`)) slot = `slot-${i}`;
      if (slot === undefined) {
        throw new AppError('AT_CAPACITY', `this avatar already renders ${this.config.workers.maxPersonalViews} personal views; try again later or use the shared view`);
      }
      session.personalViews.set(slot, clamped);
      this.metrics.personalViews.inc();
      this.#pushViews(session);
    }
    session.room.setSlot(viewer, owner, slot);
    this.#gcViews(session);
    return { view: clamped, shared };
  }

  /**
   * The owner stopped (or restarted) the camera driving its avatar. The worker idles by itself when
   * motion stops (neutral face, blinks); this tells everyone why.
   */
  setPaused(owner: Peer, paused: boolean): void {
    const session = this.#byOwner.get(owner);
    if (!session) throw new InvalidStateError('this peer has no avatar');
    if (session.paused === paused) return;
    session.paused = paused;
    this.#showState(session);
    this.logger.info({ sessionId: session.id, ownerPeerId: owner.id, paused }, 'avatar paused by its owner');
    this.safeEmit('avatarstate', session);
  }

  viewsOf(session: AvatarSession): WorkerAssign['views'] {
    return [{ key: 'default', view: session.defaultView }, ...[...session.personalViews].map(([key, view]) => ({ key, view }))];
  }

  /** Drop personal views no viewer uses any more (ignoring `except`'s current choice). */
  #gcViews(session: AvatarSession, except?: Peer): void {
    const used = new Set<string>();
    for (const p of session.room.participants) {
      if (p === except) continue;
      const k = session.room.slotOf(p, session.owner);
      if (k) used.add(k);
    }
    let changed = false;
    for (const key of [...session.personalViews.keys()]) {
      if (used.has(key)) continue;
      session.personalViews.delete(key);
      this.metrics.personalViews.dec();
      changed = true;
    }
    if (changed) this.#pushViews(session);
  }

  /** Free-view limits of the generator the session renders with (its worker registered them), degrees. */
  #viewLimits(session: AvatarSession): { yaw: number; pitch: number; roll: number } {
    const worker = session.workerId ? this.#workers.get(session.workerId) : undefined;
    return (session.generator && worker?.offers.get(session.generator)?.maxViewDeg) || DEFAULT_VIEW_LIMITS_DEG;
  }

  #pushViews(session: AvatarSession): void {
    const worker = session.workerId ? this.#workers.get(session.workerId) : undefined;
    worker?.socket.emit('worker:views', { sessionId: session.id, views: this.viewsOf(session) });
  }

  /** What every client shows in the owner's tile (PeerInfo.avatar). */
  #showState(session: AvatarSession): void {
    session.owner.attributes = {
      ...session.owner.attributes,
      avatar: {
        driver: session.driver,
        state: session.state,
        defaultView: session.defaultView,
        ...(session.reason !== undefined ? { reason: session.reason } : {}),
        ...(session.paused ? { paused: true } : {}),
        ...(session.generator ? { generator: session.generator } : {}),
        ...(session.fallback ? { fallback: session.fallback } : {}),
      },
    };
  }

  #setState(session: AvatarSession, state: AvatarSessionState, reason?: string): void {
    if (session.state === state) return;
    session.state = state;
    session.reason = reason;
    this.#showState(session);
    this.logger.info({ sessionId: session.id, ownerPeerId: session.owner.id, state }, 'avatar state');
    this.safeEmit('avatarstate', session);
  }

  /** (Re)starts the bound on how long the session may stay without a live renderer. */
  #armStartTimer(session: AvatarSession): void {
    clearTimeout(session.startTimer);
    const ms = this.config.workers.startTimeoutMs;
    session.startTimer = setTimeout(() => {
      session.startTimer = undefined;
      if (!this.#sessions.has(session.id) || session.state === 'live') return;
      const s = `${Math.round(ms / 100) / 10} s`;
      const reason = session.workerId
        ? `the avatar worker did not start the avatar within ${s}`
        : `no avatar worker is available (waited ${s}; ${this.#workers.size} registered)`;
      this.logger.error({ sessionId: session.id, ownerPeerId: session.owner.id, workerId: session.workerId, timeoutMs: ms }, 'avatar session timed out without a renderer');
      // Shown as failed, with the reason, but still waiting: a worker that registers (or finishes
      // starting it) later brings it live.
      this.#setState(session, 'failed', reason);
    }, ms);
    session.startTimer.unref?.();
  }

  /** Gives up on a session for good: no more assignment; the owner's tile shows `reason`. */
  #giveUp(session: AvatarSession, reason: string): void {
    session.gaveUp = true;
    clearTimeout(session.startTimer);
    session.startTimer = undefined;
    this.#pending.delete(session.id);
    if (session.workerId) this.#unassign(session);
    this.#setState(session, 'failed', reason);
    session.avatarPeer?.close();
  }

  #preferredGenerator(session: AvatarSession): GeneratorKind {
    return session.requestedGenerator ?? this.config.workers.generator;
  }

  /** Whether another generator than `generator` could render the session (the identity has its asset, not excluded). */
  #otherGenerators(session: AvatarSession, generator: GeneratorKind): boolean {
    return generatorsFor(session.assets ?? PHOTO_ONLY, this.#preferredGenerator(session), [...session.excluded.keys(), generator]).length > 0;
  }

  #exclude(session: AvatarSession, generator: GeneratorKind, code: AvatarFallback['code'], detail: string | undefined): void {
    const what = generator === 'gaussian' ? 'your personal avatar (Gaussian head)' : `the ${generator} avatar`;
    const why = code === 'GENERATOR_FAILED' ? `could not be started ${MAX_START_FAILURES} times` : 'could not be loaded';
    const message = `${what} ${why}${detail ? ` (${detail})` : ''}`.slice(0, 300);
    session.excluded.set(generator, { requested: generator, code, message });
    this.logger.warn({ sessionId: session.id, ownerPeerId: session.owner.id, generator, code, detail }, 'avatar generator excluded for this session; falling back');
  }

  /** Why the session does not render with the generator its owner asked for (undefined: it does, or nothing was asked). */
  #fallbackReason(session: AvatarSession, workers: readonly PlacementWorker[]): AvatarFallback | undefined {
    const requested = session.requestedGenerator;
    if (!requested || session.generator === requested) return undefined;
    const excluded = session.excluded.get(requested);
    if (excluded) return excluded;
    const asset = GENERATOR_ASSET[requested];
    if (!session.assets?.includes(asset)) {
      const what = requested === 'gaussian' ? 'no trained personal avatar (Gaussian head) yet' : `no ${asset} asset`;
      return { requested, code: 'ASSET_MISSING', message: `this avatar has ${what}` };
    }
    if (!anyWorkerRenders(requested, workers)) return { requested, code: 'GENERATOR_UNAVAILABLE', message: `no avatar worker can render the ${requested} generator` };
    return { requested, code: 'GENERATOR_BUSY', message: `the avatar workers that render the ${requested} generator are full` };
  }

  #assign(session: AvatarSession, avoid?: string): void {
    if (!this.#sessions.has(session.id) || session.gaveUp || !session.assets) return;
    const workers: PlacementWorker[] = [...this.#workers.values()].filter((w) => w.connected).map((w) => ({ id: w.id, capacity: w.capacity, offers: w.offers, sessionKinds: [...w.sessions].map((id) => this.#sessions.get(id)?.generator ?? 'mesh') }));
    const placement = placeSession(
      { assets: session.assets, preferred: this.#preferredGenerator(session), size: this.config.workers.size, exclude: [...session.excluded.keys()], ...(avoid ? { avoid } : {}) },
      workers,
    );
    const worker = placement ? this.#workers.get(placement.workerId) : undefined;
    if (!worker || !placement) {
      this.#pending.add(session.id);
      this.logger.warn({ sessionId: session.id, workers: this.#workers.size }, 'no avatar worker available; session waits');
      return;
    }
    this.#pending.delete(session.id);
    if (session.quality) this.#setQuality(session, undefined);
    this.#dropQualityMetric(session);
    session.workerId = worker.id;
    const before = JSON.stringify([session.generator, session.fallback]);
    session.generator = placement.generator;
    this.metrics.qualityLevel.set({ session: session.id, generator: placement.generator }, 0);
    session.fallback = this.#fallbackReason(session, workers);
    if (JSON.stringify([session.generator, session.fallback]) !== before) {
      if (session.fallback) this.logger.warn({ sessionId: session.id, ownerPeerId: session.owner.id, generator: session.generator, fallback: session.fallback }, 'avatar falls back to another generator');
      this.#showState(session);
      this.safeEmit('avatarstate', session);
    }
    worker.sessions.add(session.id);
    session.assignment++;
    // the token is bound to the worker: a new one when the session moves to another worker (the
    // previous one was revoked when it left; the same worker taking it back keeps its token)
    this.#byToken.delete(session.token);
    if (session.tokenWorkerId !== worker.id) {
      session.token = randomBytes(24).toString('base64url');
      session.tokenWorkerId = worker.id;
    }
    this.#byToken.set(session.token, session);
    const assign: WorkerAssign = {
      sessionId: session.id,
      token: session.token,
      roomId: session.room.id,
      ownerPeerId: session.owner.id,
      ownerDisplayName: session.owner.displayName,
      identityId: session.identityId,
      driver: session.driver,
      size: this.config.workers.size,
      fps: this.config.workers.fps,
      viewSlots: this.config.workers.maxPersonalViews,
      views: this.viewsOf(session),
      generator: placement.generator,
    };
    worker.socket.timeout(ASSIGN_ACK_TIMEOUT_MS).emit('worker:assign', assign, (err: Error | null, res: { ok?: boolean } | undefined) => {
      if (!err && res?.ok) return;
      if (session.workerId !== worker.id || !this.#sessions.has(session.id)) return;
      this.logger.warn({ sessionId: session.id, workerId: worker.id, err: err?.message }, 'worker did not accept the session');
      this.#unassign(session);
      this.#assign(session, worker.id);
    });
    this.logger.info({ sessionId: session.id, workerId: worker.id, ownerPeerId: session.owner.id, generator: placement.generator }, 'avatar session assigned');
  }

  #unassign(session: AvatarSession): void {
    const worker = session.workerId ? this.#workers.get(session.workerId) : undefined;
    worker?.sessions.delete(session.id);
    if (worker) worker.socket.emit('worker:release', { sessionId: session.id });
    session.workerId = undefined;
    // revoked: the next assignment (even to the same worker) gets a new token, so a runner of
    // this one that is still winding down cannot join as the new one
    this.#byToken.delete(session.token);
    session.tokenWorkerId = undefined;
  }

  #assignPending(): void {
    for (const id of [...this.#pending]) {
      const s = this.#sessions.get(id);
      if (s) this.#assign(s);
      else this.#pending.delete(id);
    }
  }

  #onWorkerGone(worker: WorkerEntry): void {
    clearTimeout(worker.graceTimer);
    worker.graceTimer = undefined;
    this.#workers.delete(worker.id);
    this.metrics.workers.set(this.#workers.size);
    this.logger.warn({ workerId: worker.id, sessions: worker.sessions.size }, 'avatar worker gone; moving its sessions');
    for (const id of worker.sessions) {
      this.#audioDelayMs.delete(id);
      const session = this.#sessions.get(id);
      if (!session) continue;
      session.workerId = undefined;
      // its runner there may still be alive: it must not join with the old token after the move
      this.#byToken.delete(session.token);
      if (session.gaveUp) continue;
      session.lostAt ??= performance.now();
      this.#armStartTimer(session);
      this.#setState(session, 'recovering');
      this.#assign(session);
    }
    worker.sessions.clear();
    this.#updateAudioDelay();
  }

  /**
   * The process of worker `workerId` exited (a local worker, its supervisor saw it): no reconnection
   * grace, its sessions move now (its control socket may not even have dropped yet).
   */
  workerExited(workerId: string): void {
    const worker = this.#workers.get(workerId);
    if (!worker) return;
    this.logger.warn({ workerId, connected: worker.connected }, 'avatar worker process exited');
    this.#onWorkerGone(worker);
  }

  /** Idempotent; ends every session (workers are told to release them). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of [...this.#sessions.keys()]) this.endSession(id);
    for (const w of this.#workers.values()) {
      clearTimeout(w.graceTimer);
      w.socket.disconnect(true);
    }
    this.#workers.clear();
    this.removeAllListeners();
  }
}
