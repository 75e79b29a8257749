/**
 * Benchmark CLI: `npm run bench -- <suite> [--json] [suite options]`.
 *
 * A human-readable summary goes to stdout (progress to stderr); with `--json` the LAST line of stdout
 * is exactly one JSON object with the suite's results. Unknown suites and bad options exit with 2.
 *
 * Suites that put WebRTC traffic on the wire (`needsLoopbackNetns`) re-execute the CLI inside a
 * private network namespace that has only `lo` when run as root with `unshare` and `ip` available
 * (like scripts/test.ts), so media can't leave the machine. Set AVATAR_SFU_NO_NETNS=1 to skip that.
 *
 * Failures: an error from the suite, an uncaught exception, an unhandled rejection, SIGINT or SIGTERM
 * stop what the suite started (bench/lifecycle.ts), exit non-zero (1, 130, 143) and, with `--json`,
 * print `{"suite":…,"error":…}` as the last stdout line. Children also end when the bench is
 * SIGKILLed (they watch it); the re-executed bench watches the outer one the same way.
 *
 * Adding a suite: write a module exporting a `Suite` (bench/suite.ts) and add one line to SUITES.
 */
import { spawn, spawnSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { exitWithParent, forwardSignals, installFatalHandlers, isExiting, parentWatchEnv, setFailureReporter, teardownAndExit } from './lifecycle.ts';
import { firefoxNetworkSetup, resolvConfNameservers } from '../test/helpers/firefoxNetwork.ts';
import { UsageError, type OptionSpec, type OptionValues, type Suite } from './suite.ts';

/** Suite registry: name → lazy loader (suites import heavy things only when chosen). */
const SUITES: Record<string, () => Promise<Suite>> = {
  call: async () => (await import('./call.ts')).callSuite,
  keypoint: async () => (await import('./keypoint.ts')).keypointSuite,
  voice: async () => (await import('./voice.ts')).voiceSuite,
  gaussian: async () => (await import('./gaussian.ts')).gaussianSuite,
  'gaussian-call': async () => (await import('./gaussian-call.ts')).gaussianCallSuite,
  /** Test helper (test/e2e/process-lifetime.test.ts): starts what suites start, then waits or fails on purpose. */
  lifetime: async () => (await import('./lifetime.ts')).lifetimeSuite,
};

const COMMON_OPTIONS: OptionSpec = {
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};

function usage(): string {
  return [
    'usage: npm run bench -- <suite> [--json] [suite options]',
    '',
    'suites:',
    ...Object.keys(SUITES).map((s) => `  ${s}`),
    '',
    '  --json   print one JSON object with the results as the last line of stdout',
    '  --help   show the options of a suite: npm run bench -- <suite> --help',
  ].join('\n');
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${usage()}\n`);
  process.exit(2);
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

const NETNS_ENV = 'AVATAR_SFU_BENCH_IN_NETNS';

/**
 * Re-exec this CLI as `unshare -n sh -c 'ip link set lo up && exec "$@"' sh node … run.ts …`; resolves to
 * the exit code. The inner bench watches this process (`parentWatchEnv`) and tears down when it ends,
 * even by SIGKILL. When the inner one is killed by a signal it could not report, this one prints the
 * JSON error line for it.
 */
function reexecInNetns(report: (reason: string) => void, network: 'loopback' | 'firefox'): Promise<number> {
  const setup = network === 'firefox' ? firefoxNetworkSetup(resolvConfNameservers()) : 'ip link set lo up';
  const args = ['-n', 'sh', '-c', `${setup} && exec "$@"`, 'sh', process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)];
  const child = spawn('unshare', args, { stdio: 'inherit', env: { ...process.env, [NETNS_ENV]: '1', ...parentWatchEnv() } });
  // Signals go to the child: it cleans up (Chromium, server), reports and exits; it ignores a second
  // copy of a Ctrl-C that also reached it through the terminal's process group.
  const unforward = forwardSignals(child);
  return new Promise((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`bench: could not start unshare: ${err.message}\n`);
      unforward();
      report(`could not start unshare: ${err.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      unforward();
      if (code !== null) return resolve(code);
      // Killed before it could say anything (SIGKILL, or a signal it does not handle).
      report(`the bench in the network namespace was killed by ${signal}`);
      resolve(128 + (os.constants.signals[signal as NodeJS.Signals] ?? 0));
    });
  });
}

/** Prints, once, why the bench failed: stderr always, the JSON error line on stdout with --json. */
function failureReporter(suite: string, json: boolean): (reason: string) => void {
  let reported = false;
  return (reason) => {
    if (reported) return;
    reported = true;
    if (json) process.stdout.write(`${JSON.stringify({ suite, error: reason })}\n`);
  };
}

async function main(argv: string[]): Promise<number> {
  const [suiteName, ...rest] = argv;
  if (suiteName === undefined) fail('no suite given');
  if (suiteName === '--help' || suiteName === '-h') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (suiteName.startsWith('-')) fail(`expected a suite name before options, got ${suiteName}`);
  const load = Object.hasOwn(SUITES, suiteName) ? SUITES[suiteName] : undefined;
  if (!load) fail(`unknown suite "${suiteName}" (known: ${Object.keys(SUITES).join(', ')})`);
  const suite = await load();

  let values: OptionValues;
  try {
    ({ values } = parseArgs({ args: rest, options: { ...COMMON_OPTIONS, ...suite.options }, strict: true, allowPositionals: false }) as { values: OptionValues });
  } catch (err) {
    fail(`${suite.name}: ${(err as Error).message}`);
  }
  if (values['help']) {
    process.stdout.write([`npm run bench -- ${suite.name} [--json] [options]`, `  ${suite.summary}`, '', ...suite.usage.map((l) => `  ${l}`), ''].join('\n'));
    return 0;
  }
  let parsed: unknown;
  try {
    parsed = suite.parse(values);
  } catch (err) {
    if (err instanceof UsageError) fail(`${suite.name}: ${err.message}`);
    throw err;
  }
  const report = failureReporter(suite.name, values['json'] === true);
  setFailureReporter(report);

  const isRoot = process.getuid?.() === 0;
  if (suite.needsLoopbackNetns && process.env[NETNS_ENV] !== '1' && process.env['AVATAR_SFU_NO_NETNS'] !== '1') {
    if (isRoot && has('unshare') && has('ip')) return reexecInNetns(report, suite.network?.(parsed) ?? 'loopback');
    process.stderr.write('note: not root or no unshare/ip: the benchmark uses the host network (loopback addresses only)\n');
  }

  const log = (line: string): void => void process.stderr.write(`[bench ${suite.name}] ${line}\n`);
  const { result, summary } = await suite.run(parsed, log);
  process.stdout.write(`${summary.join('\n')}\n`);
  if (values['json']) process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

installFatalHandlers();
// Started by another bench (the netns re-exec): end with it, even when it was SIGKILLed.
exitWithParent(() => teardownAndExit(1, 'the parent bench process ended'));
setFailureReporter(failureReporter(process.argv[2] ?? '', process.argv.includes('--json')));
main(process.argv.slice(2)).then(
  (code) => {
    if (!isExiting()) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`bench: failed: ${(err as Error)?.stack ?? String(err)}\n`);
    teardownAndExit(1, err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  },
);
