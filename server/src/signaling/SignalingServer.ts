/**
 * socket.io signaling. Every incoming event goes through one gate: known name, size limit, rate limit,
 * schema validation; failures are answered with an error acknowledgement (or a `server:error` event when
 * the sender gave no callback), and the socket and its room carry on. Sockets that keep abusing the
 * gate are disconnected.
 */
import type { Server as IoServer, Socket } from 'socket.io';
import {
  MAX_MESSAGE_BYTES,
  SIGNALING_PROTOCOL_VERSION,
  consumeAnswerSchema,
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

/** How long a client has to answer a receive-transport offer. */
const OFFER_ANSWER_TIMEOUT_MS = 10_000;

interface SocketState {
  peer?: Peer;
  room?: Room;
  joining?: boolean;
}

type Handler<N extends RequestName> = (socket: Socket, state: SocketState, req: RequestOf<N>) => Promise<ResponseMap[N]>;

export class SignalingServer {
  readonly #sockets = new Map<string, Socket>(); // peerId → socket
  readonly #roomsWithListeners = new WeakSet<Room>();
  readonly #handlers: { [N in RequestName]: Handler<N> };

  constructor(
    private readonly ios: IoServer[],
    private readonly rooms: RoomManager,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    this.#handlers = {
      join: (s, st, r) => this.#join(s, st, r),
      leave: async (s, st) => {
        this.#leave(s, st);
        return {};
      },
      publish: async (_s, st, r) => this.#requirePeer(st).publish(r.offer),
      setProducerPaused: async (_s, st, r) => this.#requirePeer(st).setProducerPaused(r.kind, r.paused),
      requestKeyFrame: async (_s, st, r) => {
        const consumer = this.#requirePeer(st).recvTransport.consumers.get(r.consumerId);
        if (!consumer) throw new AppError('BAD_REQUEST', `unknown consumer ${r.consumerId}`, 404);
        consumer.requestKeyFrame('client');
        return {};
      },
    };
    for (const io of ios) io.on('connection', (socket) => this.#onConnection(socket));
  }

  #onConnection(socket: Socket): void {
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
      if (!limiter.take()) return fail({ code: 'RATE_LIMITED', message: 'too many messages', status: 429 }, 'rate_limited');
      if (!isRequestName(name)) return fail({ code: 'UNKNOWN_EVENT', message: `unknown event "${name}"`, status: 404 }, 'unknown');
      if (approximateSize(args[0]) > MAX_MESSAGE_BYTES) return fail({ code: 'PAYLOAD_TOO_LARGE', message: `message over ${MAX_MESSAGE_BYTES} bytes`, status: 413 }, 'too_large');
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
      this.#leave(socket, state);
    });
  }

  #requirePeer(state: SocketState): Peer {
    if (!state.peer || state.peer.closed) throw new AppError('NOT_JOINED', 'join a room first', 409);
    return state.peer;
  }

  async #join(socket: Socket, state: SocketState, req: RequestOf<'join'>): Promise<ResponseMap['join']> {
    if (req.protocolVersion !== SIGNALING_PROTOCOL_VERSION) {
      throw new AppError('UNSUPPORTED_VERSION', `protocol version ${req.protocolVersion} not supported (server speaks ${SIGNALING_PROTOCOL_VERSION})`, 426);
    }
    if ((state.peer && !state.peer.closed) || state.joining) throw new AppError('ALREADY_JOINED', 'already in a room; leave first', 409);
    state.joining = true;
    try {
      const room = await this.rooms.getOrCreate(req.roomId);
      this.#listenToRoom(room);
      const peer = await room.join(req.displayName);
      if (!socket.connected) {
        peer.close();
        throw new AppError('BAD_REQUEST', 'socket disconnected during join', 499);
      }
      state.peer = peer;
      state.room = room;
      this.#sockets.set(peer.id, socket);
      peer.setOfferSignal(async (offer, consumers) => {
        const reply: unknown = await socket.timeout(OFFER_ANSWER_TIMEOUT_MS).emitWithAck('consume:offer', { offer, consumers });
        const parsed = consumeAnswerSchema.safeParse(reply);
        if (!parsed.success) throw new Error('client sent an invalid answer');
        return parsed.data.answer;
      });
      const peers = [...room.peers.values()].filter((p) => p !== peer).map((p) => p.info());
      // Offer the existing producers right after the join acknowledgement reaches the client.
      setImmediate(() => {
        if (peer.consumers.length > 0) peer.renegotiate();
      });
      return { peerId: peer.id, roomId: room.id, peers };
    } finally {
      state.joining = false;
    }
  }

  #leave(_socket: Socket, state: SocketState): void {
    const peer = state.peer;
    state.peer = undefined;
    state.room = undefined;
    if (!peer) return;
    if (this.#sockets.get(peer.id) === _socket) this.#sockets.delete(peer.id);
    peer.close();
  }

  #listenToRoom(room: Room): void {
    if (this.#roomsWithListeners.has(room)) return;
    this.#roomsWithListeners.add(room);
    const toOthers = <E extends keyof ServerToClientEvents>(except: Peer, event: E, payload: Parameters<ServerToClientEvents[E]>[0]): void => {
      for (const p of room.peers.values()) {
        if (p === except) continue;
        this.#sockets.get(p.id)?.emit(event, payload);
      }
    };
    room.on('peerjoined', (peer) => toOthers(peer, 'peer:joined', peer.info()));
    room.on('peerleft', (peer) => toOthers(peer, 'peer:left', { peerId: peer.id }));
    room.on('producerstate', (peer, producer) => toOthers(peer, 'producer:state', { peerId: peer.id, producer: producerInfo(producer) }));
    room.on('producerclosed', (peer, producer) => toOthers(peer, 'producer:closed', { peerId: peer.id, producerId: producer.id }));
  }

  close(): void {
    for (const io of this.ios) io.disconnectSockets(true);
    this.#sockets.clear();
  }
}

/** Serialized size of a payload, counting binary attachments by their byte length. */
export function approximateSize(value: unknown): number {
  let size = 0;
  try {
    const json = JSON.stringify(value, (_k, v: unknown) => {
      if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
        size += (v as ArrayBufferLike).byteLength;
        return null;
      }
      if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
        size += ((v as { data: unknown[] }).data).length;
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
