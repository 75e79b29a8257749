/**
 * Writes docs/screenshots/*.png of the call page: a real server and headless Chromium pages with fake
 * camera and microphone (npm run screenshots). Reproducible: run it again after UI changes.
 *   prejoin.png  the pre-join screen (preview, level meter, device pickers)
 *   grid.png     three people in the grid layout, with connection quality and the participant list
 *   speaker.png  the speaker layout (one tile large, the others in a strip)
 *   phone.png    a phone-sized viewport (390×844) in the call
 *   screenshare.png  only when a tile carries data-source="screen" (a screen share is on)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { buildClient } from './build-client.ts';
import { startTestServer } from '../test/helpers/server.ts';
import { launchChromium } from '../test/helpers/browser.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'docs/screenshots');
fs.mkdirSync(outDir, { recursive: true });

await buildClient();
const server = await startTestServer();
// real getDisplayMedia, headless: the screen-share shot shares what Chromium picks (its fake desktop)
const { browser, close } = await launchChromium({ fakeDeviceCount: 3, extraArgs: ['--auto-select-desktop-capture-source=Entire screen', '--auto-accept-this-tab-capture', '--enable-usermedia-screen-capturing'] });
const ROOM = 'design review';

async function open(name: string, viewport = { width: 1000, height: 680 }): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewportSize(viewport);
  await page.goto(`${server.httpUrl}/?${new URLSearchParams({ room: ROOM, name, w: '640', h: '480' })}`);
  return page;
}
async function join(page: Page): Promise<void> {
  await page.click('#join');
  await page.waitForSelector('#call:not([hidden])');
}
async function shot(page: Page, file: string): Promise<void> {
  await page.bringToFront();
  await page.mouse.move(0, 0);
  const target = path.join(outDir, file);
  await page.screenshot({ path: target });
  process.stdout.write(`${path.relative(root, target)} (${Math.round(fs.statSync(target).size / 1024)} KB)\n`);
}
const waitFrames = (page: Page, count: number): Promise<unknown> =>
  page.waitForFunction((n) => document.querySelectorAll('#tiles > .tile.has-video').length >= n && document.querySelectorAll('#tiles .conn[data-quality]').length >= n - 1, count, { timeout: 30_000 });

try {
  const ada = await open('Ada');
  await ada.waitForFunction(() => (document.querySelector<HTMLVideoElement>('#preview')?.videoWidth ?? 0) > 0 && document.querySelectorAll('#camera-picker option').length > 0);
  await ada.waitForFunction(() => Number(document.querySelector<HTMLElement>('#mic-level')?.dataset['level']) > 0.3, undefined, { timeout: 10_000 }).catch(() => undefined);
  await shot(ada, 'prejoin.png');
  await join(ada);
  const bob = await open('Bob');
  await join(bob);
  const cyd = await open('Cyd');
  await join(cyd);
  await waitFrames(ada, 3);
  await ada.click('#participants-toggle');
  await shot(ada, 'grid.png');
  await ada.click('#participants-toggle');
  await ada.click('#layout-toggle');
  await ada.waitForSelector('#tiles.layout-speaker .tile.main');
  await shot(ada, 'speaker.png');
  // Bob shares his screen and says so in the chat; Ada sees the share large and the chat open
  await bob.bringToFront();
  await bob.click('#share-screen');
  await ada.waitForFunction(() => (document.querySelector<HTMLVideoElement>('#tiles > .tile[data-source="screen"] video')?.videoWidth ?? 0) > 0, undefined, { timeout: 30_000 });
  await bob.click('#toggle-chat');
  await bob.fill('#chat textarea', 'Sharing the slides now: can everyone see them?');
  await bob.click('#chat .chat-form button[type="submit"]');
  await ada.click('#toggle-chat');
  await ada.waitForSelector('#chat .chat-message');
  await shot(ada, 'screenshare.png');
  await ada.click('#toggle-chat');
  await bob.click('#share-screen');
  const phone = await open('Dan', { width: 390, height: 844 });
  await join(phone);
  await waitFrames(phone, 4);
  await shot(phone, 'phone.png');
} finally {
  await close();
  await server.close();
}
