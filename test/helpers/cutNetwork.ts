/**
 * A browser in a network namespace of its own, joined to the test's namespace by a veth pair, so a
 * test can cut its network (take the link down) while the server and other browsers carry on.
 * Needs root (npm test runs as root in a private namespace); names are unique per process and call.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromiumPath } from './browser.ts';

let counter = 0;

export interface CutNetwork {
  /** Address of the test's end (the server listens there). */
  hostIp: string;
  /** Address of the browser's end. */
  peerIp: string;
  /** An executable that runs Debian's Chromium inside the namespace (launchChromium executablePath). */
  chromium: string;
  down(): void;
  up(): void;
  close(): void;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createCutNetwork(): CutNetwork {
  if (process.getuid?.() !== 0) throw new Error('the network-cut test needs root (run it with `npm test -- test/e2e/network-cut.test.ts`)');
  const n = counter++;
  const tag = `${process.pid % 100000}x${n}`;
  const ns = `avsfu-cut-${tag}`;
  const host = `vh${tag}`.slice(0, 15);
  const peer = `vp${tag}`.slice(0, 15);
  const third = (process.pid + n) % 250;
  const hostIp = `10.231.${third}.1`;
  const peerIp = `10.231.${third}.2`;
  ip('netns', 'add', ns);
  try {
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
    ip('link', 'set', peer, 'netns', ns);
    ip('addr', 'add', `${hostIp}/30`, 'dev', host);
    ip('link', 'set', host, 'up');
    ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
    ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${peerIp}/30`, 'dev', peer);
    ip('netns', 'exec', ns, 'ip', 'link', 'set', peer, 'up');
    ip('netns', 'exec', ns, 'ip', 'route', 'add', 'default', 'via', hostIp);
  } catch (err) {
    try { ip('netns', 'del', ns); } catch { /* already gone */ }
    throw err;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-sfu-cut-'));
  const chromium = path.join(dir, 'chromium-in-netns');
  fs.writeFileSync(chromium, `#!/bin/sh\nexec ip netns exec '${ns}' '${chromiumPath()}' "$@"\n`, { mode: 0o755 });
  let closed = false;
  return {
    hostIp,
    peerIp,
    chromium,
    down: () => ip('link', 'set', host, 'down'),
    up: () => ip('link', 'set', host, 'up'),
    close: () => {
      if (closed) return;
      closed = true;
      try { ip('link', 'del', host); } catch { /* gone with the namespace */ }
      try { ip('netns', 'del', ns); } catch { /* already gone */ }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
