/**
 * A personal avatar from the browser: Chromium records a clip from its (fake) camera playing a real
 * face clip, tracks it with the page's face engine, uploads it with the identity's owner key, and
 * follows the training job over server-sent events until the identity has a Gaussian head (a short
 * training configuration). A clip without a face is refused in the page, before any upload.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { makeDrivingVideo } from '../helpers/drivingVideo.ts';
import { startTestServer } from '../helpers/server.ts';
import type { AvatarServer } from '../../server/src/server.ts';
import type { PersonalRunResult } from './personal-avatar.page.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PHOTO = path.join(root, 'test/fixtures/astronaut.png');

describe('personal avatar: record in the browser, train on the server', () => {
  let pageDir: string;
  let server: AvatarServer;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let page: Page;
  let identityId: string;
  let ownerKey: string;
  const pageErrors: string[] = [];

  before(async () => {
    const clip = await makeDrivingVideo({ frames: 180, fps: 30, size: 480 });
    pageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-personal-page-'));
    await build({
      entryPoints: { page: path.join(root, 'test/e2e/personal-avatar.page.ts') },
      outdir: pageDir, entryNames: '[name]', chunkNames: 'chunks/[name]-[hash]', bundle: true, splitting: true,
      format: 'esm', platform: 'browser', target: ['chrome100'], minify: true, logLevel: 'warning',
    });
    fs.writeFileSync(path.join(pageDir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>personal avatar test</title><link rel="icon" href="data:,"><script type="module" src="page.js"></script>');
    server = await startTestServer({}, { CLIENT_DIR: pageDir, AVATAR_TRAINING_ITERATIONS: '30', AVATAR_TRAINING_GAUSSIANS: '2000', AVATAR_TRAINING_SIZE: '128', AVATAR_TRAINING_THREADS: '1' });
    const res = await fetch(`${server.httpUrl}/api/identities`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: fs.readFileSync(PHOTO) });
    ({ identityId, ownerKey } = (await res.json()) as { identityId: string; ownerKey: string });
    ({ browser: context, close: closeBrowser } = await launchChromium({ fakeVideo: clip.path }));
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${server.httpUrl}/`);
    await page.waitForFunction(() => 'personalTest' in window, undefined, { timeout: 30_000 });
  });

  after(async () => {
    await closeBrowser?.();
    await server?.close();
    if (pageDir) fs.rmSync(pageDir, { recursive: true, force: true });
  });

  test('the page records and tracks a clip, uploads it, follows the job to done, and the identity gets a Gaussian head', async (t) => {
    const r = (await page.evaluate(([id, key]) => window.personalTest.run(id!, key!, 3, 12), [identityId, ownerKey])) as PersonalRunResult;
    t.diagnostic(`grabbed ${r.grabbed} frames in ${Math.round(r.recordMs)} ms (recording + tracking), face in ${r.kept}, upload ${(r.bytes / 1024).toFixed(0)} KiB; job ${r.final.state}, held-out PSNR ${r.final.heldOutPsnr?.toFixed(2)} dB; ${r.updates.length} updates`);
    assert.deepEqual(pageErrors, []);
    assert.equal(r.grabbed, 36);
    assert.ok(r.kept >= 0.9 * r.grabbed, `the face was found in ${r.kept} of ${r.grabbed} frames`);
    assert.equal(r.final.state, 'done', JSON.stringify(r.final.error));
    assert.ok(r.updates.some((u) => u.state === 'training' && u.progress > 0 && u.progress < 1), 'progress was followed');
    assert.ok(r.final.heldOutPsnr! > 12, `held-out PSNR ${r.final.heldOutPsnr}`);
    assert.ok((await server.identities.assetKinds(identityId)).includes('gaussian-head'), 'the identity carries the trained head');
  });

  test('a clip without a face is refused in the page with a clear error, and nothing is uploaded', async () => {
    const before = server.training.list(identityId).length;
    const err = await page.evaluate(() => window.personalTest.faceless());
    assert.ok(err, 'recording a faceless stream failed');
    assert.equal(err.code, 'NO_FACE');
    assert.match(err.message, /No face was found/);
    assert.equal(server.training.list(identityId).length, before, 'no job was created');
  });
});
