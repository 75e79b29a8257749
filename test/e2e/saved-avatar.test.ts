/**
 * "Use my saved avatar" in Chromium: the photo is uploaded once, remembered in the browser, reused at
 * the next join without uploading it again, and deleted by its owner.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { waitFor } from '../helpers/wait.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const PHOTO = fileURLToPath(new URL('../fixtures/astronaut.png', import.meta.url));
const ROOM = 'saved avatar';

let server: AvatarServer;
let context: BrowserContext;
let closeBrowser: () => Promise<void>;

before(async () => {
  // No workers: joining as an avatar is all this needs (the avatar waits for a renderer).
  server = await startTestServer({}, { AVATAR_WORKERS: '0' });
  ({ browser: context, close: closeBrowser } = await launchChromium());
});

after(async () => {
  await closeBrowser?.();
  await server?.close();
});

/** Requests the page makes to /api/identities, as "METHOD path". */
function recordIdentityRequests(page: Page): string[] {
  const seen: string[] = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/identities') && !u.pathname.endsWith('/photo')) seen.push(`${r.method()} ${u.pathname}`);
  });
  return seen;
}

async function joinAsVoiceAvatar(page: Page, photo: string | null): Promise<string> {
  await page.check('input[name="mode"][value="voice"]');
  if (photo) await page.setInputFiles('#photo', photo);
  await page.click('#join');
  await page.waitForSelector('#call:not([hidden])', { timeout: 60_000 });
  const peerId = await page.evaluate(() => window.avatarSfu.client()?.peerId);
  const owner = server.rooms.rooms.get(ROOM)?.peers.get(peerId!);
  assert.ok(owner?.attributes.avatar, 'joined as an avatar');
  // the identity is the server's to know: PeerInfo no longer names it
  const session = server.avatars.sessionOf(owner);
  assert.ok(session, 'joined as an avatar');
  return session.identityId;
}

async function leave(page: Page): Promise<void> {
  await page.click('#leave');
  await page.waitForSelector('#join-form:not([hidden])');
}

test('the photo is uploaded once; the next join offers "use my saved avatar" and reuses it without uploading; its owner can delete it', async () => {
  const page = await context.newPage();
  const requests = recordIdentityRequests(page);
  await page.goto(`${server.httpUrl}/?room=${encodeURIComponent(ROOM)}&name=ada`);
  assert.equal(await page.isHidden('#saved-avatar'), true, 'nothing saved yet');
  const first = await joinAsVoiceAvatar(page, PHOTO);
  assert.deepEqual(requests.filter((r) => r.startsWith('POST')), ['POST /api/identities']);
  await leave(page);

  // A new visit: the saved avatar is offered (after checking the server still has it) and used.
  await page.reload();
  await page.check('input[name="mode"][value="voice"]');
  await page.waitForSelector('#saved-avatar:not([hidden])', { timeout: 10_000 });
  assert.equal(await page.isChecked('#use-saved'), true);
  const second = await joinAsVoiceAvatar(page, null);
  assert.equal(second, first, 'the same identity');
  assert.deepEqual(requests.filter((r) => r.startsWith('POST')), ['POST /api/identities'], 'no second upload');
  await leave(page);

  // Delete: gone on the server, and no longer offered.
  await page.waitForSelector('#saved-avatar:not([hidden])', { timeout: 10_000 });
  await page.click('#delete-saved');
  await page.waitForSelector('#saved-avatar', { state: 'hidden', timeout: 10_000 });
  assert.ok(requests.includes(`DELETE /api/identities/${first}`), requests.join(', '));
  await waitFor(async () => !(await server.identities.has(first)), { timeoutMs: 5000, what: 'identity deleted on the server' });
  assert.equal((await fetch(`${server.httpUrl}/api/identities/${first}`)).status, 404);
  assert.equal(await page.evaluate(() => localStorage.getItem('avatar-sfu.identities')), '[]');
  await page.close();
});
