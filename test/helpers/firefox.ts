/**
 * Headless Debian firefox-esr for tests, driven by puppeteer-core over WebDriver BiDi (never a
 * downloaded browser), with the fake camera and microphone; and the call page in it
 * ({@link FirefoxCallPage}: the same reads as callPage.ts for Chromium).
 */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import type { RemoteStats, TileStat } from './callPage.ts';
import { assertFirefoxNetwork } from './firefoxNetwork.ts';
import { installFakeMedia, type FakeMediaSources } from './firefoxFakeMedia.ts';

export function firefoxPath(): string {
  const candidates = [process.env['FIREFOX_PATH'], '/usr/bin/firefox-esr', '/usr/bin/firefox'].filter(Boolean) as string[];
  for (const c of candidates) if (fs.existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', 'command -v firefox-esr || command -v firefox'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('Firefox not found: install Debian "firefox-esr" (apt-get install -y firefox-esr) or set FIREFOX_PATH');
  }
}

export async function launchFirefox(): Promise<{ browser: Browser; close: () => Promise<void> }> {
  assertFirefoxNetwork();
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: firefoxPath(),
    headless: true,
    extraPrefsFirefox: {
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      'media.peerconnection.ice.loopback': true,
      'media.autoplay.default': 0,
      'media.autoplay.blocking_policy': 0,
    },
  });
  return { browser, close: () => browser.close().catch(() => undefined) };
}

export class FirefoxCallPage {
  readonly errors: string[] = [];
  private constructor(
    readonly page: Page,
    readonly name: string,
  ) {
    page.on('pageerror', (err) => this.errors.push(err instanceof Error ? err.message : String(err)));
  }

  /** `fakeMedia`: real face / speech sources replacing Firefox's fake devices (firefoxFakeMedia.ts). */
  static async open(browser: Browser, baseUrl: string, room: string, name: string, query: Record<string, string> = {}, fakeMedia?: FakeMediaSources): Promise<FirefoxCallPage> {
    const page = await browser.newPage();
    if (fakeMedia) await installFakeMedia(page, fakeMedia);
    const q = new URLSearchParams({ room, name, w: '320', h: '240', fps: '30', ...query });
    await page.goto(`${baseUrl}/?${q}`);
    return new FirefoxCallPage(page, name);
  }

  async join(timeoutMs = 15_000): Promise<string> {
    await this.page.click('#join');
    await this.page.waitForSelector('#call:not([hidden])', { timeout: timeoutMs });
    const stats = await this.stats();
    if (!stats.peerId) throw new Error(`${this.name}: joined without a peer id`);
    return stats.peerId;
  }

  /** Join "as avatar" (mode avatar: camera-driven keypoints; voice: microphone only) with a source photo. */
  async joinAsAvatar(mode: 'avatar' | 'voice', photo: string, timeoutMs = 90_000): Promise<string> {
    await this.page.click(`input[name="mode"][value="${mode}"]`);
    const input = await this.page.$('#photo');
    if (!input) throw new Error(`${this.name}: no #photo input`);
    await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(photo);
    return this.join(timeoutMs);
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

  /** Frames decoded per second (and audio bytes) for each remote peer over `ms`. */
  async decodeRates(ms: number): Promise<Map<string, { fps: number; audioBytesPerS: number }>> {
    const a = await this.stats();
    await new Promise((r) => setTimeout(r, ms));
    const b = await this.stats();
    const dt = ((b.now ?? 0) - (a.now ?? 0)) / 1000;
    const out = new Map<string, { fps: number; audioBytesPerS: number }>();
    for (const tb of b.tiles) {
      const ta = a.tiles.find((t) => t.peerId === tb.peerId);
      if (ta) out.set(tb.peerId, { fps: (tb.framesDecoded - ta.framesDecoded) / dt, audioBytesPerS: (tb.audioBytes - ta.audioBytes) / dt });
    }
    return out;
  }

  /** The current frame of a peer's tile video as PNG bytes (null while it has none). */
  async grabTile(peerId: string): Promise<Uint8Array | null> {
    const dataUrl = await this.page.evaluate((id: string) => {
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
}
