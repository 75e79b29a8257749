/** Bundles the browser client into dist/client (esbuild); copies the static files. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist/client');

export async function buildClient({ minify = true }: { minify?: boolean } = {}): Promise<string> {
  await fs.mkdir(out, { recursive: true });
  await build({
    entryPoints: [path.join(root, 'client/src/main.ts')],
    outfile: path.join(out, 'app.js'),
    bundle: true,
    format: 'iife',
    platform: 'browser',
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
