/**
 * Signaling protocol shared by the browser client, the server and avatar workers.
 *
 * Every socket.io event is declared once here, with a zod schema that validates it at runtime on the
 * receiving side. Requests are client → server events answered through a socket.io acknowledgement
 * with an {@link Ack}; notifications are server → client events (some with an acknowledgement).
 *
 * Wire format version: bump {@link SIGNALING_PROTOCOL_VERSION} on any incompatible change; `join`
 * carries the client's version and the server refuses versions it does not speak.
 */
import { z } from 'zod';
import { generatorKindSchema, generatorOfferSchema } from './generators.ts';
import { chatMessageSchema, chatTextSchema, type ChatMessage } from './chat.ts';

export const SIGNALING_PROTOCOL_VERSION = 1;

/** Largest serialized request the server accepts (bytes of JSON); bigger ones get PAYLOAD_TOO_LARGE. */
export const MAX_MESSAGE_BYTES = 128 * 1024;

const id = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only');
export const roomIdSchema = z.string().trim().min(1).max(64).regex(/^[\p{L}\p{N} _.-]+$/u, 'letters, digits, space, _ . - only');
export const displayNameSchema = z.string().trim().min(1).max(48);
export const mediaKindSchema = z.enum(['audio', 'video']);
export type MediaKind = z.infer<typeof mediaKindSchema>;

const sdpSchema = z.object({
  type: z.enum(['offer', 'answer']),
  sdp: z.string().min(1).max(MAX_MESSAGE_BYTES),
});
export type SessionDescription = z.infer<typeof sdpSchema>;

/** What a producer carries: a camera or microphone (the default) or a screen share (an additional video producer). */
export const producerSourceSchema = z.enum(['camera', 'microphone', 'screen']);
export type ProducerSource = z.infer<typeof producerSourceSchema>;

export const producerInfoSchema = z.object({
  producerId: id,
  kind: mediaKindSchema,
  paused: z.boolean(),
  /** Set for screen shares ("screen"); absent: the peer's camera or microphone. */
  source: producerSourceSchema.optional(),
});
export type ProducerInfo = z.infer<typeof producerInfoSchema>;

export const identityIdSchema = z.string().min(8).max(64).regex(/^[A-Za-z0-9_-]+$/);

/** Free-view offset in degrees (yaw ±30, pitch ±20, roll ±20 at least; the server clamps to its limits). */
export const viewOffsetSchema = z.object({
  yaw: z.number().finite().min(-90).max(90),
  pitch: z.number().finite().min(-90).max(90),
  roll: z.number().finite().min(-90).max(90),
}).strict();
export type ViewOffsetDeg = z.infer<typeof viewOffsetSchema>;

/**
 * Why an avatar does not render with the generator its owner asked for (join `avatar.generator`)
 * and renders with another one (the photo's mesh) instead:
 * - `ASSET_MISSING`: the identity has no asset for that generator (e.g. no trained Gaussian head);
 * - `ASSET_INVALID`: a worker could not load the asset (corrupt, wrong format version, hash mismatch);
 * - `GENERATOR_UNAVAILABLE`: no registered avatar worker renders that generator;
 * - `GENERATOR_BUSY`: the workers that render it have no room;
 * - `GENERATOR_FAILED`: every try to start it failed for another reason.
 */
export const AVATAR_FALLBACK_CODES = ['ASSET_MISSING', 'ASSET_INVALID', 'GENERATOR_UNAVAILABLE', 'GENERATOR_BUSY', 'GENERATOR_FAILED'] as const;
export type AvatarFallbackCode = (typeof AVATAR_FALLBACK_CODES)[number];
export const avatarFallbackSchema = z.object({
  /** the generator that was asked for */
  requested: generatorKindSchema,
  code: z.enum(AVATAR_FALLBACK_CODES),
  message: z.string().max(300),
}).strict();
export type AvatarFallback = z.infer<typeof avatarFallbackSchema>;

