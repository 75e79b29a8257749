/**
 * Wall-clock times on what the SFU sends: RTCP sender reports and the abs-send-time header extension.
 *
 * werift 0.24's `ntpTime()` turns the seconds into a string and writes the digits after the decimal
 * point as the 32-bit NTP fraction ("…193.49" → fraction 49 → 11 ns), so every NTP time it produces
 * is, in effect, a whole second. Receivers lip-sync a peer's audio and video by mapping each stream's
 * RTP timestamps to NTP time through the sender reports; with whole seconds that mapping is off by up
 * to a second, so Chromium and libwebrtc add a random, drifting delay to one of the streams (measured:
 * the viewer's audio jitter buffer wandering 40 → 133 ms within 15 s, video 50–220 ms off the audio).
 * The same broken time went into abs-send-time, which receivers use for delay-based bandwidth estimation.
 *
 * {@link SenderClock} stamps each forwarded packet with a correct abs-send-time and, right after
 * werift's `sendRtp()` has recorded its own (broken) time, replaces the time its next sender report
 * will carry. Both happen synchronously around the call, at the instant the packet leaves.
 */
import { RTP_EXTENSION_URI, serializeAbsSendTime, type RTCRtpSender, type RtpPacket } from 'werift';

/** Seconds from the NTP epoch (1900-01-01) to the Unix epoch. */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

/** Now as a 64-bit NTP timestamp (32.32 fixed point seconds since 1900), sub-millisecond resolution. */
export function ntpNow(nowMs: number = performance.timeOrigin + performance.now()): bigint {
  const seconds = Math.floor(nowMs / 1000);
  const fraction = Math.floor(((nowMs - seconds * 1000) / 1000) * 2 ** 32);
  return (BigInt(seconds + NTP_UNIX_OFFSET_S) << 32n) | BigInt(Math.min(fraction, 2 ** 32 - 1));
}

/** NTP time → milliseconds since the Unix epoch. */
export function ntpToUnixMs(ntp: bigint): number {
  const seconds = Number(ntp >> 32n) - NTP_UNIX_OFFSET_S;
  return seconds * 1000 + (Number(ntp & 0xffffffffn) / 2 ** 32) * 1000;
}

/** The parts of werift's RTCRtpSender this module reads and writes (private in its typings). */
interface SenderInternals {
  headerExtensions?: { uri: string; id: number }[];
  ntpTimestamp?: bigint;
}

export class SenderClock {
  readonly #sender: RTCRtpSender;
  #absSendTimeId: number | undefined;
  #resolved = false;

  constructor(sender: RTCRtpSender) {
    this.#sender = sender;
  }

  /** Sends `packet` on the sender with correct times. Returns werift's promise. */
  send(packet: RtpPacket): Promise<unknown> {
    const internals = this.#sender as unknown as SenderInternals;
    if (!this.#resolved && internals.headerExtensions && internals.headerExtensions.length > 0) {
      // Negotiated once the transport's description is applied; fixed for the transceiver's life.
      this.#absSendTimeId = internals.headerExtensions.find((e) => e.uri === RTP_EXTENSION_URI.absSendTime)?.id;
      this.#resolved = true;
    }
    const ntp = ntpNow();
    if (this.#absSendTimeId !== undefined) {
      // werift keeps the payload of an extension the packet already carries under the same id.
      packet.header.extensions = [...packet.header.extensions.filter((e) => e.id !== this.#absSendTimeId), { id: this.#absSendTimeId, payload: serializeAbsSendTime(ntp) }];
    }
    const sent = this.#sender.sendRtp(packet);
    // sendRtp() records its own time synchronously, before its first await: overwrite it.
    if ('ntpTimestamp' in internals) internals.ntpTimestamp = ntp;
    return sent;
  }
}
