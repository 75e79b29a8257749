/**
 * A page that vanishes (its browser process killed, no goodbye) is gone from the other page once the
 * reconnect grace period ends: first "reconnecting", then no tile, and the room has one participant.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer } from '../helpers/server.ts';
import { chromiumPath, launchChromium } from '../helpers/browser.ts';
import { CallPage } from '../helpers/callPage.ts';
import { waitFor } from '../helpers/wait.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const GRACE_MS = 2000;

describe('a page that vanishes', () => {
  let server: AvatarServer;
  const closers: (() => Promise<void>)[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-vanish-'));

  before(async () => {
    server = await startTestServer({}, { RECONNECT_GRACE_MS: String(GRACE_MS) });
  });
  after(async () => {
    for (const c of closers) await c();
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a page whose browser is killed is gone from the other page within the reconnect grace period', async () => {
    // B's browser records its process id (exec keeps it), so the test can kill exactly that process.
    const pidFile = path.join(dir, 'chromium.pid');
    const wrapper = path.join(dir, 'chromium');
    fs.writeFileSync(wrapper, `#!/bin/sh\necho $$ > '${pidFile}'\nexec '${chromiumPath()}' "$@"\n`, { mode: 0o755 });
    const a = await launchChromium();
    closers.push(a.close);
    const b = await launchChromium({ executablePath: wrapper });
    closers.push(b.close);
    const pageA = await CallPage.open(a.browser, server.httpUrl, 'vanish', 'ada');
    await pageA.join();
    const pageB = await CallPage.open(b.browser, server.httpUrl, 'vanish', 'bob');
    const idB = await pageB.join();
    await waitFor(async () => ((await pageA.tile(idB))?.framesDecoded ?? 0) > 5, { timeoutMs: 20_000, what: 'A decoding B' });

    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    assert.ok(pid > 1, 'B\'s browser pid');
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    let sawReconnecting = false;
    await waitFor(async () => {
      const connection = await pageA.page.evaluate((id) => document.querySelector<HTMLElement>(`#tiles .tile[data-peer-id="${id}"]`)?.dataset['connection'] ?? null, idB);
      if (connection === 'reconnecting') sawReconnecting = true;
      return !(await pageA.stats()).visibleTiles.includes(idB);
    }, { timeoutMs: GRACE_MS + 10_000, intervalMs: 100, what: 'B\'s tile gone from A' });
    const goneMs = Date.now() - t0;
    console.log(`vanished page: gone from the other page ${goneMs} ms after its browser was killed (grace ${GRACE_MS} ms)`);
    assert.ok(sawReconnecting, 'A showed B as reconnecting first');
    assert.ok(goneMs <= GRACE_MS + 3000, `gone within the grace period (+3 s): ${goneMs} ms`);
    assert.equal(server.rooms.rooms.get('vanish')?.participants.length, 1);
  });
});