export const peerInfoSchema = z.object({
  peerId: id,
  displayName: displayNameSchema,
  producers: z.array(producerInfoSchema),
  /**
   * Present when the peer appears as a rendered avatar (its tile shows the avatar video). It never
   * names the identity (face data) the avatar renders: other participants only see the video.
   */
  avatar: z.object({
    driver: z.enum(['keypoint', 'voice']),
    state: z.enum(['starting', 'live', 'recovering', 'failed']),
    /** Why a failed avatar failed, for its tile. */
    reason: z.string().max(300).optional(),
    /** The owner stopped the camera driving it: the avatar idles. */
    paused: z.boolean().optional(),
    defaultView: viewOffsetSchema,
    /** The generator its worker renders it with (once placed). */
    generator: z.string().max(32).optional(),
    /** It renders with another generator than the one its owner asked for, and why (the owner's page says so). */
    fallback: avatarFallbackSchema.optional(),
  }).optional(),
  /** Present while the peer's connection is lost and it may still resume (its tile looks "reconnecting"). */
  connection: z.literal('reconnecting').optional(),
});
export type PeerInfo = z.infer<typeof peerInfoSchema>;

/** One media section of the receive transport: which remote producer feeds transceiver `mid`. */
export const consumerInfoSchema = z.object({
  consumerId: id,
  producerId: id,
  peerId: id,
  kind: mediaKindSchema,
  mid: z.string().min(1).max(16),
  /** The producer's source when it is not the peer's camera/microphone (a screen share: "screen"). */
  source: producerSourceSchema.optional(),
});
export type ConsumerInfo = z.infer<typeof consumerInfoSchema>;

/** A data channel of the receive transport carrying another peer's data producer (same label). */
export const dataConsumerInfoSchema = z.object({
  dataConsumerId: id,
  peerId: id,
  label: z.string().max(64),
});
export type DataConsumerInfo = z.infer<typeof dataConsumerInfoSchema>;

export const errorCodeSchema = z.enum([
  'BAD_REQUEST',
  'UNKNOWN_EVENT',
  'PAYLOAD_TOO_LARGE',
  'RATE_LIMITED',
  'NOT_JOINED',
  'ALREADY_JOINED',
  'ROOM_FULL',
  'UNSUPPORTED_VERSION',
  'INVALID_STATE',
  'INTERNAL',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'AT_CAPACITY',
  'CLIENT_CLOSED_REQUEST',
  'AVATAR_UNAVAILABLE',
  // room access tokens (protocol/src/accessToken.ts)
  'TOKEN_EXPIRED',
  'TOKEN_INVALID',
  'TOKEN_WRONG_ROOM',
  'GRANT_MISSING',
  // REST: per owner / per client upload limits (count and bytes within a window)
  'QUOTA_EXCEEDED',
  // REST: avatar source-photo enrollment (/api/identities)
  'NOT_FOUND',
  'UNSUPPORTED_MEDIA',
  'BAD_IMAGE',
  'NO_FACE',
  'FACE_TOO_SMALL',
  'BUSY',
  'TIMEOUT',
  // reconnection (join with `resume`)
  'RESUME_REFUSED',
  'RESUME_EXPIRED',
  // graceful shutdown: the server drains and refuses joins (`server:shutdown` tells joined clients)
  'SHUTTING_DOWN',
]);
export type ErrorCode = z.infer<typeof errorCodeSchema>;

/** The one HTTP status of each error code (REST and signaling): a code is never sent with another. */
export const ERROR_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  BAD_REQUEST: 400,
  UNKNOWN_EVENT: 404,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  NOT_JOINED: 409,
  ALREADY_JOINED: 409,
  ROOM_FULL: 403,
  UNSUPPORTED_VERSION: 426,
  INVALID_STATE: 409,
  INTERNAL: 500,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  /** A server-side cap (rooms, personal views) is reached: try later. */
  AT_CAPACITY: 503,
  /** The client went away before the answer (nginx's 499). */
  CLIENT_CLOSED_REQUEST: 499,
  AVATAR_UNAVAILABLE: 503,
  /** The room access token has expired: get a new one. */
  TOKEN_EXPIRED: 401,
  /** The token is malformed or not signed with the server's secret (tampered). */
  TOKEN_INVALID: 401,
  /** The token is valid, but for another room. */
  TOKEN_WRONG_ROOM: 403,
  /** The token lacks the grant the request needs (grants are explicit: missing = denied). */
  GRANT_MISSING: 403,
  /** An upload limit (count or bytes per owner or client within a window) is reached: try later. */
  QUOTA_EXCEEDED: 429,
  NOT_FOUND: 404,
  UNSUPPORTED_MEDIA: 415,
  BAD_IMAGE: 400,
  NO_FACE: 422,
  FACE_TOO_SMALL: 422,
  BUSY: 503,
  TIMEOUT: 504,
  /** A resume whose key is not the peer's: refused (never resumes on a bare peer id). */
  RESUME_REFUSED: 401,
  /** The peer to resume is gone (its grace period ended, or the server restarted): join afresh. */
  RESUME_EXPIRED: 410,
  /** The server is shutting down (draining): join again when it is back (`server:shutdown`'s reconnectInMs). */
  SHUTTING_DOWN: 503,
});

