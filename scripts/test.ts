/**
 * `npm test`: installs what the suite needs (Debian chromium and firefox-esr for browser tests), builds
 * the client, typechecks, then runs every test/unit and test/e2e file with node's test runner. When run
 * as root with `unshare` available, the runner lives in a private network namespace that has only
 * loopback, so WebRTC traffic in the tests can't leave the machine. The Firefox files (test/e2e/firefox*)
 * run after the others in a private namespace of their own with a veth pair and a default route, which
 * Firefox needs to gather candidates (test/helpers/firefoxNetwork.ts); they are never skipped.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildClient } from './build-client.ts';
import { firefoxNetworkSetup, resolvConfNameservers } from '../test/helpers/firefoxNetwork.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const isRoot = process.getuid?.() === 0;

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): number {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, env: opts.env ?? process.env });
  return r.status ?? 1;
}

function ensureSystemPackages(): void {
  const missing: string[] = [];
  if (!fs.existsSync('/usr/bin/chromium') && !process.env['CHROMIUM_PATH'] && !has('chromium')) missing.push('chromium');
  if (!fs.existsSync('/usr/bin/firefox-esr') && !process.env['FIREFOX_PATH'] && !has('firefox-esr')) missing.push('firefox-esr');
  if (!has('ffmpeg')) missing.push('ffmpeg');
  if (!has('espeak-ng') || !fs.existsSync('/usr/include/espeak-ng/speak_lib.h')) missing.push('espeak-ng', 'libespeak-ng-dev');
  // Audio-to-motion training data: pocketsphinx aligns the real speech clips (test/unit/audio-train).
  if (!has('pocketsphinx_continuous') || !fs.existsSync('/usr/share/pocketsphinx/test/data/librivox') || !fs.existsSync('/usr/share/pocketsphinx/model/en-us')) {
    missing.push('pocketsphinx', 'pocketsphinx-en-us', 'pocketsphinx-testdata');
  }
  if (!has('ip') || !has('unshare')) missing.push('iproute2', 'util-linux');
  if (missing.length === 0) return;
  if (!isRoot) {
    process.stderr.write(`missing system packages: ${missing.join(' ')} (install them with apt-get as root)\n`);
    process.exit(1);
  }
  process.stdout.write(`installing ${missing.join(' ')} with apt-get…\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (run('apt-get', ['update', '-qq'], { env }) !== 0 || run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env }) !== 0) {
    process.stderr.write('apt-get install failed\n');
    process.exit(1);
  }
}

function testFiles(): string[] {
  const only = process.argv.slice(2);
  if (only.length > 0) return only;
  const files: string[] = [];
  for (const dir of ['test/unit', 'test/e2e']) {
    const abs = path.join(root, dir);
    if (!fs.existsSync(abs)) continue;
    for (const f of fs.readdirSync(abs).sort()) if (f.endsWith('.test.ts')) files.push(path.join(dir, f));
  }
  return files;
}

ensureSystemPackages();
await buildClient();
if (run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit']) !== 0) {
  process.stderr.write('typecheck failed\n');
  process.exit(1);
}
// --test-force-exit: native WebRTC objects (@roamhq/wrtc) can keep a finished test file's process alive.
const nodeArgs = ['--import', 'tsx', '--test', '--test-force-exit', '--test-reporter=spec', '--test-concurrency=1'];
const isFirefoxTest = (f: string): boolean => path.basename(f).startsWith('firefox');
const files = testFiles();
const otherFiles = files.filter((f) => !isFirefoxTest(f));
const firefoxFiles = files.filter(isFirefoxTest);
const netns = isRoot && has('unshare') && has('ip') && process.env['AVATAR_SFU_NO_NETNS'] !== '1';
if (!netns) process.stdout.write('note: not root or no unshare: tests use the host network (loopback addresses only; the Firefox tests will fail)\n');

function runTests(list: string[], network: 'loopback' | 'firefox'): number {
  if (list.length === 0) return 0;
  if (!netns) return run(process.execPath, [...nodeArgs, ...list]);
  const setup = network === 'firefox' ? firefoxNetworkSetup(resolvConfNameservers()) : 'ip link set lo up';
  return run('unshare', ['-n', 'sh', '-c', `${setup} && exec "$@"`, 'sh', process.execPath, ...nodeArgs, ...list]);
}

const status = runTests(otherFiles, 'loopback');
const firefoxStatus = runTests(firefoxFiles, 'firefox');
process.exit(status !== 0 ? status : firefoxStatus);
