/**
 * Static vendor assets the browser face tracker needs, served from OUR server (never a CDN):
 *   /vendor/human/models/<file>   @vladmandic/human's model files (*.json graph + *.bin weights)
 *   /vendor/tfjs-wasm/<file>      @tensorflow/tfjs-backend-wasm's *.wasm binaries
 *
 * Package directories are resolved from this module (createRequire), never from the current
 * directory. Only plain files directly inside those directories with an allowed extension are
 * served (no directory listing, no traversal, no dotfiles); anything else is a JSON 404.
 * Responses carry long cache headers: the files change only with the package version, and the
 * version is part of the ETag so an upgrade revalidates.
 *
 * Mount with `app.use(createVendorRouter())` before the client's static files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import express, { type Router, type Request, type Response, type NextFunction } from 'express';
import { errorBody } from '../../../protocol/src/signaling.ts';

const require = createRequire(import.meta.url);

export interface VendorDirs {
  /** @vladmandic/human/models */
  humanModels: string;
  /** @tensorflow/tfjs-backend-wasm/dist */
  tfjsWasm: string;
  humanVersion: string;
  tfjsWasmVersion: string;
}

/** Walk up from a resolved entry file to the package root (the directory with package.json of that name). */
function packageRoot(entry: string, name: string): string {
  let dir = path.dirname(entry);
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if ((JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === name) return dir;
      } catch {
        // keep walking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`package root of ${name} not found above ${entry}`);
    dir = up;
  }
}

function version(root: string): string {
  return (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

let cached: VendorDirs | null = null;

export function vendorDirs(): VendorDirs {
  if (cached) return cached;
  // require.resolve('@vladmandic/human') gives dist/human.node.js (the "node"/"require" export)
  const humanRoot = packageRoot(require.resolve('@vladmandic/human'), '@vladmandic/human');
  const wasmRoot = packageRoot(require.resolve('@tensorflow/tfjs-backend-wasm'), '@tensorflow/tfjs-backend-wasm');
  cached = {
    humanModels: path.join(humanRoot, 'models'),
    tfjsWasm: path.join(wasmRoot, 'dist'),
    humanVersion: version(humanRoot),
    tfjsWasmVersion: version(wasmRoot),
  };
  return cached;
}

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json; charset=utf-8',
  '.bin': 'application/octet-stream',
  '.wasm': 'application/wasm',
};

/** File names we serve: one path segment, letters/digits/._- only, no leading dot. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface VendorRouterOptions {
  /** Cache-Control max-age in seconds (default one year, immutable) */
  maxAgeS?: number;
}

/** Same body shape as the app's other errors (ErrorBody; the API's 404s use code BAD_REQUEST too). */
function notFound(res: Response, what: string): void {
  res.setHeader('Cache-Control', 'no-store');
  res.status(404).json({ error: errorBody('NOT_FOUND', `no such vendor file: ${what}`) });
}

function serveDir(dir: string, exts: readonly string[], tag: string, maxAgeS: number) {
  const root = path.resolve(dir);
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const name = String(req.params['file'] ?? '');
    const ext = path.extname(name).toLowerCase();
    if (!SAFE_NAME.test(name) || !exts.includes(ext)) return notFound(res, name);
    const file = path.join(root, name);
    if (path.dirname(file) !== root) return notFound(res, name);
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      return notFound(res, name);
    }
    if (!st.isFile()) return notFound(res, name);
    const etag = `"${tag}-${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    res.setHeader('Content-Type', CONTENT_TYPES[ext] ?? 'application/octet-stream');
    res.setHeader('Cache-Control', `public, max-age=${maxAgeS}, immutable`);
    res.setHeader('ETag', etag);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    if (req.headers['if-none-match'] === etag) {
      res.status(304).end();
      return;
    }
    res.setHeader('Content-Length', String(st.size));
    if (req.method === 'HEAD') {
      res.status(200).end();
      return;
    }
    const stream = fs.createReadStream(file);
    stream.on('error', (err) => {
      if (!res.headersSent) next(err);
      else res.destroy(err);
    });
    stream.pipe(res);
  };
}

/**
 * Router serving /vendor/human/models/:file and /vendor/tfjs-wasm/:file; every other /vendor path
 * (including the directories themselves) is a JSON 404.
 */
export function createVendorRouter(opts: VendorRouterOptions = {}): Router {
  const dirs = vendorDirs();
  const maxAgeS = opts.maxAgeS ?? 365 * 24 * 3600;
  const router = express.Router({ caseSensitive: true, strict: true });
  router.get('/vendor/human/models/:file', serveDir(dirs.humanModels, ['.json', '.bin'], `human${dirs.humanVersion}`, maxAgeS));
  router.get('/vendor/tfjs-wasm/:file', serveDir(dirs.tfjsWasm, ['.wasm'], `tfjswasm${dirs.tfjsWasmVersion}`, maxAgeS));
  router.use('/vendor', (req, res) => notFound(res, req.path));
  return router;
}
