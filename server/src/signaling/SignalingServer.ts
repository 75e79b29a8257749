/**
 * socket.io signaling. Every incoming event goes through one gate: known name, size limit, rate limit,
 * schema validation; failures are answered with an error acknowledgement (or a `server:error` event when
 * the sender gave no callback), and the socket and its room carry on. Sockets that keep abusing the
 * gate are disconnected.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Server as IoServer, Socket } from 'socket.io';
import {
  MAX_MESSAGE_BYTES,
  SIGNALING_PROTOCOL_VERSION,
  consumeAnswerSchema,
  errorBody,
  isRequestName,
  parseRequest,
  type Ack,
  type ErrorBody,
  type RequestName,
  type RequestOf,
  type ResponseMap,
  type ServerToClientEvents,
} from '../../../protocol/src/signaling.ts';
import { AppError, toErrorBody } from '../errors.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { RoomManager } from '../rooms/RoomManager.ts';
import type { Room } from '../rooms/Room.ts';
import { producerInfo, type Peer } from '../rooms/Peer.ts';
import { RateLimiter } from './RateLimiter.ts';
import type { AvatarService } from '../avatar/service/AvatarService.ts';
import type { AccessTokens } from '../auth/AccessTokens.ts';
import { hasGrant, type AccessTokenClaims, type GrantName } from '../../../protocol/src/accessToken.ts';
import { offeredSections } from '../sfu/sdp.ts';
import { verifyWorkerCredential } from '../auth/workerCredentials.ts';
import { RoomChat } from '../chat/RoomChat.ts';
import { ActiveSpeaker } from '../speaker/ActiveSpeaker.ts';

/** How long a client has to answer a receive-transport offer. */
/** How long the server waits for a client's answer to consume:offer. */
export const OFFER_ANSWER_TIMEOUT_MS = 10_000;

interface SocketState {
  peer?: Peer;
  room?: Room;
  joining?: boolean;
  /** The verified room access token of the join (auth on; not for avatar workers). */
  claims?: AccessTokenClaims;
  /** Pushes a refreshed token before `claims` expire. */
  refreshTimer?: NodeJS.Timeout;
}

/**
 * A participant that can resume after a lost connection: its resume key, and while its connection is
 * lost, the grace timer that removes it.
 */
interface Resumable {
  peer: Peer;
  room: Room;
  key: string;
  claims?: AccessTokenClaims;
  socket?: Socket;
  state?: SocketState;
  graceTimer?: NodeJS.Timeout;
  /** Its transports that are connected but silent (rtc.iceInactiveMs): it looks "reconnecting" meanwhile. */
  inactive: Set<object>;
}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

type Handler<N extends RequestName> = (socket: Socket, state: SocketState, req: RequestOf<N>) => Promise<ResponseMap[N]>;

export class SignalingServer {
  readonly #sockets = new Map<string, Socket>(); // peerId → socket
  readonly #roomsWithListeners = new WeakSet<Room>();
  readonly #chats = new WeakMap<Room, RoomChat>();
  readonly #speakers = new WeakMap<Room, ActiveSpeaker>();
  readonly #handlers: { [N in RequestName]: Handler<N> };
  /** participant peerId → how it resumes */
  readonly #resumable = new Map<string, Resumable>();
  #closing = false;
  /** Set once the server shuts down: what `server:shutdown` said (new joins are refused). */
  #draining: { reason: string; reconnectInMs?: number } | undefined;

