import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Pacer } from '../../server/src/sfu/Pacer.ts';
import { RateLimiter } from '../../server/src/signaling/RateLimiter.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

describe('Pacer', () => {
  test('the Pacer never releases more than bitrate × elapsed time plus the burst', async () => {
    const bitrateBps = 8_000_000; // 1000 bytes per ms
    const burstMs = 10; // 10 000 bytes
    const bytesPerMs = bitrateBps / 8 / 1000;
    const burstBytes = bytesPerMs * burstMs;
    const t0 = performance.now();
    const pacer = new Pacer({ bitrateBps, maxQueuePackets: 10_000, burstMs });
    const packet = 1200;
    const total = 250;
    let sentBytes = 0;
    let worstExcess = -Infinity;
    const sentAt: number[] = [];
    for (let i = 0; i < total; i++) {
      pacer.enqueue(packet, () => {
        sentBytes += packet;
        const t = performance.now();
        sentAt.push(t);
        worstExcess = Math.max(worstExcess, sentBytes - (burstBytes + (t - t0) * bytesPerMs));
      });
    }
    // The burst goes out at once, the rest waits for tokens. A slow machine may spend a millisecond or
    // more in the loop above, and the tokens that refill meanwhile may release a packet or two more.
    const loopMs = performance.now() - t0;
    assert.ok(pacer.sent >= Math.floor(burstBytes / packet), `only ${pacer.sent} packets went out at once`);
    assert.ok(pacer.sent <= Math.floor((burstBytes + loopMs * bytesPerMs) / packet), `${pacer.sent} packets went out within ${loopMs.toFixed(2)} ms`);
    assert.equal(pacer.queued, total - pacer.sent);
    await waitFor(() => pacer.sent === total, { timeoutMs: 5000, intervalMs: 10, what: 'queue drained' });
    const elapsed = sentAt[sentAt.length - 1]! - t0;
    const minimum = (total * packet - burstBytes) / bytesPerMs; // 290 ms
    assert.ok(worstExcess <= 1e-6, `released ${worstExcess.toFixed(1)} bytes above the token bucket`);
    assert.ok(elapsed >= minimum - 1, `drained in ${elapsed.toFixed(1)} ms, faster than the ${minimum} ms the bitrate allows`);
    assert.ok(elapsed < minimum * 2 + 200, `drained in ${elapsed.toFixed(1)} ms: far slower than the bitrate (${minimum} ms)`);
    assert.equal(pacer.dropped, 0);
    assert.equal(pacer.queued, 0);
    pacer.close();
  });

  test('the Pacer keeps packets in the order they were enqueued', async () => {
    const pacer = new Pacer({ bitrateBps: 4_000_000, maxQueuePackets: 1000, burstMs: 5 });
    const order: number[] = [];
    for (let i = 0; i < 200; i++) {
      pacer.enqueue(100 + ((i * 37) % 1100), () => order.push(i));
      if (i % 50 === 0) await sleep(3); // mix immediate sends and queued sends
    }
    await waitFor(() => order.length === 200, { timeoutMs: 5000, intervalMs: 10, what: 'all sent' });
    assert.deepEqual(order, Array.from({ length: 200 }, (_, i) => i));
    pacer.close();
  });

  test('a packet arriving while others are queued waits its turn even when tokens are available', async () => {
    const pacer = new Pacer({ bitrateBps: 1_000_000, maxQueuePackets: 100 }); // 125 bytes/ms, bucket 1500 bytes
    const order: string[] = [];
    pacer.enqueue(1500, () => order.push('a')); // empties the bucket
    pacer.enqueue(1000, () => order.push('b')); // queued
    pacer.enqueue(10, () => order.push('c')); // small, but must not overtake b
    assert.deepEqual(order, ['a']);
    await waitFor(() => order.length === 3, { timeoutMs: 2000, intervalMs: 5, what: 'drain' });
    assert.deepEqual(order, ['a', 'b', 'c']);
    pacer.close();
  });

  test('when the queue bound is hit the Pacer drops the oldest packets and counts them', async () => {
    const drops: number[] = [];
    const pacer = new Pacer({ bitrateBps: 1_000_000, maxQueuePackets: 5, onDrop: (n) => drops.push(n) });
    const sent: number[] = [];
    pacer.enqueue(1500, () => sent.push(0)); // sent at once, bucket now empty
    for (let i = 1; i <= 12; i++) pacer.enqueue(1000, () => sent.push(i));
    assert.equal(pacer.queued, 5, 'the queue never grows past its bound');
    assert.equal(pacer.dropped, 7);
    assert.equal(drops.reduce((a, b) => a + b, 0), 7, 'onDrop reports every dropped packet');
    await waitFor(() => pacer.queued === 0, { timeoutMs: 2000, intervalMs: 5, what: 'drain' });
    assert.deepEqual(sent, [0, 8, 9, 10, 11, 12], 'the newest packets survive, in order');
    assert.equal(pacer.sent, 6);
    pacer.close();
  });

  test('a Pacer queue that stays full keeps a bounded memory footprint', async () => {
    const pacer = new Pacer({ bitrateBps: 100_000, maxQueuePackets: 20 }); // 12.5 bytes/ms: very slow
    let sent = 0;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 500; i++) pacer.enqueue(1200, () => sent++);
      assert.ok(pacer.queued <= 20);
      await sleep(2);
    }
    assert.equal(pacer.dropped + pacer.sent + pacer.queued, 10_000);
    pacer.close();
    assert.equal(pacer.queued, 0);
  });

  test('a packet larger than the burst is still sent instead of blocking the queue forever', async () => {
    const pacer = new Pacer({ bitrateBps: 1_000_000, maxQueuePackets: 10 }); // bucket: 1500 bytes
    const order: string[] = [];
    pacer.enqueue(4000, () => order.push('big'));
    pacer.enqueue(4000, () => order.push('big2'));
    pacer.enqueue(100, () => order.push('small'));
    await waitFor(() => order.length === 3, { timeoutMs: 2000, intervalMs: 5, what: 'all three sent' });
    assert.deepEqual(order, ['big', 'big2', 'small']);
    pacer.close();
  });

  test('close() stops sending: queued packets are discarded and later enqueues are ignored', async () => {
    const pacer = new Pacer({ bitrateBps: 1_000_000, maxQueuePackets: 100 });
    let sent = 0;
    for (let i = 0; i < 20; i++) pacer.enqueue(1000, () => sent++);
    const before = sent;
    assert.ok(pacer.queued > 0);
    pacer.close();
    assert.equal(pacer.queued, 0);
    pacer.enqueue(10, () => sent++);
    pacer.close(); // idempotent
    await sleep(100);
    assert.equal(sent, before, 'nothing was sent after close()');
  });

  test('a throwing send callback does not stop the Pacer', async () => {
    const pacer = new Pacer({ bitrateBps: 1_000_000, maxQueuePackets: 100 });
    const order: number[] = [];
    for (let i = 0; i < 6; i++) {
      pacer.enqueue(600, () => {
        order.push(i);
        if (i % 2 === 0) throw new Error('transport gone');
      });
    }
    await waitFor(() => order.length === 6, { timeoutMs: 2000, intervalMs: 5, what: 'all sent' });
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
    pacer.close();
  });

  test('the Pacer constructor refuses non-positive or non-numeric options with a TypeError', () => {
    for (const bitrateBps of [0, -1, Number.NaN, undefined]) {
      assert.throws(() => new Pacer({ bitrateBps: bitrateBps as number, maxQueuePackets: 10 }), TypeError, String(bitrateBps));
    }
    for (const maxQueuePackets of [0, -5, Number.NaN, undefined]) {
      assert.throws(() => new Pacer({ bitrateBps: 1_000_000, maxQueuePackets: maxQueuePackets as number }), TypeError, String(maxQueuePackets));
    }
    assert.doesNotThrow(() => new Pacer({ bitrateBps: 1_000_000, maxQueuePackets: 1 }).close());
  });
});