/** An error body whose status is its code's. */
export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { code, message, status: ERROR_STATUS[code] };
}

export const errorBodySchema = z.object({ code: errorCodeSchema, message: z.string(), status: z.number().int() });
export type ErrorBody = z.infer<typeof errorBodySchema>;

export type Ack<T> = { ok: true; data: T } | { ok: false; error: ErrorBody };

/** Client → server requests: name → [request schema, response type]. */
export const requestSchemas = {
  join: z.object({
    protocolVersion: z.number().int().positive(),
    roomId: roomIdSchema,
    displayName: displayNameSchema,
    /** Join as a keypoint avatar of this enrolled identity: the browser sends motion + audio, no video. */
    avatar: z.object({
      identityId: identityIdSchema,
      /** The identity's owner key (its enrollment returned it): only the owner joins wearing it. */
      ownerKey: z.string().min(16).max(128).optional(),
      /** "keypoint": the browser sends face motion; "voice": only the microphone drives the face. */
      driver: z.enum(['keypoint', 'voice']).default('keypoint'),
      /**
       * The renderer the owner wants (e.g. "gaussian" for a personal avatar with a trained head);
       * absent: the server's AVATAR_GENERATOR. When it cannot be used the avatar falls back to
       * another generator the identity has an asset for (the photo's mesh) and `PeerInfo.avatar.fallback` says why.
       */
      generator: generatorKindSchema.optional(),
    }).strict().optional(),
    /**
     * Room access token (a JWT, protocol/src/accessToken.ts), required when the server has an
     * AUTH_SECRET: its room, name and grants decide the join. Avatar workers use `avatarSession`.
     */
    token: z.string().min(1).max(4096).optional(),
    /** Set by avatar workers only: the session token the server gave them in `worker:assign`. */
    avatarSession: z.string().min(16).max(128).optional(),
    /**
     * Resume a participant whose connection was lost (within the server's RECONNECT_GRACE_MS): its
     * peer id and the resume key its join returned. The peer keeps its id; its transports are new,
     * so the client publishes again and receives fresh consume offers. Wrong key: RESUME_REFUSED;
     * peer gone: RESUME_EXPIRED (join afresh).
     */
    resume: z.object({ peerId: id, resumeKey: z.string().min(16).max(128) }).strict().optional(),
  }).strict(),
  leave: z.object({}).strict(),
  /**
   * The caller's media connection died (ICE failed or stayed disconnected) while signaling is up: the
   * server replaces its transports; the client publishes again on new connections.
   */
  restartTransports: z.object({}).strict(),
  /** Offer for the client's send transport (its camera/mic); answered with the server's SDP answer. */
  publish: z.object({
    offer: sdpSchema.extend({ type: z.literal('offer') }),
    /** Avatar workers: which media section (mid) renders which view ("default" or a personal view key). */
    trackViews: z.record(z.string().max(16), z.string().max(64)).optional(),
    /** Which media sections (mids) carry a screen share: their producers are marked `source: "screen"`. */
    trackSources: z.record(z.string().max(16), z.literal('screen')).optional(),
  }).strict(),
  /** Close one of the caller's own producers (e.g. stop a screen share): everyone's consumers of it close. */
  closeProducer: z.object({ producerId: id }).strict(),
  /** Mute/unmute one of the caller's producers; others are told through `producer:state`. */
  setProducerPaused: z.object({ kind: mediaKindSchema, paused: z.boolean() }).strict(),
  /** Ask the server to request a keyframe for a consumer (e.g. the decoder stalled). */
  requestKeyFrame: z.object({ consumerId: id }).strict(),
  /**
   * Free view of an avatar. scope "personal": only the caller's view of that avatar (null resets it);
   * scope "default": everyone's view, allowed to the avatar's owner only.
   */
  setAvatarView: z.object({ peerId: id, scope: z.enum(['personal', 'default']), view: viewOffsetSchema.nullable() }).strict(),
  /**
   * A keypoint-avatar owner stopped (or restarted) the camera that drives it: the avatar idles (neutral
   * face, blinks) and everyone is told through `avatar:state` (`paused`).
   */
  setAvatarPaused: z.object({ paused: z.boolean() }).strict(),
  /**
   * A chat message to everyone in the room (protocol/src/chat.ts): text only, at most CHAT_MAX_CHARS
   * characters, rate-limited per peer (RATE_LIMITED 429); needs the canPublishData grant. Answered
   * with the message as the others receive it (`chat:message`).
   */
  sendChatMessage: z.object({ text: chatTextSchema }).strict(),
} as const;