  constructor(
    private readonly ios: IoServer[],
    private readonly rooms: RoomManager,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly avatars?: AvatarIntegration,
    /** Set when AUTH_SECRET is: browser joins need a room access token (avatar workers use their session token). */
    private readonly accessTokens?: AccessTokens,
  ) {
    avatars?.service.on('avatarstate', (session) => {
      const avatar = session.owner.info().avatar;
      if (!avatar) return;
      for (const p of session.room.participants) this.#sockets.get(p.id)?.emit('avatar:state', { peerId: session.owner.id, avatar });
    });
    avatars?.service.on('avatarquality', (session, quality) => {
      this.#sockets.get(session.owner.id)?.emit('avatar:quality', { peerId: session.owner.id, quality });
    });
    this.#handlers = {
      join: (s, st, r) => this.#join(s, st, r),
      leave: async (s, st) => {
        this.#leave(s, st);
        return {};
      },
      restartTransports: async (_s, st) => {
        const peer = this.#requirePeer(st);
        const rec = this.#resumable.get(peer.id);
        if (!rec) throw new AppError('INVALID_STATE', 'only participants restart their transports');
        await peer.restartTransports();
        this.#reconnected(rec);
        this.#offerExisting(peer);
        return {};
      },
      publish: async (_s, st, r) => {
        const peer = this.#requirePeer(st);
        const sections = offeredSections(r.offer.sdp);
        if (sections.media > 0) this.#requireGrant(st, 'canPublish', 'publish a camera or microphone');
        if (sections.data > 0) this.#requireGrant(st, 'canPublishData', 'publish data channels');
        // Track view keys label an avatar peer's renderings: they are its producers' presentation slots.
        return peer.publish(r.offer, peer.role === 'delegate' ? r.trackViews : undefined, r.trackSources);
      },
      closeProducer: async (_s, st, r) => {
        const peer = this.#requirePeer(st);
        this.#requireGrant(st, 'canPublish', 'close a producer');
        peer.closeProducer(r.producerId);
        return {};
      },
      setProducerPaused: async (_s, st, r) => {
        const peer = this.#requirePeer(st);
        this.#requireGrant(st, 'canPublish', 'mute or unmute a producer');
        return peer.setProducerPaused(r.kind, r.paused);
      },
      requestKeyFrame: async (_s, st, r) => {
        this.#requireGrant(st, 'canSubscribe', 'request keyframes');
        const consumer = this.#requirePeer(st).recvTransport.consumers.get(r.consumerId);
        if (!consumer) throw new AppError('NOT_FOUND', `unknown consumer ${r.consumerId}`);
        consumer.requestKeyFrame('client');
        return {};
      },
      setAvatarView: async (_s, st, r) => {
        const viewer = this.#requirePeer(st);
        const owner = st.room?.peers.get(r.peerId);
        if (!this.avatars || !owner || owner.role !== 'participant' || !this.avatars.service.sessionOf(owner)) throw new AppError('NOT_FOUND', `peer ${r.peerId} is not an avatar in this room`);
        if (viewer.role !== 'participant') throw new AppError('FORBIDDEN', 'avatar peers cannot set views');
        if (r.scope === 'personal') this.#requireGrant(st, 'canSubscribe', 'choose a personal view');
        const result = this.avatars.service.setView(viewer, owner, r.scope, r.view);
        return { peerId: owner.id, scope: r.scope, view: result.view, shared: result.shared };
      },
      setAvatarPaused: async (_s, st, r) => {
        const owner = this.#requirePeer(st);
        if (!this.avatars || owner.role !== 'participant' || !this.avatars.service.sessionOf(owner)) throw new AppError('INVALID_STATE', 'only an avatar owner can pause its avatar (you joined without one)');
        this.avatars.service.setPaused(owner, r.paused);
        return { paused: r.paused };
      },
      sendChatMessage: async (_s, st, r) => {
        const sender = this.#requirePeer(st);
        if (sender.role !== 'participant' || !st.room) throw new AppError('FORBIDDEN', 'only participants can chat');
        this.#requireGrant(st, 'canPublishData', 'send chat messages');
        const message = this.#chatOf(st.room).post(sender, r.text);
        for (const p of st.room.participants) if (p !== sender) this.#sockets.get(p.id)?.emit('chat:message', message);
        return message;
      },
    };
    for (const io of ios) io.on('connection', (socket) => this.#onConnection(socket));
  }

