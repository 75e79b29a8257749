/**
 * Reading and writing asset files (Node only; the format itself is in ./asset.ts).
 *
 * Writes are atomic: the bytes go to a temp file in the target's directory (same filesystem, so
 * rename is atomic), are fsynced, then renamed over the target, and the directory is fsynced so
 * the rename itself survives a crash. A reader therefore sees either the old or the new complete
 * file, never a half-written one, and a failed write leaves the old file untouched.
 */
import { randomBytes } from 'node:crypto';
import fsp, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { AssetFormatError, decodeAsset, inspectAsset, type AssetContents, type AssetExpect } from './asset.ts';

/** default cap for readAssetFile: far above a 30 k-Gaussian model (~2–4 MB), far below harm */
export const DEFAULT_MAX_ASSET_BYTES = 64 * 1024 * 1024;

export interface WriteAssetOptions {
  /**
   * Called after the temp file is fully written and fsynced, before the rename. For tests (to
   * observe the intermediate state or inject a failure); a throw aborts the write like any I/O
   * error: the temp file is removed and the target is left as it was.
   */
  beforeRename?: (tempFile: string) => void | Promise<void>;
}

export interface ReadAssetOptions {
  /** refuse files larger than this (checked with fstat before reading); default 64 MB */
  maxBytes?: number;
}

/**
 * Atomically replace `file` with `bytes`. The bytes are verified first (inspectAsset: structure
 * and CRC), so a file that would not load is never written.
 */
export async function writeAssetFile(file: string, bytes: Uint8Array, options: WriteAssetOptions = {}): Promise<void> {
  if (typeof file !== 'string' || file.length === 0) throw new TypeError('writeAssetFile: file must be a non-empty path');
  if (!(bytes instanceof Uint8Array)) throw new TypeError('writeAssetFile: bytes must be a Uint8Array');
  inspectAsset(bytes);
  const dir = path.dirname(path.resolve(file));
  // unique per process and call, dot-prefixed so directory scans for models skip it
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fh: FileHandle | undefined;
  try {
    fh = await fsp.open(temp, 'wx', 0o644);
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
      done += bytesWritten;
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await options.beforeRename?.(temp);
    await fsp.rename(temp, file);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fsp.rm(temp, { force: true }).catch(() => undefined);
    throw e;
  }
  await syncDirectory(dir);
}

/** make the rename durable; best effort, since some platforms cannot open or fsync a directory */
async function syncDirectory(dir: string): Promise<void> {
  let dh: FileHandle | undefined;
  try {
    dh = await fsp.open(dir, 'r');
    await dh.sync();
  } catch {
    // the rename has happened; durability of the directory entry is all that is at stake
  } finally {
    await dh?.close().catch(() => undefined);
  }
}

/**
 * Read and fully validate an asset file (see decodeAsset). The size is checked on the open file
 * descriptor before any byte is read, so a huge or hostile file costs nothing; an asset larger
 * than the cap is TOO_LARGE.
 */
export async function readAssetFile(file: string, expect?: AssetExpect, options: ReadAssetOptions = {}): Promise<AssetContents> {
  if (typeof file !== 'string' || file.length === 0) throw new TypeError('readAssetFile: file must be a non-empty path');
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_ASSET_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new TypeError('readAssetFile: maxBytes must be a positive integer');
  const fh = await fsp.open(file, 'r');
  let bytes: Uint8Array;
  try {
    // fstat on the descriptor we read from: no window for the path to be swapped in between
    const st = await fh.stat();
    if (!st.isFile()) throw new TypeError(`readAssetFile: ${file} is not a regular file`);
    if (st.size > maxBytes) throw new AssetFormatError('TOO_LARGE', `${file} is ${st.size} bytes, above the ${maxBytes}-byte cap`);
    bytes = new Uint8Array(st.size);
    let done = 0;
    while (done < bytes.length) {
      const { bytesRead } = await fh.read(bytes, done, bytes.length - done, done);
      if (bytesRead === 0) break; // shrank under us: decodeAsset reports TRUNCATED
      done += bytesRead;
    }
    if (done < bytes.length) bytes = bytes.subarray(0, done);
  } finally {
    await fh.close();
  }
  return decodeAsset(bytes, expect);
}
