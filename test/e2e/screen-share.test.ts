/**
 * Screen share on the real call page (two headless Chromium pages, fake devices): A shares its
 * screen as an additional video producer marked "screen"; B decodes it in a tile of its own, shown
 * large (spanning the grid) beside A's camera tile. Stopping it (A's button, or the browser's own
 * "stop sharing", which ends the track) removes it everywhere.
 *
 * The capture: Chromium's real getDisplayMedia with --auto-select-desktop-capture-source (headless
 * Chromium captures its own tab through --auto-accept-this-tab-capture); when the build cannot
 * capture headless, the test replaces getDisplayMedia by a canvas captureStream and says so.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { CallPage } from '../helpers/callPage.ts';
import { waitFor } from '../helpers/wait.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const ROOM = 'share room';

const CANVAS_DISPLAY_MEDIA = `(() => {
  navigator.mediaDevices.getDisplayMedia = async () => {
    const c = document.createElement('canvas');
    c.width = 640; c.height = 360;
    const g = c.getContext('2d');
    let n = 0;
    setInterval(() => { g.fillStyle = 'hsl(' + (n++ * 7 % 360) + ',70%,50%)'; g.fillRect(0, 0, 640, 360); g.fillStyle = '#fff'; g.fillText('screen ' + n, 20, 40); }, 66);
    return c.captureStream(15);
  };
})()`;

async function screenTile(page: CallPage, peerId: string): Promise<{ width: number; gridWidth: number; cameraWidth: number; videoWidth: number; frames: number } | null> {
  return page.page.evaluate((id) => {
    const el = document.querySelector<HTMLElement>(`#tiles .tile[data-source="screen"][data-peer-id="${id}"]`);
    if (!el) return null;
    const video = el.querySelector('video')!;
    const camera = document.querySelector<HTMLElement>(`#tiles .tile:not([data-source])[data-peer-id="${id}"]`);
    const q = (video as HTMLVideoElement & { getVideoPlaybackQuality(): { totalVideoFrames: number } }).getVideoPlaybackQuality();
    return { width: el.getBoundingClientRect().width, gridWidth: document.getElementById('tiles')!.getBoundingClientRect().width, cameraWidth: camera?.getBoundingClientRect().width ?? 0, videoWidth: video.videoWidth, frames: q.totalVideoFrames };
  }, peerId);
}

describe('screen share on the call page', () => {
  let server: AvatarServer;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let a: CallPage;
  let b: CallPage;
  let aId: string;
  let capture = 'getDisplayMedia';

  before(async () => {
    server = await startTestServer();
    ({ browser: context, close: closeBrowser } = await launchChromium({ extraArgs: ['--auto-select-desktop-capture-source=Entire screen', '--auto-accept-this-tab-capture', '--enable-usermedia-screen-capturing'] }));
    a = await CallPage.open(context, server.httpUrl, ROOM, 'Ada', { width: 160, height: 120, fps: 10 });
    aId = await a.join();
    b = await CallPage.open(context, server.httpUrl, ROOM, 'Bob', { width: 160, height: 120, fps: 10 });
    await b.join();
    const works = await a.page.evaluate(async () => {
      try {
        const s = await navigator.mediaDevices.getDisplayMedia({ video: true });
        s.getTracks().forEach((t) => t.stop());
        return true;
      } catch {
        return false;
      }
    });
    if (!works) {
      capture = 'canvas captureStream (getDisplayMedia is not available in this headless Chromium)';
      await a.page.evaluate(CANVAS_DISPLAY_MEDIA);
    }
    console.log(`screen capture: ${capture}`);
  });

  after(async () => {
    await closeBrowser?.();
    await server?.close();
  });

  async function share(): Promise<void> {
    await a.page.click('#share-screen');
    await waitFor(async () => (await a.page.textContent('#share-screen')) === 'Stop sharing' || undefined, { timeoutMs: 10_000, what: 'A sharing' });
    await waitFor(async () => {
      const t = await screenTile(b, aId);
      return t && t.videoWidth > 0 && t.frames > 5 ? t : undefined;
    }, { timeoutMs: 15_000, what: 'B decoding A\'s screen' });
  }

  test('B decodes A\'s share in its own tile, shown large across the grid, while A\'s camera tile stays', async () => {
    await share();
    const first = (await screenTile(b, aId))!;
    await new Promise((r) => setTimeout(r, 1000));
    const later = (await screenTile(b, aId))!;
    assert.ok(later.frames > first.frames, `B keeps decoding the share (${first.frames} → ${later.frames} frames)`);
    assert.ok(later.width >= later.gridWidth - 2, `the share spans the grid (${later.width} of ${later.gridWidth} px)`);
    assert.ok(later.cameraWidth > 0 && later.width > later.cameraWidth * 1.5, `larger than A's camera tile (${later.width} vs ${later.cameraWidth} px)`);
    const sources = await b.page.evaluate(() => window.avatarSfu.client()!.remoteTracks.map((t) => `${t.kind}:${t.source ?? 'camera'}`).sort());
    assert.deepEqual(sources, ['audio:camera', 'video:camera', 'video:screen']);
    assert.ok(await screenTile(a, aId), 'A sees its own share too');
  });

  test('the stop button removes the share everywhere (producer closed, consumers closed, tiles gone)', async () => {
    await a.page.click('#share-screen');
    for (const page of [a, b]) await waitFor(async () => ((await screenTile(page, aId)) === null) || undefined, { timeoutMs: 5000, what: `${page.name}'s screen tile gone` });
    await waitFor(async () => (await b.page.evaluate(() => window.avatarSfu.client()!.remoteTracks.filter((t) => t.source === 'screen').length)) === 0 || undefined, { timeoutMs: 5000, what: 'B\'s screen consumer closed' });
    assert.equal(await a.page.textContent('#share-screen'), 'Share screen');
    const cam = await b.tile(aId);
    assert.ok(cam && cam.framesDecoded > 0, 'A\'s camera tile is still there');
  });

  test('the browser\'s own "stop sharing" (the track ends) removes it everywhere too, and sharing again works', async () => {
    await share();
    // What the browser's "Stop sharing" bar does: the capture track ends.
    await a.page.evaluate(() => {
      const pc = window.avatarSfu.client()!.sendPeerConnection!;
      const id = window.avatarSfu.client()!.screenShareProducerId;
      const sender = pc.getSenders().find((s) => s.track && s.track.kind === 'video' && s.track.label !== '' && s.track.readyState === 'live' && s.track.getSettings().displaySurface !== undefined) ?? pc.getSenders().filter((s) => s.track?.kind === 'video').pop();
      if (!id || !sender?.track) throw new Error('no screen track');
      sender.track.stop();
      sender.track.dispatchEvent(new Event('ended'));
    });
    for (const page of [a, b]) await waitFor(async () => ((await screenTile(page, aId)) === null) || undefined, { timeoutMs: 5000, what: `${page.name}'s screen tile gone after the track ended` });
    assert.equal(await a.page.textContent('#share-screen'), 'Share screen');
  });
});