  #onConnection(socket: Socket): void {
    const auth = socket.handshake.auth as { workerToken?: unknown } | undefined;
    if (auth && auth.workerToken !== undefined) {
      const worker = verifyWorkerCredential(auth.workerToken, this.config.workers.token);
      if (this.avatars && worker) {
        // a per-worker credential binds the socket to its worker id
        this.avatars.service.attachWorker(socket, worker.workerId);
      } else {
        this.logger.warn({ socketId: socket.id }, 'worker connection with a bad token refused');
        socket.emit('server:error', errorBody('UNAUTHORIZED', 'bad worker token'));
        socket.disconnect(true);
      }
      return;
    }
    if (this.#draining) socket.emit('server:shutdown', this.#draining);
    const state: SocketState = {};
    const limiter = new RateLimiter(this.config.limits.messagesPerSecond, this.config.limits.messageBurst);
    const log = this.logger.child({ socketId: socket.id });
    log.debug('socket connected');

    let kicked = false;
    socket.onAny((event: unknown, ...args: unknown[]) => {
      if (kicked || socket.disconnected) return;
      const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (r: Ack<unknown>) => void) : undefined;
      const name = typeof event === 'string' ? event.slice(0, 64) : '?';
      const fail = (error: ErrorBody, outcome: string): void => {
        this.metrics.signalingMessages.inc({ event: isRequestName(name) ? name : 'unknown', outcome });
        if (ack) ack({ ok: false, error });
        else socket.emit('server:error', error);
        const recent = limiter.reject();
        if (recent >= this.config.limits.abuseDisconnectThreshold && !kicked) {
          kicked = true;
          log.warn({ recent }, 'disconnecting abusive socket');
          this.metrics.signalingDisconnects.inc();
          socket.disconnect(true);
        }
      };
      if (!limiter.take()) return fail(errorBody('RATE_LIMITED', 'too many messages'), 'rate_limited');
      if (!isRequestName(name)) return fail(errorBody('UNKNOWN_EVENT', `unknown event "${name}"`), 'unknown');
      if (approximateSize(args[0]) > MAX_MESSAGE_BYTES) return fail(errorBody('PAYLOAD_TOO_LARGE', `message over ${MAX_MESSAGE_BYTES} bytes`), 'too_large');
      const parsed = parseRequest(name, args[0]);
      if (!parsed.ok) return fail(parsed.error, 'invalid');
      const handler = this.#handlers[name] as Handler<typeof name>;
      handler(socket, state, parsed.value as never).then(
        (data) => {
          this.metrics.signalingMessages.inc({ event: name, outcome: 'ok' });
          ack?.({ ok: true, data });
        },
        (err: unknown) => {
          const body = toErrorBody(err);
          if (body.status >= 500) log.error({ err, event: name }, 'request failed');
          else log.debug({ event: name, error: body }, 'request refused');
          this.metrics.signalingMessages.inc({ event: name, outcome: 'error' });
          if (ack) ack({ ok: false, error: body });
          else socket.emit('server:error', body);
        },
      );
    });

