/**
 * Pre-join screen and devices in headless Chromium: several fake cameras (Chromium's
 * --use-fake-device-for-media-stream=device-count=3), switching mid-call with replaceTrack, remembered
 * choices, and joining without devices when access is denied.
 *
 * Chromium's fake cameras differ in pixel format: fake_device_0 is I420, fake_device_1 Y16 (a depth
 * format that libwebrtc never encodes: replaceTrack to it sends 0 frames, measured) and fake_device_2
 * MJPEG. The switch therefore goes from fake_device_0 to fake_device_2.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { CallPage } from '../helpers/callPage.ts';
import { waitFor } from '../helpers/wait.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const ROOM = 'devices';

/** The label of the camera track A sends (what the SFU receives). */
const sentCameraLabel = (p: CallPage): Promise<string | undefined> =>
  p.page.evaluate(() => window.avatarSfu.client()?.sendPeerConnection?.getSenders().find((s) => s.track?.kind === 'video')?.track?.label);

async function framesOf(p: CallPage, peerId: string): Promise<number> {
  return (await p.tile(peerId))?.framesDecoded ?? 0;
}

describe('pre-join screen and device choice in headless Chromium', () => {
  let server: AvatarServer;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let a: CallPage;
  let b: CallPage;
  let aId: string;
  let bId: string;

  before(async () => {
    server = await startTestServer();
    ({ browser: context, close: closeBrowser } = await launchChromium({ fakeDeviceCount: 3 }));
  });

  after(async () => {
    await closeBrowser?.();
    await server?.close();
  });

  test('the pre-join screen previews the camera, lists all the fake cameras and shows the microphone level', async () => {
    a = await CallPage.open(context, server.httpUrl, ROOM, 'ada');
    await waitFor(() => a.page.evaluate(() => document.querySelectorAll('#camera-picker option').length === 3), { what: 'three cameras listed' });
    const labels = await a.page.$$eval('#camera-picker option', (os) => os.map((o) => o.textContent));
    assert.deepEqual(labels, ['fake_device_0', 'fake_device_1', 'fake_device_2']);
    await waitFor(() => a.page.evaluate(() => (document.querySelector<HTMLVideoElement>('#preview')?.videoWidth ?? 0) > 0), { what: 'the preview showing the camera' });
    // Chromium's fake microphone beeps: the meter rises above silence at some point.
    await waitFor(() => a.page.evaluate(() => Number(document.querySelector<HTMLElement>('#mic-level')?.dataset['level']) > 0.2), { what: 'the mic level meter moving' });
  });

  test('switching to another camera mid-call replaces the sent track, and the other page keeps decoding', async () => {
    aId = await a.join();
    b = await CallPage.open(context, server.httpUrl, ROOM, 'bob');
    bId = await b.join();
    await waitFor(async () => (await framesOf(b, aId)) > 10, { what: 'bob decoding ada' });
    assert.equal(await sentCameraLabel(a), 'fake_device_0');
    const second = await a.page.$eval('#call-camera option:nth-child(3)', (o) => (o as HTMLOptionElement).value);
    // A capture only delivers frames to the page in front (headless Chromium throttles hidden tabs' new captures).
    await a.page.bringToFront();
    await a.page.selectOption('#call-camera', second);
    await waitFor(async () => (await sentCameraLabel(a)) === 'fake_device_2', { what: 'ada sending the other camera' });
    // The same transceiver: no renegotiation, and bob's decoder goes on.
    const senders = await a.page.evaluate(() => window.avatarSfu.client()?.sendPeerConnection?.getSenders().length);
    assert.equal(senders, 2, 'still one audio and one video sender');
    const rates = await b.decodeRates(2000);
    assert.ok((rates.get(aId)?.fps ?? 0) >= 5, `bob decodes ada's other camera at ${rates.get(aId)?.fps.toFixed(1)} fps`);
    const local = await a.page.evaluate(() => window.avatarSfu.localTracks());
    assert.equal(local.filter((t) => t.kind === 'video' && t.readyState === 'live').length, 1, 'the first camera was released');
    assert.deepEqual([...a.errors, ...b.errors], []);
    void bId;
  });

  test('the camera picked during the call is the one the pre-join screen selects after a reload', async () => {
    const second = await a.page.$eval('#call-camera', (s) => (s as HTMLSelectElement).value);
    await a.leave();
    await a.page.reload();
    await waitFor(() => a.page.evaluate(() => document.querySelectorAll('#camera-picker option').length === 3), { what: 'cameras listed after reload' });
    await waitFor(async () => (await a.page.$eval('#camera-picker', (s) => (s as HTMLSelectElement).value)) === second, { what: 'the other camera preselected' });
    await waitFor(() => a.page.evaluate(() => (document.querySelector<HTMLVideoElement>('#preview')?.srcObject as MediaStream | null)?.getVideoTracks()[0]?.label === 'fake_device_2'), {
      what: 'the preview showing the other camera',
    });
    aId = await a.join();
    assert.equal(await sentCameraLabel(a), 'fake_device_2', 'the call starts with the remembered camera');
  });

  test('with camera and microphone denied, joining is blocked with a clear message until "join without camera and microphone" is ticked', async () => {
    const page = await context.newPage();
    await page.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
    });
    await page.goto(`${server.httpUrl}/?${new URLSearchParams({ room: ROOM, name: 'cyd' })}`);
    const c = await page.waitForSelector('#prejoin-message:not([hidden])');
    assert.match((await c.textContent()) ?? '', /denied.*join without camera and microphone/s);
    await page.click('#join');
    await page.waitForSelector('#error:not([hidden])');
    assert.match((await page.textContent('#error')) ?? '', /denied/);
    assert.equal(await page.isVisible('#call'), false, 'not joined');
    await page.check('#no-devices');
    await page.waitForSelector('#prejoin-message', { state: 'hidden' });
    await page.click('#join');
    await page.waitForSelector('#call:not([hidden])');
    const cydId = await page.evaluate(() => window.avatarSfu.client()?.peerId);
    assert.ok(cydId);
    // Cyd watches: it receives bob's video, and bob sees cyd's tile (with no video).
    await waitFor(async () => ((await page.evaluate(() => window.avatarSfu.remoteStats())) as { tiles: { peerId: string; framesDecoded: number }[] }).tiles.some((t) => t.peerId === bId && t.framesDecoded > 5), {
      what: 'cyd decoding bob',
    });
    await waitFor(() => b.page.evaluate((id) => Boolean(document.querySelector(`.tile[data-peer-id="${id}"]`)), cydId), { what: "cyd's tile on bob's page" });
    assert.equal(await page.isDisabled('#toggle-mic'), true, 'nothing to mute');
  });
});
