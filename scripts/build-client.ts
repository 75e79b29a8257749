/**
 * Bundles the browser client into dist/client (esbuild); copies the static files.
 *
 * ESM with code splitting: app.js is the call page's entry (loaded by index.html as
 * <script type="module">); anything imported dynamically (the face tracker: Human + tfjs, see
 * client/src/avatar/loadFaceTracker.ts) becomes a chunk under chunks/ that is only fetched when
 * used. Stale chunks of earlier builds are removed first (their names carry content hashes).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist/client');

export async function buildClient({ minify = true }: { minify?: boolean } = {}): Promise<string> {
  await fs.mkdir(out, { recursive: true });
  await fs.rm(path.join(out, 'chunks'), { recursive: true, force: true });
  await build({
    entryPoints: { app: path.join(root, 'client/src/main.ts') },
    outdir: out,
    entryNames: '[name]',
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    // ES modules + dynamic import() + import.meta: every browser with <script type="module"> and
    // requestVideoFrameCallback (the tracker) qualifies
    target: ['chrome100', 'firefox100', 'safari15'],
    sourcemap: true,
    minify,
    logLevel: 'warning',
  });
  for (const file of ['index.html', 'styles.css']) await fs.copyFile(path.join(root, 'client', file), path.join(out, file));
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = await buildClient();
  process.stdout.write(`client built into ${path.relative(process.cwd(), dir) || dir}\n`);
}
