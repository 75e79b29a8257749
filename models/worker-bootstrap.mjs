// Entry of worker threads whose code is TypeScript: Node 20 workers do not inherit the parent's
// `--import tsx` loader (and `execArgv: ['--import', 'tsx']` does not help for a .ts entry), so
// tsx is registered here, then the real entry (workerData.entry, a file: URL) is imported.
import { workerData } from 'node:worker_threads';

const entry = workerData?.entry;
if (typeof entry !== 'string') throw new Error('worker-bootstrap.mjs: workerData.entry (file URL) is required');
if (/\.[cm]?tsx?$/.test(new URL(entry).pathname)) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(entry);
