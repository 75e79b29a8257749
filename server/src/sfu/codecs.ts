/** Codecs and RTP header extensions the SFU negotiates with every peer (forwarding needs one codec per kind). */
import { RTCRtpCodecParameters, useAbsSendTime, useAudioLevelIndication, useFIR, useNACK, usePLI, useREMB, useSdesMid, type PeerConfig } from 'werift';

export function sfuCodecs(): PeerConfig['codecs'] {
  return {
    audio: [
      new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, parameters: 'minptime=10;useinbandfec=1' }),
    ],
    video: [
      new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, rtcpFeedback: [useNACK(), usePLI(), useFIR(), useREMB()] }),
    ],
  };
}

export function sfuHeaderExtensions(): PeerConfig['headerExtensions'] {
  // RFC 6464 audio level: the publisher states each audio packet's level, so the SFU knows who speaks
  // without decoding (AudioLevelObserver). Consumers strip producers' extensions before forwarding.
  return { audio: [useSdesMid(), useAudioLevelIndication()], video: [useSdesMid(), useAbsSendTime()] };
}
