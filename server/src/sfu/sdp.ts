/** Small, targeted edits of SDP the SFU sends (werift has no API for these). */

/**
 * Asks the remote sender for `ptimeMs` audio packets: `a=ptime` in every audio media section (any
 * existing one replaced). libwebrtc (Chromium, @roamhq/wrtc) sizes its Opus frames from it; a 10 ms
 * frame halves the encoder's framing delay and lets the receiver's jitter buffer run shallower, at
 * twice the audio packet rate.
 */
export function withAudioPtime(sdp: string, ptimeMs: number): string {
  if (!Number.isInteger(ptimeMs) || ptimeMs <= 0) throw new TypeError(`invalid ptime ${ptimeMs}`);
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const out: string[] = [];
  let inAudio = false;
  const endSection = (): void => {
    if (inAudio) out.push(`a=ptime:${ptimeMs}`);
  };
  for (const line of sdp.split(/\r?\n/)) {
    if (line === '') continue;
    if (line.startsWith('m=')) {
      endSection();
      inAudio = line.startsWith('m=audio ');
    }
    if (inAudio && line.startsWith('a=ptime:')) continue;
    out.push(line);
  }
  endSection();
  return out.join(eol) + eol;
}

/**
 * What an offer asks to send: its media (audio/video) sections and data (SCTP) sections, counting
 * neither rejected ones (port 0) nor media sections that send nothing (recvonly, inactive).
 */
export function offeredSections(sdp: string): { media: number; data: number } {
  let media = 0;
  let data = 0;
  let current: { kind: 'media' | 'data'; sends: boolean } | undefined;
  const end = (): void => {
    if (current?.kind === 'data') data++;
    else if (current?.sends) media++;
    current = undefined;
  };
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^m=(\w+) (\d+)/.exec(line);
    if (m) {
      end();
      if (m[2] === '0') continue;
      if (m[1] === 'audio' || m[1] === 'video') current = { kind: 'media', sends: true };
      else if (m[1] === 'application') current = { kind: 'data', sends: true };
      continue;
    }
    if (current?.kind === 'media' && (line === 'a=recvonly' || line === 'a=inactive')) current.sends = false;
  }
  end();
  return { media, data };
}
