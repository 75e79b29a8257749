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
 * Gives every `a=bundle-only` media section of a remote offer the placeholder port 9 instead of 0.
 * Firefox (bundlePolicy max-bundle) offers all its media sections but the first with port 0 and
 * `a=bundle-only` (RFC 8843 §6): they are not rejected, they ride on the first section's transport.
 * werift reads port 0 as rejected and never creates the section's track, so the SFU never saw a
 * Firefox page's video. Sections with port 0 and no `a=bundle-only` really are rejected and stay so.
 */
export function withBundleOnlyPorts(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const sections = sdp.split(/\r?\n(?=m=)/);
  return sections
    .map((section) => {
      if (!section.startsWith('m=') || !/(^|\r?\n)a=bundle-only(\r?\n|$)/.test(section)) return section;
      return section.replace(/^(m=\S+) 0 /, '$1 9 ');
    })
    .join(eol);
}

/**
 * Moves werift's `a=ice-lite` from its media sections to the session level, where RFC 8839 §5.3
 * defines it. Chromium reads it in either place; Firefox only at the session level, and otherwise
 * answered an ICE-lite SFU's offer as the controlled agent too, so no one nominated a pair.
 */
export function withSessionIceLite(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = sdp.split(/\r?\n/).filter((l) => l !== '');
  if (!lines.includes('a=ice-lite')) return sdp;
  const out = lines.filter((l) => l !== 'a=ice-lite');
  const firstMedia = out.findIndex((l) => l.startsWith('m='));
  const at = out.findIndex((l) => l.startsWith('t='));
  out.splice(at >= 0 && (firstMedia < 0 || at < firstMedia) ? at + 1 : firstMedia < 0 ? out.length : firstMedia, 0, 'a=ice-lite');
  return out.join(eol) + eol;
}

/**
 * What an offer asks to send: its media (audio/video) sections and data (SCTP) sections, counting
 * neither rejected ones (port 0 without `a=bundle-only`: a bundle-only section with port 0 is not
 * rejected, see {@link withBundleOnlyPorts}) nor media sections that send nothing (recvonly, inactive).
 */
export function offeredSections(sdp: string): { media: number; data: number } {
  let media = 0;
  let data = 0;
  for (const section of sdp.split(/\r?\n(?=m=)/)) {
    const m = /^m=(\w+) (\d+)/.exec(section);
    if (!m) continue;
    const lines = section.split(/\r?\n/);
    if (m[2] === '0' && !lines.includes('a=bundle-only')) continue;
    if (m[1] === 'application') data++;
    else if ((m[1] === 'audio' || m[1] === 'video') && !lines.includes('a=recvonly') && !lines.includes('a=inactive')) media++;
  }
  return { media, data };
}

/**
 * Takes rejected media sections (port 0) out of the offer's `a=group:BUNDLE` (RFC 8843 §7.3.3: a
 * rejected section is in no BUNDLE group), so that the group's first mid, whose transport the whole
 * group uses, is a live one. werift offers the section of a closed consumer as `inactive` with port 0
 * and keeps it first in the group; libwebrtc (Chromium, @roamhq/wrtc) then refused the offer ("The m=
 * section with mid='1' should be rejected."), so a participant whose earliest consumed peer had left
 * could receive no one who joined afterwards. A group of rejected sections only stays as it is
 * (libwebrtc with max-bundle needs a group, and with nothing live its tag does not matter).
 */
export function withoutRejectedInBundle(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const rejected = new Set<string>();
  for (const section of sdp.split(/\r?\n(?=m=)/)) {
    if (!/^m=\S+ 0 /.test(section)) continue;
    const mid = /(?:^|\r?\n)a=mid:(\S+)/.exec(section)?.[1];
    if (mid !== undefined) rejected.add(mid);
  }
  if (rejected.size === 0) return sdp;
  const lines = sdp.split(/\r?\n/);
  const out: string[] = [];
  for (const line of lines) {
    const m = /^a=group:BUNDLE(.*)$/.exec(line);
    if (!m) {
      out.push(line);
      continue;
    }
    const mids = m[1]!.trim().split(/\s+/).filter((x) => x !== '' && !rejected.has(x));
    out.push(mids.length > 0 ? `a=group:BUNDLE ${mids.join(' ')}` : line);
  }
  return out.join(eol);
}
