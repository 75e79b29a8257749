/** Shutting the server down does not wait on browsers' open HTTP connections. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestServer } from '../helpers/server.ts';

for (const kind of ['a preconnected socket that sent no request', 'an idle keep-alive connection'] as const) {
  test(`closing the server ends ${kind} instead of waiting for it`, { timeout: 20_000 }, async () => {
    const server = await startTestServer();
    const url = new URL(server.httpUrl);
    const sock = net.connect(Number(url.port), url.hostname);
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    if (kind === 'an idle keep-alive connection') {
      sock.write('GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n');
      await new Promise((r) => sock.once('data', r));
    }
    const ended = new Promise((r) => sock.once('close', r));
    const t0 = performance.now();
    await server.close();
    const ms = performance.now() - t0;
    await ended;
    sock.destroy();
    assert.ok(ms < 2000, `close() took ${Math.round(ms)} ms`);
  });
}
