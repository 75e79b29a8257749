import os from 'node:os'; import path from 'node:path'; import fs from 'node:fs';
import { launchChromium } from '../test/helpers/browser.ts';
import { CallPage } from '../test/helpers/callPage.ts';
import { startServerProcess } from './keypoint-util.ts';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kpramp-'));
const server = await startServerProcess({ AVATAR_WORKERS: '0' }, path.join(tmp, 'data'), (l) => console.error(l));
const { browser, close } = await launchChromium({ fakeVideo: '/tmp/avatar-sfu-driving/driving-00cd20587de324ce-480-30x180.y4m' });
try {
  const v = await CallPage.open(browser, server.url, 'r', 'cam', { width: 480, height: 480, fps: 30 });
  await v.join().catch(async (e) => { console.log("ERR", await v.page.textContent("#error"), await v.page.textContent("#status")); throw e; });
  let prev = 0, prevT = 0;
  for (let i = 0; i < 25; i++) {
    const s = await v.page.evaluate(async () => {
      const o: Record<string, unknown> = { now: performance.now() };
      (await window.avatarSfu.client()?.sendPeerConnection?.getStats())?.forEach((s: Record<string, unknown>) => {
        if (s['type'] === 'outbound-rtp' && s['kind'] === 'video') { o.bytes = s['bytesSent']; o.target = s['targetBitrate']; o.q = s['qualityLimitationReason']; o.fps = s['framesPerSecond']; o.w = s['frameWidth']; }
        if (s['type'] === 'candidate-pair' && s['nominated']) o.avail = s['availableOutgoingBitrate'];
      });
      return o;
    });
    const b = Number(s.bytes ?? 0), t = Number(s.now);
    console.log(i * 2, 's', 'kbps', prevT ? ((b - prev) * 8 / (t - prevT)).toFixed(0) : '-', 'target', s.target, 'avail', s.avail, s.q, s.fps, s.w);
    prev = b; prevT = t;
    await new Promise((r) => setTimeout(r, 2000));
  }
} finally { await close(); await server.stop(); }
process.exit(0);