    socket.on('disconnect', (reason) => {
      log.debug({ reason }, 'socket disconnected');
      const rec = state.peer ? this.#resumable.get(state.peer.id) : undefined;
      // A socket the server disconnected for abuse does not get to come back as the same peer.
      if (rec && rec.socket === socket && this.config.limits.reconnectGraceMs > 0 && !this.#closing && !kicked) {
        // Not a leave: the participant may come back (join with resume) within the grace period.
        this.#detach(socket, state);
        rec.socket = undefined;
        rec.state = undefined;
        this.#suspend(rec, `socket ${String(reason)}`);
        return;
      }
      this.#leave(socket, state);
    });
  }

  /** With auth on, a participant's token must carry `grant` (explicitly); avatar workers' peers act on their session. */
  #requireGrant(state: SocketState, grant: GrantName, what: string): void {
    if (!this.accessTokens || state.peer?.role === 'delegate') return;
    if (!state.claims || !hasGrant(state.claims, grant)) throw new AppError('GRANT_MISSING', `your room access token has no ${grant} grant: it cannot ${what}`);
  }

  #requirePeer(state: SocketState): Peer {
    if (!state.peer || state.peer.closed) throw new AppError('NOT_JOINED', 'join a room first');
    return state.peer;
  }

  async #join(socket: Socket, state: SocketState, req: RequestOf<'join'>): Promise<ResponseMap['join']> {
    if (this.#draining || this.#closing) throw new AppError('SHUTTING_DOWN', `the server is shutting down (${this.#draining?.reason ?? 'closing'}); join again when it is back`);
    if (req.protocolVersion !== SIGNALING_PROTOCOL_VERSION) {
      throw new AppError('UNSUPPORTED_VERSION', `protocol version ${req.protocolVersion} not supported (server speaks ${SIGNALING_PROTOCOL_VERSION})`);
    }
    if ((state.peer && !state.peer.closed) || state.joining) throw new AppError('ALREADY_JOINED', 'already in a room; leave first');
    state.joining = true;
    try {
      if (req.resume) return await this.#resume(socket, state, req);
      if (req.avatar && req.avatarSession) throw new AppError('BAD_REQUEST', 'avatar and avatarSession are exclusive');
      // Every check comes before the room is touched: a refused join leaves nothing behind.
      let claims: AccessTokenClaims | undefined;
      if (this.accessTokens && !req.avatarSession) {
        if (req.token === undefined) throw new AppError('UNAUTHORIZED', 'this server needs a room access token to join (?token=… in the page URL, or the join form)');
        claims = await this.accessTokens.verify(req.token, { room: req.roomId });
        if (req.avatar && !hasGrant(claims, 'canUseAvatar')) throw new AppError('GRANT_MISSING', 'your room access token has no canUseAvatar grant: join without an avatar');
      }
      if (req.avatar) {
        if (!this.avatars) throw new AppError('AVATAR_UNAVAILABLE', 'avatars are not enabled on this server');
        if (!(await this.avatars.identityExists(req.avatar.identityId))) throw new AppError('NOT_FOUND', `unknown identity ${req.avatar.identityId}: enroll a photo first`);
        // only its owner wears an identity (the face is theirs)
        await this.avatars.verifyOwner(req.avatar.identityId, req.avatar.ownerKey).catch((err: unknown) => {
          if (err instanceof AppError && err.code === 'UNAUTHORIZED') throw new AppError('UNAUTHORIZED', 'joining as an avatar needs the identity\'s owner key (avatar.ownerKey, given when the photo was enrolled)');
          throw err;
        });
        this.avatars.identityUsed?.(req.avatar.identityId);
      }
      // With a token, the name others see is the token's.
      const displayName = claims?.name ?? req.displayName;
      let peer: Peer;
      let room: Room;
      if (req.avatarSession) {
        if (!this.avatars) throw new AppError('UNAUTHORIZED', 'avatars are not enabled on this server');
        const session = this.avatars.service.sessionForToken(req.avatarSession, req.roomId);
        room = session.room;
        // The avatar worker's peer acts for the owner: a delegate whose media the session presents as the owner's.
        peer = await room.join(req.displayName, { role: 'delegate', principal: session.owner });
        this.avatars.service.bindAvatarPeer(session, peer);
      } else {
        room = await this.rooms.getOrCreate(req.roomId);
        await this.#listenToRoom(room);
        peer = await room.join(displayName, { subscribe: claims ? hasGrant(claims, 'canSubscribe') : true });
        if (req.avatar) this.avatars!.service.startSession(room, peer, req.avatar.identityId, req.avatar.driver, req.avatar.generator);
      }
      if (!socket.connected) {
        peer.close();
        throw new AppError('CLIENT_CLOSED_REQUEST', 'socket disconnected during join');
      }
      this.#bind(socket, state, peer, room, claims);
      if (claims) this.logger.info({ roomId: room.id, peerId: peer.id, participant: claims.sub }, 'joined with a room access token');
      let resumeKey: string | undefined;
      if (peer.role === 'participant') {
        resumeKey = randomBytes(24).toString('base64url');
        const rec: Resumable = { peer, room, key: resumeKey, socket, state, inactive: new Set(), ...(claims ? { claims } : {}) };
        this.#resumable.set(peer.id, rec);
        peer.on('transportfailed', (_t, reason) => this.#onTransportFailed(rec, reason));
        peer.on('transportactivity', (t, active) => this.#onActivity(rec, t, active));
        peer.on('transportsrestarted', () => rec.inactive.clear());
        peer.once('close', () => {
          clearTimeout(rec.graceTimer);
          if (this.#resumable.get(peer.id) === rec) this.#resumable.delete(peer.id);
        });
      }
      const peers = room.participants.filter((p) => p !== peer).map((p) => p.info());
      this.#offerExisting(peer);
      const chatHistory = peer.role === 'participant' ? this.#chatOf(room).history : [];
      return { peerId: peer.id, roomId: room.id, peers, chatHistory, activeSpeakerPeerId: this.#speakers.get(room)?.peerId ?? null, ...(resumeKey ? { resumeKey } : {}) };
    } finally {
      state.joining = false;
    }
  }

  /** Offer the existing producers right after the (join or restart) acknowledgement reaches the client. */
  #offerExisting(peer: Peer): void {
    setImmediate(() => {
      if (peer.closed) return;
      if (peer.consumers.length > 0 || peer.recvTransport.dataConsumers.size > 0) peer.renegotiate();
    });
  }

  /** `socket` speaks for `peer` from now on (a join, or a resume on a new socket). */
  #bind(socket: Socket, state: SocketState, peer: Peer, room: Room, claims: AccessTokenClaims | undefined): void {
    state.peer = peer;
    state.room = room;
    if (claims) {
      state.claims = claims;
      this.#scheduleTokenRefresh(socket, state, peer);
    }
    this.#sockets.set(peer.id, socket);
    peer.setOfferSignal(async (offer, consumers, dataConsumers) => {
      const reply = await emitOfferAndWait(socket, peer, { offer, consumers, dataConsumers });
      const parsed = consumeAnswerSchema.safeParse(reply);
      if (!parsed.success) throw new Error('client sent an invalid answer');
      return parsed.data.answer;
    });
  }

  /**
   * join with `resume`: the same participant on a new socket (its old one dropped, or is about to).
   * Only its resume key resumes it; its transports are replaced, so it publishes again.
   */
  async #resume(socket: Socket, state: SocketState, req: RequestOf<'join'>): Promise<ResponseMap['join']> {
    const resume = req.resume!;
    if (req.avatar || req.avatarSession) throw new AppError('BAD_REQUEST', 'resume cannot be combined with avatar or avatarSession (the resumed peer keeps its own)');
    const rec = this.#resumable.get(resume.peerId);
    if (!rec || rec.peer.closed) throw new AppError('RESUME_EXPIRED', `peer ${resume.peerId} is no longer in a room (its reconnect grace period ended, or the server restarted): join again`);
    if (!sameKey(rec.key, resume.resumeKey) || rec.room.id !== req.roomId) throw new AppError('RESUME_REFUSED', 'wrong resume key for this peer and room');
    const peer = rec.peer;
    // The previous socket, if the server has not noticed yet that it is gone, no longer speaks for it.
    const old = rec.socket;
    if (old && old !== socket) {
      if (rec.state) this.#detach(old, rec.state);
      old.disconnect(true);
    }
    await peer.restartTransports();
    if (!socket.connected || peer.closed) throw new AppError('CLIENT_CLOSED_REQUEST', 'socket disconnected during resume');
    this.#bind(socket, state, peer, rec.room, rec.claims);
    rec.socket = socket;
    rec.state = state;
    this.#reconnected(rec);
    peer.logger.info('participant resumed');
    this.#offerExisting(peer);
    const peers = rec.room.participants.filter((p) => p !== peer).map((p) => p.info());
    // a resumed participant's page still shows the chat it had; the history covers what it missed while away
    return { peerId: peer.id, roomId: rec.room.id, peers, chatHistory: this.#chatOf(rec.room).history, activeSpeakerPeerId: this.#speakers.get(rec.room)?.peerId ?? null, resumeKey: rec.key, resumed: true };
  }

  /**
   * The participant's connection is lost: others see it "reconnecting"; unless it resumes (or restarts
   * its transports) within the grace period, it is removed. Without a grace period it leaves now.
   */
  #suspend(rec: Resumable, why: string): void {
    const peer = rec.peer;
    if (peer.closed) return;
    const graceMs = this.config.limits.reconnectGraceMs;
    if (graceMs <= 0 || this.#closing) {
      peer.close();
      return;
    }
    if (rec.graceTimer) return;
    peer.logger.info({ why, graceMs }, 'participant reconnecting');
    peer.attributes.connection = 'reconnecting';
    this.#toOthers(rec.room, peer, 'peer:connection', { peerId: peer.id, state: 'reconnecting' });
    rec.graceTimer = setTimeout(() => {
      rec.graceTimer = undefined;
      if (peer.closed) return;
      peer.logger.info({ why, graceMs }, 'participant did not reconnect within the grace period: removed');
      peer.close();
    }, graceMs);
    rec.graceTimer.unref?.();
  }

  /** Media went quiet (a network cut?): others see "reconnecting" until it flows again; nothing is removed for it. */
  #onActivity(rec: Resumable, transport: object, active: boolean): void {
    const peer = rec.peer;
    if (peer.closed) return;
    const wasQuiet = rec.inactive.size > 0;
    if (active) rec.inactive.delete(transport);
    else rec.inactive.add(transport);
    if (rec.graceTimer) return; // the grace period decides
    if (!wasQuiet && rec.inactive.size > 0 && peer.attributes.connection === undefined) {
      peer.attributes.connection = 'reconnecting';
      this.#toOthers(rec.room, peer, 'peer:connection', { peerId: peer.id, state: 'reconnecting' });
    } else if (wasQuiet && rec.inactive.size === 0 && rec.socket) {
      this.#reconnected(rec);
    }
  }

  #reconnected(rec: Resumable): void {
    if (!rec.graceTimer && rec.peer.attributes.connection === undefined) return;
    clearTimeout(rec.graceTimer);
    rec.graceTimer = undefined;
    delete rec.peer.attributes.connection;
    this.#toOthers(rec.room, rec.peer, 'peer:connection', { peerId: rec.peer.id, state: 'connected' });
  }

  /** A transport of the participant died: close it (fresh ones replace both) and wait for the client within the grace period. */
  #onTransportFailed(rec: Resumable, reason: string): void {
    const peer = rec.peer;
    if (peer.closed) return;
    peer.logger.warn({ reason }, 'transport dead');
    this.#suspend(rec, reason);
    if (peer.closed) return;
    peer.restartTransports().catch((err: unknown) => {
      if (!peer.closed) peer.logger.warn({ err: (err as Error)?.message }, 'could not replace dead transports');
    });
  }

  #toOthers<E extends keyof ServerToClientEvents>(room: Room, except: Peer, event: E, payload: Parameters<ServerToClientEvents[E]>[0]): void {
    for (const p of room.participants) {
      if (p === except) continue;
      (this.#sockets.get(p.id) as { emit(e: string, x: unknown): boolean } | undefined)?.emit(event, payload);
    }
  }

  /**
   * Pushes `token:refresh` before the join's token expires (refreshBeforeMs ahead, or at half its TTL
   * when that is shorter), again for every refreshed token, until the peer leaves.
   */
  #scheduleTokenRefresh(socket: Socket, state: SocketState, peer: Peer): void {
    const claims = state.claims;
    if (!claims || !this.accessTokens) return;
    const ttlMs = (claims.exp - claims.iat) * 1000;
    const lead = Math.min(this.config.auth.refreshBeforeMs, ttlMs / 2);
    const delay = Math.max(0, claims.exp * 1000 - lead - Date.now());
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(() => {
      state.refreshTimer = undefined;
      if (state.peer !== peer || peer.closed || !socket.connected || !this.accessTokens) return;
      this.accessTokens.refresh(claims).then(
        (fresh) => {
          if (state.peer !== peer || peer.closed) return;
          state.claims = fresh.claims;
          socket.emit('token:refresh', { token: fresh.token, expiresAt: fresh.expiresAt });
          this.#scheduleTokenRefresh(socket, state, peer);
        },
        (err: unknown) => peer.logger.warn({ err }, 'could not refresh the room access token'),
      );
    }, delay);
    state.refreshTimer.unref?.();
  }

  /** `socket` no longer speaks for its peer (which stays). */
  #detach(socket: Socket, state: SocketState): void {
    const peer = state.peer;
    state.peer = undefined;
    state.room = undefined;
    state.claims = undefined;
    clearTimeout(state.refreshTimer);
    state.refreshTimer = undefined;
    if (peer && this.#sockets.get(peer.id) === socket) this.#sockets.delete(peer.id);
  }

  /** `socket` leaves: it no longer speaks for its peer, and the peer closes. */
  #leave(socket: Socket, state: SocketState): void {
    const peer = state.peer;
    this.#detach(socket, state);
    peer?.close();
  }

  async #listenToRoom(room: Room): Promise<void> {
    if (this.#roomsWithListeners.has(room)) return;
    this.#roomsWithListeners.add(room);
    const toOthers = <E extends keyof ServerToClientEvents>(except: Peer, event: E, payload: Parameters<ServerToClientEvents[E]>[0]): void => {
      for (const p of room.participants) {
        if (p === except) continue;
        this.#sockets.get(p.id)?.emit(event, payload);
      }
    };
    room.on('peerjoined', (peer) => toOthers(peer, 'peer:joined', peer.info()));
    room.on('peerleft', (peer) => {
      this.#chats.get(room)?.forget(peer.id);
      toOthers(peer, 'peer:left', { peerId: peer.id });
    });
    room.on('producerstate', (peer, producer) => toOthers(peer, 'producer:state', { peerId: peer.id, producer: producerInfo(producer) }));
    room.on('producerclosed', (peer, producer) => toOthers(peer, 'producer:closed', { peerId: peer.id, producerId: producer.id }));
    const speaker = await ActiveSpeaker.create(room, { intervalMs: this.config.activeSpeaker.intervalMs, threshold: this.config.activeSpeaker.thresholdDbov });
    if (room.closed) return speaker.close();
    this.#speakers.set(room, speaker);
    speaker.on('change', (peerId) => {
      for (const p of room.participants) this.#sockets.get(p.id)?.emit('room:activespeaker', { peerId });
    });
  }

  /** The room's chat (made on first use; it goes with the room). */
  #chatOf(room: Room): RoomChat {
    let chat = this.#chats.get(room);
    if (!chat) this.#chats.set(room, (chat = new RoomChat(this.config.chat)));
    return chat;
  }

  /**
   * The server is shutting down: every connected client is told (`server:shutdown`) and joins are
   * refused with SHUTTING_DOWN from now on; the rooms stay until close(). Idempotent.
   */
  drain(reason: string, reconnectInMs?: number): void {
    if (this.#draining || this.#closing) return;
    this.#draining = { reason, ...(reconnectInMs !== undefined ? { reconnectInMs } : {}) };
    this.logger.info({ reason, reconnectInMs, peers: this.#sockets.size }, 'signaling draining: joins refused, clients told');
    for (const io of this.ios) io.emit('server:shutdown', this.#draining);
  }

  /** Read-only counts for leak checks and soak runs: bound sockets, resumable participants, running grace timers. */
  stats(): SignalingStats {
    let graceTimers = 0;
    for (const rec of this.#resumable.values()) if (rec.graceTimer) graceTimers++;
    return { sockets: this.#sockets.size, resumable: this.#resumable.size, graceTimers };
  }

  close(): void {
    this.#closing = true;
    for (const rec of this.#resumable.values()) {
      clearTimeout(rec.graceTimer);
      rec.peer.close();
    }
    this.#resumable.clear();
    for (const io of this.ios) io.disconnectSockets(true);
    this.#sockets.clear();
  }
}

export interface SignalingStats {
  /** Peers a signaling socket speaks for. */
  sockets: number;
  /** Participants that can resume (joined, or within their grace period). */
  resumable: number;
  /** Participants waiting in their reconnect grace period. */
  graceTimers: number;
}

/** What the signaling layer needs from the avatar subsystem. */
export interface AvatarIntegration {
  service: AvatarService;
  identityExists(identityId: string): Promise<boolean>;
  /** Resolves when `ownerKey` is the identity's owner key; rejects with UNAUTHORIZED / FORBIDDEN otherwise. */
  verifyOwner(identityId: string, ownerKey: string | undefined): Promise<void>;
  /** An avatar session starts with this identity (it does not expire while used). */
  identityUsed?(identityId: string): void;
}

/**
 * Send a receive-transport offer and wait for the client's answer, giving up after
 * OFFER_ANSWER_TIMEOUT_MS or as soon as the socket disconnects or the peer closes (socket.io's own
 * ack timeout would keep its timer, and the negotiation, alive for the full timeout after a disconnect).
 */
export function emitOfferAndWait(socket: Socket, peer: Peer, payload: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (!socket.connected || peer.closed) return reject(new Error('peer gone before the offer was sent'));
    const done = (): void => {
      clearTimeout(timer);
      socket.off('disconnect', onGone);
      peer.off('close', onGone);
    };
    const onGone = (): void => {
      done();
      reject(new Error('peer gone while an offer was pending'));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no answer to the offer within ${OFFER_ANSWER_TIMEOUT_MS} ms`));
    }, OFFER_ANSWER_TIMEOUT_MS);
    socket.once('disconnect', onGone);
    peer.once('close', onGone);
    socket.emit('consume:offer', payload, (answer: unknown) => {
      done();
      resolve(answer);
    });
  });
}

/** Serialized size of a payload, counting binary attachments by their byte length. */
export function approximateSize(value: unknown): number {
  let size = 0;
  try {
    // `this[k]` is the value before toJSON(): a real Buffer (whose toJSON() gives {type:'Buffer',data}) is
    // counted by its bytes, while a client's plain object that only looks like one is counted as JSON.
    const json = JSON.stringify(value, function (this: Record<string, unknown>, k: string, v: unknown) {
      const raw = this[k];
      if (raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) {
        size += raw.byteLength;
        return null;
      }
      return v;
    });
    size += json === undefined ? 0 : Buffer.byteLength(json);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
  return size;
}
