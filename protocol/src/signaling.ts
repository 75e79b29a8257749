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

export const producerInfoSchema = z.object({
  producerId: id,
  kind: mediaKindSchema,
  paused: z.boolean(),
});
export type ProducerInfo = z.infer<typeof producerInfoSchema>;

export const peerInfoSchema = z.object({
  peerId: id,
  displayName: displayNameSchema,
  producers: z.array(producerInfoSchema),
});
export type PeerInfo = z.infer<typeof peerInfoSchema>;

/** One media section of the receive transport: which remote producer feeds transceiver `mid`. */
export const consumerInfoSchema = z.object({
  consumerId: id,
  producerId: id,
  peerId: id,
  kind: mediaKindSchema,
  mid: z.string().min(1).max(16),
});
export type ConsumerInfo = z.infer<typeof consumerInfoSchema>;

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
]);
export type ErrorCode = z.infer<typeof errorCodeSchema>;

export const errorBodySchema = z.object({ code: errorCodeSchema, message: z.string(), status: z.number().int() });
export type ErrorBody = z.infer<typeof errorBodySchema>;

export type Ack<T> = { ok: true; data: T } | { ok: false; error: ErrorBody };

/** Client → server requests: name → [request schema, response type]. */
export const requestSchemas = {
  join: z.object({
    protocolVersion: z.number().int().positive(),
    roomId: roomIdSchema,
    displayName: displayNameSchema,
  }).strict(),
  leave: z.object({}).strict(),
  /** Offer for the client's send transport (its camera/mic); answered with the server's SDP answer. */
  publish: z.object({ offer: sdpSchema.extend({ type: z.literal('offer') }) }).strict(),
  /** Mute/unmute one of the caller's producers; others are told through `producer:state`. */
  setProducerPaused: z.object({ kind: mediaKindSchema, paused: z.boolean() }).strict(),
  /** Ask the server to request a keyframe for a consumer (e.g. the decoder stalled). */
  requestKeyFrame: z.object({ consumerId: id }).strict(),
} as const;

export type RequestName = keyof typeof requestSchemas;
export type RequestOf<N extends RequestName> = z.infer<(typeof requestSchemas)[N]>;

export interface JoinResponse {
  peerId: string;
  roomId: string;
  peers: PeerInfo[];
}
export interface PublishResponse {
  answer: SessionDescription;
  producers: ProducerInfo[];
}
export interface ResponseMap {
  join: JoinResponse;
  leave: Record<string, never>;
  publish: PublishResponse;
  setProducerPaused: ProducerInfo;
  requestKeyFrame: Record<string, never>;
}

/** Server → client notifications. */
export const notificationSchemas = {
  'peer:joined': peerInfoSchema,
  'peer:left': z.object({ peerId: id }),
  'producer:state': z.object({ peerId: id, producer: producerInfoSchema }),
  'producer:closed': z.object({ peerId: id, producerId: id }),
  /** Offer for the client's receive transport; the client answers through the acknowledgement. */
  'consume:offer': z.object({ offer: sdpSchema.extend({ type: z.literal('offer') }), consumers: z.array(consumerInfoSchema) }),
  'server:error': errorBodySchema,
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
  return { ok: false, error: { code: 'BAD_REQUEST', status: 400, message: `invalid ${name}: ${where}${issue?.message ?? 'malformed'}` } };
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
  'producer:state': (p: NotificationOf<'producer:state'>) => void;
  'producer:closed': (p: NotificationOf<'producer:closed'>) => void;
  'consume:offer': (p: NotificationOf<'consume:offer'>, ack: (answer: ConsumeAnswer) => void) => void;
  'server:error': (p: NotificationOf<'server:error'>) => void;
};