export type RequestName = keyof typeof requestSchemas;
export type RequestOf<N extends RequestName> = z.infer<(typeof requestSchemas)[N]>;
/** What a client sends (defaults not yet applied). */
export type RequestInput<N extends RequestName> = z.input<(typeof requestSchemas)[N]>;

export interface JoinResponse {
  peerId: string;
  roomId: string;
  peers: PeerInfo[];
  /** The room's recent chat messages, oldest first (bounded: the server's CHAT_HISTORY). */
  chatHistory: ChatMessage[];
  /** The room's active speaker now (`room:activespeaker` tells changes), or null. */
  activeSpeakerPeerId: string | null;
  /** The secret that resumes this participant after a lost connection (join `resume`); participants only. */
  resumeKey?: string;
  /** This join resumed an existing peer (same id). */
  resumed?: boolean;
}
export interface PublishResponse {
  answer: SessionDescription;
  producers: ProducerInfo[];
}
export interface ResponseMap {
  join: JoinResponse;
  leave: Record<string, never>;
  restartTransports: Record<string, never>;
  publish: PublishResponse;
  setProducerPaused: ProducerInfo;
  closeProducer: Record<string, never>;
  requestKeyFrame: Record<string, never>;
  setAvatarView: { peerId: string; scope: 'personal' | 'default'; view: ViewOffsetDeg | null; shared: boolean };
  setAvatarPaused: { paused: boolean };
  sendChatMessage: ChatMessage;
}

/**
 * Quality of service of an avatar session: the level its worker renders it at (0 = the nominal
 * size and frame rate; higher = smaller, then slower, see worker/src/QualityController.ts) because
 * the worker could not hold the nominal frame rate for it. `loadPct`: the measured frame cost
 * (render + encode) as a percentage of the frame interval, over the window that decided it.
 */
export const avatarQualitySchema = z.object({
  level: z.number().int().min(0).max(8),
  size: z.number().int().min(16).max(1024),
  fps: z.number().positive().max(60),
  nominalSize: z.number().int().min(16).max(1024),
  nominalFps: z.number().positive().max(60),
  loadPct: z.number().nonnegative().max(100_000),
}).strict();
export type AvatarQuality = z.infer<typeof avatarQualitySchema>;

