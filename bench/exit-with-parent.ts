/**
 * Preloaded into the server a benchmark starts (`node --import tsx --import bench/exit-with-parent.ts
 * server/src/main.ts`, see serverProcess.ts): when the bench is gone, even SIGKILLed, the server gets
 * SIGTERM from itself, so it shuts down as usual (and stops its avatar workers); a hard exit after
 * 10 s in case that hangs.
 */
import { exitWithParent } from './lifecycle.ts';

exitWithParent(() => {
  process.kill(process.pid, 'SIGTERM');
  setTimeout(() => process.exit(1), 10_000).unref();
});
