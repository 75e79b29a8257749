/**
 * Process lifetime of a benchmark run: whatever ends the bench, what it started ends too.
 *
 * - Teardowns (`onTeardown`: stop the server, close Chromium, remove temp dirs) run once on SIGINT,
 *   SIGTERM, SIGHUP and, with `installFatalHandlers` (bench/run.ts), on uncaught exceptions and
 *   unhandled rejections; then the process exits non-zero (130, 143, 129, 1) after telling `setFailureReporter`'s
 *   reporter why (run.ts prints `{"suite":…,"error":…}` as the last stdout line with --json).
 * - A SIGKILLed bench runs no code at all, so every child also watches its parent on its own:
 *   Node children we start (the server, the bench re-executed in a network namespace) get
 *   `parentWatchEnv()` and call `exitWithParent` (a poll of getppid(): it survives the
 *   unshare → sh → node exec chain, needs no file descriptor kept open and no native code);
 *   avatar workers follow the server through their IPC channel; Chromium (playwright-core) exits
 *   when its DevTools pipe closes; ffmpeg writes into a pipe and dies of EPIPE/SIGPIPE.
 *
 * No dependencies beyond node: it is also preloaded into the server (bench/exit-with-parent.ts).
 */

/** Pid the child expects as its parent; read (and removed from the environment) by `exitWithParent`. */
export const PARENT_PID_ENV = 'AVATAR_SFU_EXIT_WITH_PARENT';
const PARENT_POLL_MS = 200;
const HARD_EXIT_MS = 15_000;

/** Environment that makes a child started by this process call `onGone` when this process ends. */
export function parentWatchEnv(): Record<string, string> {
  return { [PARENT_PID_ENV]: String(process.pid) };
}

/**
 * When the environment names an expected parent (`parentWatchEnv` of the process that started us),
 * call `onGone` once as soon as our parent is another process (it ended and we were reparented; also
 * checked at once, in case it ended while we started). The variable is removed from `process.env` so
 * our own children do not inherit it. The poll does not keep the process alive. Returns whether a
 * parent is watched.
 */
export function exitWithParent(onGone: () => void, env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env[PARENT_PID_ENV];
  delete env[PARENT_PID_ENV];
  const expected = Number(raw);
  if (!raw || !Number.isInteger(expected) || expected <= 0) return false;
  let fired = false;
  const timer = setInterval(() => check(), PARENT_POLL_MS);
  timer.unref();
  const check = (): void => {
    if (fired || process.ppid === expected) return;
    fired = true;
    clearInterval(timer);
    onGone();
  };
  check();
  return true;
}

// ---------------------------------------------------------------- teardown on every exit path

const teardowns = new Set<() => Promise<void>>();
let forwardTo: { kill(signal: NodeJS.Signals): boolean } | undefined;
let exiting = false;
let signalsInstalled = false;
let reporter: ((reason: string) => void) | undefined;

function write(line: string): void {
  try {
    process.stderr.write(`bench: ${line}\n`);
  } catch {
    // stderr gone with the terminal
  }
}

/**
 * Run `fn` (stop the server, close Chromium, …) when the bench ends abnormally: SIGINT, SIGTERM, and
 * with `installFatalHandlers` uncaught exceptions and unhandled rejections. Suites still clean up in
 * their own `finally` on the normal path. Returns the unregister function.
 */
export function onTeardown(fn: () => Promise<void>): () => void {
  installSignalHandlers();
  teardowns.add(fn);
  return () => void teardowns.delete(fn);
}

/** Who hears why the bench failed (once), before the teardowns run: run.ts prints the JSON error line. */
export function setFailureReporter(fn: (reason: string) => void): void {
  reporter = fn;
}

/** Tell the reporter (once), run every teardown (at most 15 s) and exit with `code`. */
export function teardownAndExit(code: number, reason: string): void {
  if (exiting) return;
  exiting = true;
  try {
    reporter?.(reason);
  } catch {
    // stdout gone: nothing more to tell
  }
  if (teardowns.size > 0) write(`${reason}: stopping what the benchmark started`);
  const hard = setTimeout(() => process.exit(code), HARD_EXIT_MS);
  const fns = [...teardowns];
  teardowns.clear();
  void Promise.allSettled(fns.map(async (fn) => fn())).finally(() => {
    clearTimeout(hard);
    process.exit(code);
  });
}

/** Whether the bench is already on its way out (teardowns running). */
export function isExiting(): boolean {
  return exiting;
}

/**
 * While `child` runs (the bench re-executed in a network namespace), SIGINT and SIGTERM are passed to
 * it instead: it tears down and reports, and its exit code becomes ours. Returns the undo function.
 */
export function forwardSignals(child: { kill(signal: NodeJS.Signals): boolean }): () => void {
  installSignalHandlers();
  forwardTo = child;
  return () => {
    if (forwardTo === child) forwardTo = undefined;
  };
}

const SIGNALS = { SIGINT: [130, 'interrupted by SIGINT'], SIGTERM: [143, 'terminated by SIGTERM'], SIGHUP: [129, 'hung up (SIGHUP)'] } as const;

function onSignal(signal: keyof typeof SIGNALS): void {
  if (forwardTo) {
    forwardTo.kill(signal);
    return;
  }
  // A Ctrl-C reaches a netns-wrapped bench twice (terminal and forwarded by the parent): the second
  // copy finds `exiting` set and is ignored.
  const [code, reason] = SIGNALS[signal];
  teardownAndExit(code, reason);
}

/**
 * SIGINT, SIGTERM and SIGHUP tear down and exit. SIGHUP too because playwright-core, once it has
 * launched Chromium, listens to it (closing the browser), which would otherwise leave the bench
 * running without its browser when its terminal goes away.
 */
function installSignalHandlers(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const signal of Object.keys(SIGNALS) as (keyof typeof SIGNALS)[]) process.on(signal, () => onSignal(signal));
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Uncaught exceptions and unhandled rejections tear down, report and exit 1 (bench/run.ts). */
export function installFatalHandlers(): void {
  installSignalHandlers();
  process.on('uncaughtException', (err) => {
    write(`uncaught exception: ${(err as Error)?.stack ?? String(err)}`);
    teardownAndExit(1, `uncaught exception: ${describe(err)}`);
  });
  process.on('unhandledRejection', (reason) => {
    write(`unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`);
    teardownAndExit(1, `unhandled rejection: ${describe(reason)}`);
  });
}
