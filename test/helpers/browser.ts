/** Headless Debian Chromium for tests and benchmarks (never a downloaded browser). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

export function chromiumPath(): string {
  const candidates = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean) as string[];
  for (const c of candidates) if (fs.existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('Chromium not found: install Debian "chromium" (apt-get install -y chromium) or set CHROMIUM_PATH');
  }
}

export interface LaunchOptions {
  /** .y4m/.mjpeg file for the fake camera. */
  fakeVideo?: string;
  /** .wav file for the fake microphone. */
  fakeAudio?: string;
  extraArgs?: string[];
  /** Frame rate of Chromium's synthetic fake camera (it defaults to 20 whatever the page asks). */
  fakeFps?: number;
  /** How many fake cameras (and microphones, speakers) Chromium lists: fake_device_0, fake_device_1, … (default 1). */
  fakeDeviceCount?: number;
  /** Run another executable than Debian's Chromium (e.g. a wrapper that starts it in a network namespace). */
  executablePath?: string;
}

export async function launchChromium(opts: LaunchOptions = {}): Promise<{ browser: BrowserContext; close: () => Promise<void> }> {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-chromium-'));
  const args = [
    '--headless=new',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--use-fake-device-for-media-stream=fps=${opts.fakeFps ?? 30}${opts.fakeDeviceCount ? `,device-count=${opts.fakeDeviceCount}` : ''}`,
    '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection',
    '--autoplay-policy=no-user-gesture-required',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
    '--disable-renderer-backgrounding',
    '--disable-background-timer-throttling',
    '--disable-backgrounding-occluded-windows',
    '--disable-dev-shm-usage',
  ];
  if (opts.fakeVideo) args.push(`--use-file-for-fake-video-capture=${opts.fakeVideo}`);
  if (opts.fakeAudio) args.push(`--use-file-for-fake-audio-capture=${opts.fakeAudio}`);
  args.push(...(opts.extraArgs ?? []));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.executablePath ?? chromiumPath(),
    headless: true,
    args,
    ignoreDefaultArgs: ['--mute-audio'],
    ignoreHTTPSErrors: true,
    viewport: { width: 800, height: 600 },
  });
  return {
    browser: context,
    close: async () => {
      await context.close().catch(() => undefined);
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export type { Browser };