describe('RateLimiter', () => {
  test('a RateLimiter allows the burst at once, then refuses', () => {
    const limiter = new RateLimiter(10, 25);
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (limiter.take()) allowed++;
    assert.equal(allowed, 25);
  });

  test('a RateLimiter refills at its rate per second', async () => {
    const limiter = new RateLimiter(100, 5); // one token per 10 ms
    while (limiter.take()) { /* empty the bucket */ }
    assert.equal(limiter.take(), false);
    await sleep(120);
    let allowed = 0;
    while (limiter.take()) allowed++;
    assert.ok(allowed >= 1 && allowed <= 5, `refilled ${allowed} tokens in 120 ms (burst 5)`);
  });

  test('a sustained RateLimiter rate matches perSecond over time', async () => {
    const limiter = new RateLimiter(200, 1);
    let allowed = 0;
    const start = performance.now();
    while (performance.now() - start < 300) {
      if (limiter.take()) allowed++;
      await sleep(1);
    }
    // 1 initial token + 200/s × 0.3 s = 61; timers are coarse, so accept a band.
    assert.ok(allowed >= 35 && allowed <= 62, `allowed ${allowed} in 300 ms at 200/s`);
  });

  test('RateLimiter.reject() counts rejections within the window only', async () => {
    const limiter = new RateLimiter(10, 10);
    assert.equal(limiter.reject(50), 1);
    assert.equal(limiter.reject(50), 2);
    assert.equal(limiter.reject(50), 3);
    await sleep(80);
    assert.equal(limiter.reject(50), 1, 'older rejections fell out of the window');
    assert.equal(limiter.reject(), 2, 'the default window is 10 s');
  });

  test('the RateLimiter constructor refuses non-positive rates and bursts with a TypeError', () => {
    for (const [rate, burst] of [[0, 1], [1, 0], [-1, 5], [Number.NaN, 5], [5, Number.NaN]] as const) {
      assert.throws(() => new RateLimiter(rate, burst), TypeError, `${rate}/${burst}`);
    }
  });
});
