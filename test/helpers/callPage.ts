/** Drives the real call page in Chromium: join through the form, read per-tile stats. */
import type { BrowserContext, Page } from 'playwright-core';

export interface TileStat {
  peerId: string;
  displayName: string;
  framesDecoded: number;
  frameWidth: number;
  audioSamples: number;
  audioBytes: number;
  packetsLost: number;
  firstFrameAt: number | null;
}

export interface RemoteStats {
  joined: boolean;
  peerId?: string;
  joinStartedAt?: number;
  now?: number;
  tiles: TileStat[];
  visibleTiles: string[];
}

export interface CallPageOptions {
  width?: number;
  height?: number;
  fps?: number;
  /** how long the page may take to load (default Playwright's 30 s) */
  loadTimeoutMs?: number;
}

export class CallPage {
  readonly errors: string[] = [];
  private constructor(
    readonly page: Page,
    readonly name: string,
  ) {
    page.on('pageerror', (err) => this.errors.push(err.message));
  }

  static async open(context: BrowserContext, baseUrl: string, room: string, name: string, opts: CallPageOptions = {}): Promise<CallPage> {
    const page = await context.newPage();
    const q = new URLSearchParams({ room, name, w: String(opts.width ?? 320), h: String(opts.height ?? 240), fps: String(opts.fps ?? 30) });
    await page.goto(`${baseUrl}/?${q}`, opts.loadTimeoutMs ? { timeout: opts.loadTimeoutMs } : {});
    return new CallPage(page, name);
  }

  async join(timeoutMs = 15_000): Promise<string> {
    await this.page.click('#join');
    await this.page.waitForSelector('#call:not([hidden])', { timeout: timeoutMs });
    const stats = await this.stats();
    if (!stats.peerId) throw new Error(`${this.name}: joined without a peer id`);
    return stats.peerId;
  }

  async leave(): Promise<void> {
    await this.page.click('#leave');
    await this.page.waitForSelector('#join-form:not([hidden])');
  }

  stats(): Promise<RemoteStats> {
    return this.page.evaluate(() => window.avatarSfu.remoteStats()) as Promise<RemoteStats>;
  }

  async tile(peerId: string): Promise<TileStat | undefined> {
    return (await this.stats()).tiles.find((t) => t.peerId === peerId);
  }

  /** Frames decoded per second for each remote peer over `ms`. */
  async decodeRates(ms: number): Promise<Map<string, { fps: number; audioBytesPerS: number }>> {
    const a = await this.stats();
    const t0 = a.now ?? 0;
    await new Promise((r) => setTimeout(r, ms));
    const b = await this.stats();
    const dt = ((b.now ?? 0) - t0) / 1000;
    const out = new Map<string, { fps: number; audioBytesPerS: number }>();
    for (const tb of b.tiles) {
      const ta = a.tiles.find((t) => t.peerId === tb.peerId);
      if (!ta) continue;
      out.set(tb.peerId, { fps: (tb.framesDecoded - ta.framesDecoded) / dt, audioBytesPerS: (tb.audioBytes - ta.audioBytes) / dt });
    }
    return out;
  }

  /**
   * The receiver's lip-sync groups of a peer's tracks: the MediaStream id (a=msid) of each of its
   * media sections in the receive transport's remote description, by kind.
   */
  async syncGroups(peerId: string): Promise<Record<string, string[]>> {
    return this.page.evaluate((id) => {
      const c = window.avatarSfu.client();
      const sdp = c?.receivePeerConnection?.remoteDescription?.sdp ?? '';
      const msidByMid = new Map<string, string>();
      for (const section of sdp.split(/\r\n(?=m=)/)) {
        const mid = /a=mid:(\S+)/.exec(section)?.[1];
        const msid = /a=msid:(\S+)/.exec(section)?.[1];
        if (mid && msid) msidByMid.set(mid, msid);
      }
      const out: Record<string, string[]> = {};
      for (const t of c?.remoteTracks ?? []) {
        if (t.peerId !== id) continue;
        (out[t.kind] ??= []).push(msidByMid.get(t.mid) ?? '?');
      }
      return out;
    }, peerId);
  }

  /** The current frame of a peer's tile video as PNG bytes (null while it has none). */
  /**
   * How much of a tile's video picture is on screen (1 = all of it), from its computed object-fit,
   * the element's box and the video's intrinsic size; null before the first frame.
   */
  async visibleFraction(peerId: string): Promise<{ fraction: number; objectFit: string; box: [number, number]; video: [number, number] } | null> {
    return this.page.evaluate((id) => {
      const video = document.querySelector<HTMLVideoElement>(`.tile[data-peer-id="${id}"] video`);
      if (!video || video.videoWidth === 0) return null;
      const objectFit = getComputedStyle(video).objectFit;
      const r = video.getBoundingClientRect();
      const [vw, vh] = [video.videoWidth, video.videoHeight];
      const scale = objectFit === 'cover' ? Math.max(r.width / vw, r.height / vh) : objectFit === 'contain' || objectFit === 'scale-down' ? Math.min(r.width / vw, r.height / vh) : Number.NaN;
      // 'fill' stretches (everything visible, distorted): not acceptable for a face either.
      const fraction = Number.isNaN(scale) ? 0 : Math.min(1, r.width / (vw * scale)) * Math.min(1, r.height / (vh * scale));
      return { fraction, objectFit, box: [Math.round(r.width), Math.round(r.height)] as [number, number], video: [vw, vh] as [number, number] };
    }, peerId);
  }

  async grabTile(peerId: string): Promise<Uint8Array | null> {
    const dataUrl = await this.page.evaluate((id) => {
      const video = document.querySelector<HTMLVideoElement>(`.tile[data-peer-id="${id}"] video`);
      if (!video || video.videoWidth === 0) return null;
      const c = document.createElement('canvas');
      c.width = video.videoWidth;
      c.height = video.videoHeight;
      c.getContext('2d')!.drawImage(video, 0, 0);
      return c.toDataURL('image/png');
    }, peerId);
    return dataUrl ? Buffer.from(dataUrl.split(',')[1]!, 'base64') : null;
  }

  /** The local camera's real frame rate, from the send transport's outbound-rtp stats. */
  async sentFps(ms: number): Promise<number> {
    const read = (): Promise<{ frames: number; now: number }> =>
      this.page.evaluate(async () => {
        const pc = window.avatarSfu.client()?.sendPeerConnection;
        let frames = 0;
        (await pc?.getStats())?.forEach((s: Record<string, unknown>) => {
          if (s['type'] === 'outbound-rtp' && s['kind'] === 'video') frames += Number(s['framesEncoded'] ?? 0);
        });
        return { frames, now: performance.now() };
      });
    const a = await read();
    await new Promise((r) => setTimeout(r, ms));
    const b = await read();
    return (b.frames - a.frames) / ((b.now - a.now) / 1000);
  }
}