/** Server → client notifications. */
export const notificationSchemas = {
  'peer:joined': peerInfoSchema,
  'peer:left': z.object({ peerId: id }),
  /** A participant lost its connection and may resume ("reconnecting"), or resumed ("connected"). */
  'peer:connection': z.object({ peerId: id, state: z.enum(['reconnecting', 'connected']) }),
  'producer:state': z.object({ peerId: id, producer: producerInfoSchema }),
  'producer:closed': z.object({ peerId: id, producerId: id }),
  /** Offer for the client's receive transport; the client answers through the acknowledgement. */
  'consume:offer': z.object({
    offer: sdpSchema.extend({ type: z.literal('offer') }),
    consumers: z.array(consumerInfoSchema),
    dataConsumers: z.array(dataConsumerInfoSchema).default([]),
  }),
  /** An avatar's state or default view changed. */
  'avatar:state': z.object({ peerId: id, avatar: peerInfoSchema.shape.avatar.unwrap() }),
  /** To an avatar's owner only: its worker lowered (or restored) the avatar's size or frame rate. */
  'avatar:quality': z.object({ peerId: id, quality: avatarQualitySchema }),
  'server:error': errorBodySchema,
  /**
   * The room's active speaker changed: the participant the SFU hears loudest (RFC 6464 audio levels
   * of the microphones); null when there is none (e.g. the speaker left).
   */
  'room:activespeaker': z.object({ peerId: id.nullable() }).strict(),
  /** Another participant's chat message (the sender gets it as its request's answer). */
  'chat:message': chatMessageSchema,
  /**
   * A fresh room access token (same room, identity, name and grants), sent before the join's token
   * expires; the client uses it from then on (to join again). `expiresAt`: ms since the epoch.
   */
  'token:refresh': z.object({ token: z.string().min(1).max(4096), expiresAt: z.number().int().positive() }),
  /**
   * The server is shutting down (SIGTERM): it refuses joins from now on and closes the rooms; a
   * server restarting on the same address is expected back in about `reconnectInMs`, and the
   * client rejoins by itself when it is.
   */
  'server:shutdown': z.object({ reason: z.string().min(1).max(200), reconnectInMs: z.number().int().nonnegative().max(3_600_000).optional() }).strict(),
} as const;
export type NotificationName = keyof typeof notificationSchemas;
export type NotificationOf<N extends NotificationName> = z.infer<(typeof notificationSchemas)[N]>;

export const consumeAnswerSchema = z.object({ answer: sdpSchema.extend({ type: z.literal('answer') }) });
export type ConsumeAnswer = z.infer<typeof consumeAnswerSchema>;

/** Parse a request; returns the typed value or an {@link ErrorBody}. Never throws. */
export function parseRequest<N extends RequestName>(name: N, payload: unknown): { ok: true; value: RequestOf<N> } | { ok: false; error: ErrorBody } {
  const result = requestSchemas[name].safeParse(payload);
  if (result.success) return { ok: true, value: result.data as RequestOf<N> };
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return { ok: false, error: errorBody('BAD_REQUEST', `invalid ${name}: ${where}${issue?.message ?? 'malformed'}`) };
}

export function isRequestName(name: unknown): name is RequestName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(requestSchemas, name);
}

/** socket.io typings (server side view). */
export type ClientToServerEvents = {
  [N in RequestName]: (payload: RequestOf<N>, ack: (response: Ack<ResponseMap[N]>) => void) => void;
};
export type ServerToClientEvents = {
  'peer:joined': (p: NotificationOf<'peer:joined'>) => void;
  'peer:left': (p: NotificationOf<'peer:left'>) => void;
  'peer:connection': (p: NotificationOf<'peer:connection'>) => void;
  'producer:state': (p: NotificationOf<'producer:state'>) => void;
  'producer:closed': (p: NotificationOf<'producer:closed'>) => void;
  'consume:offer': (p: NotificationOf<'consume:offer'>, ack: (answer: ConsumeAnswer) => void) => void;
  'server:error': (p: NotificationOf<'server:error'>) => void;
  'avatar:state': (p: NotificationOf<'avatar:state'>) => void;
  'avatar:quality': (p: NotificationOf<'avatar:quality'>) => void;
  'token:refresh': (p: NotificationOf<'token:refresh'>) => void;
  'chat:message': (p: NotificationOf<'chat:message'>) => void;
  'room:activespeaker': (p: NotificationOf<'room:activespeaker'>) => void;
  'server:shutdown': (p: NotificationOf<'server:shutdown'>) => void;
};

/**
 * Avatar workers: a worker process connects with `auth: { workerToken }` and registers; the server
 * assigns it avatar sessions. For each session the worker joins the room like any participant (a
 * second socket whose `join` carries `avatarSession`), publishes the rendered video and receives the
 * owner's motion data channel (and audio).
 */
