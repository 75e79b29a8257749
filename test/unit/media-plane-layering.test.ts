/**
 * The media plane (server/src/sfu, server/src/rooms) forwards, presents and taps media through generic
 * primitives and knows nothing of the applications built on it (mediasoup's and LiveKit's layering):
 * no file there imports application code, and none names an application concept in its code,
 * comments, log messages or strings. The avatar layer (server/src/avatar) composes the primitives.
 *
 * Imports: nothing from server/src/avatar, models/, client/ or a worker package (worker/).
 *
 * Words: the text is split into words (camelCase, PascalCase, snake_case, kebab-case and prose alike:
 * `viewKeysByMid` is "view keys by mid", `AVATAR_TAP` is "avatar tap"), and these whole words are
 * refused, singular or plural:
 * - avatar, voice, worker, keypoint, motion, face, photo, gaussian, lips: the avatar application,
 *   its drivers, its inputs and the processes that render it;
 * - render, renders, rendered, rendering, renderer: what the avatar layer does with media (the SFU
 *   forwards it);
 * - view, views: in this project "a view" is always an avatar's head pose seen by someone (free view,
 *   default view, personal view, view key). The media plane's own word for "which of the presented
 *   peer's producers this viewer gets" is "slot". Only the whole word is refused: "viewer" (who
 *   receives a presentation), "preview", "review" and "overview" are different words and pass; a
 *   substring match on "view" would refuse them and make the rule meaningless noise.
 * Generic media words stay allowed: lip-sync ("lip", the receiver's audio/video alignment), sync
 * group, tap, slot, delegate, principal, presentation, owner (of a producer).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MEDIA_PLANE_DIRS = ['server/src/sfu', 'server/src/rooms'];
/** Application code the media plane must not import (relative to the project root). */
const FORBIDDEN_IMPORT_ROOTS = ['server/src/avatar', 'models', 'client', 'worker'];
const FORBIDDEN_WORDS = new Set(
  ['avatar', 'voice', 'worker', 'keypoint', 'motion', 'face', 'photo', 'gaussian', 'view'].flatMap((w) => [w, `${w}s`]).concat(['lips', 'render', 'renders', 'rendered', 'rendering', 'renderer', 'renderers']),
);

interface Finding {
  file: string;
  line: number;
  what: string;
}

/** Split text into lower-case words: identifiers at camelCase / PascalCase / acronym boundaries, and prose. */
function wordsOf(text: string): string[] {
  return (text.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+/g) ?? []).map((w) => w.toLowerCase());
}

/** Module specifiers of static imports, re-exports and dynamic imports. */
function importSpecifiers(source: string): { spec: string; index: number }[] {
  const out: { spec: string; index: number }[] = [];
  const patterns = [/\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of source.matchAll(re)) out.push({ spec: m[1]!, index: m.index });
  return out;
}

function lineAt(source: string, index: number): number {
  return source.slice(0, index).split('\n').length;
}

/** What `source` (the text of `file`, a path relative to the project root) does that the media plane must not. */
function layeringFindings(file: string, source: string): Finding[] {
  const findings: Finding[] = [];
  for (const { spec, index } of importSpecifiers(source)) {
    if (!spec.startsWith('.')) continue; // packages (werift, node:…) are not application code
    const target = path.relative(root, path.resolve(root, path.dirname(file), spec)).split(path.sep).join('/');
    const hit = FORBIDDEN_IMPORT_ROOTS.find((r) => target === r || target.startsWith(`${r}/`));
    if (hit) findings.push({ file, line: lineAt(source, index), what: `imports ${spec} (${hit}/)` });
  }
  source.split('\n').forEach((text, i) => {
    const words = [...new Set(wordsOf(text).filter((w) => FORBIDDEN_WORDS.has(w)))];
    if (words.length > 0) findings.push({ file, line: i + 1, what: `names ${words.map((w) => `"${w}"`).join(', ')}: ${text.trim().slice(0, 120)}` });
  });
  return findings;
}

