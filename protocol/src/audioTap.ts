/**
 * Audio tap wire format (SFU → voice avatar worker): the owner's microphone as the encoded packets
 * the SFU receives, one data-channel message per RTP packet, on an unordered, no-retransmit channel
 * labelled {@link AUDIO_TAP_LABEL}. The worker decodes them itself instead of going through a
 * playout jitter buffer (25–40 ms of latency the lips would inherit), and handles reordering and loss.
 *
 *   byte 0     version (= 1)
 *   byte 1     codec   (1 = Opus, 48 kHz RTP clock)
 *   bytes 2–3  RTP sequence number, big endian
 *   bytes 4–7  RTP timestamp, big endian
 *   bytes 8…   the RTP payload (one Opus packet, ≤ 1275 bytes by RFC 6716)
 *
 * Pure TypeScript; `decodeAudioTapPacket` validates everything a peer could get wrong.
 */

export const AUDIO_TAP_LABEL = 'audio-tap';
export const AUDIO_TAP_VERSION = 1;
export const AUDIO_TAP_HEADER_BYTES = 8;
/** RFC 6716: an Opus packet is at most 1275 bytes. */
export const AUDIO_TAP_MAX_PAYLOAD_BYTES = 1275;

export const AUDIO_TAP_CODECS = { opus: 1 } as const;
export type AudioTapCodec = keyof typeof AUDIO_TAP_CODECS;

export interface AudioTapPacket {
  codec: AudioTapCodec;
  /** 16-bit RTP sequence number */
  sequenceNumber: number;
  /** 32-bit RTP timestamp (48 kHz for Opus) */
  timestamp: number;
  payload: Uint8Array;
}

export function encodeAudioTapPacket(p: AudioTapPacket): Uint8Array {
  if (!Number.isInteger(p.sequenceNumber) || p.sequenceNumber < 0 || p.sequenceNumber > 0xffff) throw new TypeError(`bad sequence number ${p.sequenceNumber}`);
  if (!Number.isInteger(p.timestamp) || p.timestamp < 0 || p.timestamp > 0xffffffff) throw new TypeError(`bad timestamp ${p.timestamp}`);
  if (!(p.payload instanceof Uint8Array) || p.payload.length === 0 || p.payload.length > AUDIO_TAP_MAX_PAYLOAD_BYTES) throw new TypeError(`payload must be 1–${AUDIO_TAP_MAX_PAYLOAD_BYTES} bytes`);
  const codec = AUDIO_TAP_CODECS[p.codec];
  if (codec === undefined) throw new TypeError(`unknown codec ${String(p.codec)}`);
  const out = new Uint8Array(AUDIO_TAP_HEADER_BYTES + p.payload.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, AUDIO_TAP_VERSION);
  view.setUint8(1, codec);
  view.setUint16(2, p.sequenceNumber);
  view.setUint32(4, p.timestamp);
  out.set(p.payload, AUDIO_TAP_HEADER_BYTES);
  return out;
}

/** Parses one message; throws a TypeError saying what is wrong. The payload is a view, not a copy. */
export function decodeAudioTapPacket(data: ArrayBuffer | ArrayBufferView): AudioTapPacket {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
  if (!bytes) throw new TypeError('audio tap message must be binary');
  if (bytes.length <= AUDIO_TAP_HEADER_BYTES) throw new TypeError(`audio tap message too short (${bytes.length} bytes)`);
  if (bytes.length > AUDIO_TAP_HEADER_BYTES + AUDIO_TAP_MAX_PAYLOAD_BYTES) throw new TypeError(`audio tap message too long (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version !== AUDIO_TAP_VERSION) throw new TypeError(`unsupported audio tap version ${version}`);
  const codecId = view.getUint8(1);
  const codec = (Object.keys(AUDIO_TAP_CODECS) as AudioTapCodec[]).find((k) => AUDIO_TAP_CODECS[k] === codecId);
  if (!codec) throw new TypeError(`unknown audio tap codec ${codecId}`);
  return { codec, sequenceNumber: view.getUint16(2), timestamp: view.getUint32(4), payload: bytes.subarray(AUDIO_TAP_HEADER_BYTES) };
}
