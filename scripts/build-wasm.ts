/**
 * `npm run build:wasm`: compiles the AssemblyScript kernels (models/gaussian/wasm/*.asc.ts) to the
 * committed .wasm files next to them (AssemblyScript is a pinned devDependency; the output is
 * deterministic, and test/unit/gaussian-wasm.test.ts checks that the committed files are this build).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const WASM_DIR = path.join(ROOT, 'models/gaussian/wasm');

/** The asc arguments for one kernel: optimised, SIMD, no runtime, no assertions, exported memory. */
export function ascArgs(source: string, out: string): string[] {
  return [source, '-O3', '--runtime', 'stub', '--enable', 'simd', '--noAssert', '--initialMemory', '1', '-o', out];
}

/** Compiles `source` to `out`; throws with asc's output on failure. */
export function compileKernel(source: string, out: string): void {
  const asc = path.join(ROOT, 'node_modules/assemblyscript/bin/asc.js');
  if (!fs.existsSync(asc)) throw new Error('AssemblyScript is not installed (npm ci installs the devDependencies)');
  const r = spawnSync(process.execPath, [asc, ...ascArgs(source, out)], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`asc failed for ${path.relative(ROOT, source)}:\n${r.stdout}${r.stderr}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const f of fs.readdirSync(WASM_DIR).filter((n) => n.endsWith('.asc.ts'))) {
    const out = path.join(WASM_DIR, f.replace(/\.asc\.ts$/, '.wasm'));
    compileKernel(path.join(WASM_DIR, f), out);
    process.stdout.write(`${path.relative(ROOT, out)}: ${fs.statSync(out).size} bytes\n`);
  }
}