function mediaPlaneFiles(dirs: readonly string[] = MEDIA_PLANE_DIRS): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (/\.(ts|mts|cts|js|mjs)$/.test(entry.name)) files.push(rel);
    }
  };
  for (const d of dirs) walk(d);
  return files.sort();
}

describe('media plane layering', () => {
  test('no file under server/src/sfu or server/src/rooms imports avatar, model, client or worker code, or names avatar concepts', () => {
    const files = mediaPlaneFiles();
    assert.ok(files.length >= 10, `media plane files found: ${files.join(', ')}`);
    const findings = files.flatMap((f) => layeringFindings(f, fs.readFileSync(path.join(root, f), 'utf8')));
    assert.deepEqual(
      findings.map((f) => `${f.file}:${f.line} ${f.what}`),
      [],
      'the media plane offers generic primitives (delegates, presentations, slots, taps, codec parameters); the avatar layer (server/src/avatar) composes them',
    );
  });

  test('the layering check refuses application imports and words, and lets generic words through', () => {
    const inRooms = (source: string): string[] => layeringFindings('server/src/rooms/X.ts', source).map((f) => f.what);
    const importsOf = (source: string): string[] => inRooms(source).filter((w) => w.startsWith('imports '));
    assert.equal(importsOf("import { AvatarService } from '../avatar/service/AvatarService.ts';").length, 1);
    assert.equal(importsOf("import type { Pose } from '../../../models/face/expression-code.ts';").length, 1);
    assert.equal(importsOf("export { x } from '../../../worker/src/main.ts';").length, 1);
    assert.equal(importsOf("const m = await import('../../../client/src/call/CallClient.ts');").length, 1);
    assert.equal(importsOf("import '../avatar/service/AvatarService.ts';").length, 1);
    assert.deepEqual(inRooms("import { Producer } from '../sfu/Producer.ts';"), [], 'the media plane may import itself');
    assert.deepEqual(inRooms("import type { PeerInfo } from '../../../protocol/src/signaling.ts';"), [], 'and the shared protocol');
    for (const bad of ['#viewKeysByMid = {};', 'readonly voiceAudioPtimeMs: number;', "role: 'avatar'", '// the worker republishes it', 'AVATAR_TAP', 'a personal view', 'renderedFrames', 'keypointDriver']) {
      assert.equal(inRooms(bad).length, 1, `refused: ${bad}`);
    }
    for (const good of ['const viewer = room.participants[0];', '// a preview, an overview, a review', 'lip-sync group', 'setSlot(viewer, peer, slot)', 'interface Surface {}', 'principal.delegates']) {
      assert.deepEqual(inRooms(good), [], `allowed: ${good}`);
    }
    assert.deepEqual(wordsOf('viewKeysByMid RTCPeerConnection AVATAR_TAP audio-tap'), ['view', 'keys', 'by', 'mid', 'rtc', 'peer', 'connection', 'avatar', 'tap', 'audio', 'tap']);
  });

  test('the worker package imports only protocol/, models/, call/ and itself; the server imports neither worker/ nor client/', () => {
    const outside = (dirs: string[], allowed: string[]): string[] =>
      mediaPlaneFiles(dirs).flatMap((file) => {
        const source = fs.readFileSync(path.join(root, file), 'utf8');
        return importSpecifiers(source)
          .filter(({ spec }) => spec.startsWith('.'))
          .map(({ spec, index }) => ({ target: path.relative(root, path.resolve(root, path.dirname(file), spec)).split(path.sep).join('/'), index }))
          .filter(({ target }) => !allowed.some((a) => target.startsWith(`${a}/`)))
          .map(({ target, index }) => `${file}:${lineAt(source, index)} imports ${target}`);
      });
    const workerFiles = mediaPlaneFiles(['worker/src']);
    assert.ok(workerFiles.length >= 8, `worker files found: ${workerFiles.length}`);
    assert.deepEqual(outside(['worker/src'], ['worker', 'protocol', 'models', 'call']), [], 'the worker runs on other hosts: it shares only protocol/ and models/ (and the call/ peer helper) with the rest');
    assert.deepEqual(outside(['server/src'], ['server', 'protocol', 'models']), [], 'the server never loads worker or browser code');
  });
});