export const workerRequestSchemas = {
  /**
   * `generators`: what the worker renders, each a kind name (it takes `capacity` sessions of it) or
   * a {@link generatorOfferSchema} offer with its own session limit, frame cost, GPU use, sizes and
   * view limits (protocol/src/generators.ts). `capacity` bounds the sessions of all kinds together.
   */
  'worker:register': z.object({
    workerId: id,
    capacity: z.number().int().min(1).max(1000),
    generators: z.array(z.union([z.string().max(32), generatorOfferSchema])).max(16),
    /**
     * Re-registering after its control socket dropped: the sessions it still runs. Within the
     * server's grace (WORKER_RECONNECT_GRACE_MS) those stay with it; the others are released.
     */
    sessions: z.array(id).max(1000).optional(),
  }).strict(),
  /** Session state reports: "live" once the first frame is published. */
  'worker:session-state': z.object({
    sessionId: id,
    state: z.enum(['live', 'failed']),
    message: z.string().max(500).optional(),
    /** Why it failed, when the assigned generator's asset is the cause: the server falls back to another generator. */
    code: z.enum(['ASSET_MISSING', 'ASSET_INVALID']).optional(),
  }).strict(),
  /** A session's quality of service changed (the worker lowered or restored its size or frame rate). */
  'worker:session-quality': z.object({ sessionId: id, quality: avatarQualitySchema }).strict(),
  /** Cumulative counters per session, sent every few seconds (exported as Prometheus metrics). */
  'worker:stats': z.object({
    sessions: z.array(z.object({
      sessionId: id,
      frames: z.number().int().nonnegative(),
      renderMsTotal: z.number().nonnegative(),
      motionAccepted: z.number().int().nonnegative(),
      motionDropped: z.object({ invalid: z.number().int().nonnegative(), oversized: z.number().int().nonnegative(), late: z.number().int().nonnegative(), flood: z.number().int().nonnegative() }),
      views: z.number().int().nonnegative(),
      audioDelayMs: z.number().nonnegative().max(10_000).default(0),
      /** Voice sessions on the audio tap: packets by outcome, and time filled with silence. */
      audioTap: z.object({
        decoded: z.number().int().nonnegative(),
        late: z.number().int().nonnegative(),
        duplicate: z.number().int().nonnegative(),
        invalid: z.number().int().nonnegative(),
        undecodable: z.number().int().nonnegative(),
        concealedMs: z.number().nonnegative(),
      }).strict().optional(),
      /** Frames rendered ahead of the frame clock because the motion jumped. */
      earlyFrames: z.number().int().nonnegative().default(0),
      /** Frames that came due while the previous one was still rendering: dropped, not queued. */
      framesDropped: z.number().int().nonnegative().default(0),
      /** Render time of each frame (each view) since the previous report, ms (the per-generator histogram). */
      renderMs: z.array(z.number().nonnegative().max(60_000)).max(2000).default([]),
    })).max(1000),
  }).strict(),
} as const;
export type WorkerRequestName = keyof typeof workerRequestSchemas;

export const workerAssignSchema = z.object({
  sessionId: id,
  token: z.string().min(16).max(128),
  roomId: roomIdSchema,
  ownerPeerId: id,
  ownerDisplayName: displayNameSchema,
  identityId: identityIdSchema,
  driver: z.enum(['keypoint', 'voice']),
  size: z.number().int().min(64).max(1024),
  fps: z.number().int().min(1).max(60),
  /**
   * Personal-view slots to publish up front ("slot-0" … "slot-<n-1>", idle until used) so that a
   * viewer's personal view starts without renegotiation.
   */
  viewSlots: z.number().int().min(0).max(32),
  /** Views to render: "default" always, plus the slots in use (degrees). */
  views: z.array(z.object({ key: z.string().max(64), view: viewOffsetSchema })).max(64),
  /** The generator to render with (placement chose it from the identity's assets); absent: "mesh". */
  generator: z.string().max(32).optional(),
});
export type WorkerAssign = z.infer<typeof workerAssignSchema>;

export const workerNotificationSchemas = {
  'worker:assign': workerAssignSchema,
  'worker:release': z.object({ sessionId: id }),
  /** The set of views a session must render changed (key "default" = the shared stream). */
  'worker:views': z.object({ sessionId: id, views: workerAssignSchema.shape.views }),
} as const;
