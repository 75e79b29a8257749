/**
 * Browser end-to-end: real server, real werift SFU, real headless Chromium with fake camera and mic.
 * (npm test runs this inside a loopback-only network namespace.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioClient } from 'socket.io-client';
import type { BrowserContext } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { CallPage } from '../helpers/callPage.ts';
import { waitFor, sleep } from '../helpers/wait.ts';
import type { AvatarServer } from '../../server/src/server.ts';

const ROOM = 'e2e room';

async function decodesAll(page: CallPage, peerIds: string[], what: string): Promise<void> {
  await waitFor(
    async () => {
      const s = await page.stats();
      return peerIds.every((id) => {
        const t = s.tiles.find((x) => x.peerId === id);
        return t && t.framesDecoded > 5 && t.audioBytes > 1000;
      });
    },
    { timeoutMs: 20_000, what: `${page.name} decoding ${what}` },
  );
  const rates = await page.decodeRates(2000);
  for (const id of peerIds) {
    const r = rates.get(id);
    assert.ok(r, `${page.name} has stats for ${id}`);
    assert.ok(r.fps >= 5, `${page.name} decodes ${id} at ${r.fps.toFixed(1)} fps`);
    assert.ok(r.audioBytesPerS > 500, `${page.name} receives ${id}'s audio (${r.audioBytesPerS.toFixed(0)} B/s)`);
  }
}

describe('a call in headless Chromium through the SFU', () => {
  let server: AvatarServer;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  const pages: CallPage[] = [];
  const ids: string[] = [];

  before(async () => {
    server = await startTestServer();
    ({ browser: context, close: closeBrowser } = await launchChromium());
  });

  after(async () => {
    await closeBrowser?.();
    await server?.close();
  });

  test('three pages in one room each decode the other two pages\' video and receive their audio', async () => {
    for (const name of ['ada', 'bob', 'cyd']) {
      const page = await CallPage.open(context, server.httpUrl, ROOM, name);
      pages.push(page);
      ids.push(await page.join());
    }
    for (let i = 0; i < 3; i++) await decodesAll(pages[i]!, ids.filter((_, j) => j !== i), 'the other two');
    const rooms = (await (await fetch(`${server.httpUrl}/api/rooms`)).json()) as { rooms: { roomId: string; peers: number; createdAt: string }[] };
    assert.deepEqual(rooms.rooms, [{ roomId: ROOM, peers: 3, createdAt: rooms.rooms[0]!.createdAt }]);
    for (const p of pages) assert.deepEqual(p.errors, [], `${p.name} has no page errors`);
  });

  test('a page that leaves disappears for the others, and is seen again when it rejoins', async () => {
    const [a, b, c] = pages as [CallPage, CallPage, CallPage];
    const oldId = ids[2]!;
    await c.leave();
    for (const p of [a, b]) await waitFor(async () => !(await p.stats()).visibleTiles.includes(oldId), { what: `${p.name} dropping ${oldId}` });
    assert.equal(server.metrics.transports.get ? (await server.metrics.transports.get()).values[0]?.value : undefined, 4, 'two peers left: four transports');
    ids[2] = await c.join();
    assert.notEqual(ids[2], oldId);
    await decodesAll(a, [ids[1]!, ids[2]], 'the rejoined page');
    await decodesAll(b, [ids[0]!, ids[2]], 'the rejoined page');
    await decodesAll(c, [ids[0]!, ids[1]!], 'the pages already there');
  });

  test('muting the camera shows a badge to the others and pauses forwarding; unmuting brings the picture back', async () => {
    const [a, b] = pages as [CallPage, CallPage];
    await a.page.click('#toggle-cam');
    await waitFor(() => b.page.evaluate((id) => document.querySelector(`.tile[data-peer-id="${id}"]`)?.getAttribute('data-video-muted') === 'true', ids[0]!), { what: 'mute badge' });
    await sleep(500);
    const paused = (await b.decodeRates(1500)).get(ids[0]!);
    assert.ok(paused && paused.fps < 2, `no frames while muted (${paused?.fps})`);
    await a.page.click('#toggle-cam');
    await waitFor(async () => ((await b.decodeRates(1000)).get(ids[0]!)?.fps ?? 0) > 5, { what: 'video back after unmute' });
  });

  test('a socket sending garbage gets errors or is disconnected, and the room keeps its media flowing', async (t) => {
    const [a, b] = pages as [CallPage, CallPage];
    const socket = ioClient(server.httpUrl, { transports: ['websocket'], reconnection: false });
    t.after(() => socket.close());
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    const acks: unknown[] = [];
    const serverErrors: unknown[] = [];
    socket.on('server:error', (e) => serverErrors.push(e));
    let disconnected = false;
    socket.on('disconnect', () => (disconnected = true));
    const emit = (event: string, ...args: unknown[]): Promise<unknown> =>
      new Promise((resolve) => {
        socket.timeout(3000).emit(event, ...args, (err: Error | null, res: unknown) => {
          const r = err ? { timeout: true } : res;
          acks.push(r);
          resolve(r);
        });
      });
    const ok = (await emit('join', { protocolVersion: 1, roomId: ROOM, displayName: 'mallory' })) as { ok: boolean };
    assert.equal(ok.ok, true, 'the attacker can join like anyone');
    const again = (await emit('join', { protocolVersion: 1, roomId: ROOM, displayName: 'mallory' })) as { error?: { code: string } };
    assert.equal(again.error?.code, 'ALREADY_JOINED');

    const bad = [
      await emit('join', { protocolVersion: 'one', roomId: 7 }),
      await emit('publish', { offer: { type: 'answer', sdp: 42 } }),
      await emit('setProducerPaused', { kind: 'smell', paused: 'yes' }),
      await emit('no-such-event', { x: 1 }),
      await emit('publish', 'not an object'),
      await emit('publish', { offer: { type: 'offer', sdp: 'x'.repeat(1024 * 1024) } }),
    ] as { ok: boolean; error?: { code: string; status: number } }[];
    assert.deepEqual(bad.map((r) => r.error?.code), ['BAD_REQUEST', 'BAD_REQUEST', 'BAD_REQUEST', 'UNKNOWN_EVENT', 'BAD_REQUEST', 'PAYLOAD_TOO_LARGE']);
    socket.emit('no-ack-garbage', { a: 1 });
    await waitFor(() => serverErrors.length > 0, { what: 'server:error for a message without ack' });

    // 1000 messages/s for two seconds, while the others' media must keep flowing.
    const before = await b.stats();
    const flood = (async () => {
      for (let s = 0; s < 2 && !disconnected; s++) {
        for (let i = 0; i < 1000; i++) socket.emit('setProducerPaused', { kind: 'video', paused: i % 2 === 0 }, () => undefined);
        await sleep(1000);
      }
    })();
    const during = await b.decodeRates(2000);
    await flood;
    assert.ok((during.get(ids[0]!)?.fps ?? 0) >= 5, `media flows during the flood (${during.get(ids[0]!)?.fps?.toFixed(1)} fps)`);
    await waitFor(() => disconnected, { timeoutMs: 5000, what: 'the flooding socket to be disconnected' });
    const after = await b.stats();
    assert.ok((after.tiles.find((t) => t.peerId === ids[0])?.framesDecoded ?? 0) > (before.tiles.find((t) => t.peerId === ids[0])?.framesDecoded ?? 0));
    await decodesAll(a, [ids[1]!, ids[2]!], 'after the flood');
    const health = await fetch(`${server.httpUrl}/api/health`);
    assert.equal(health.status, 200);
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    assert.match(metrics, /avatar_sfu_signaling_abuse_disconnects_total 1/);
    assert.match(metrics, /avatar_sfu_forwarded_packets_total\{kind="video"\} \d+/);
    socket.close();
  });
});
