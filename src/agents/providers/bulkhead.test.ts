// Unit tests for the per-provider concurrency limit.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createBulkhead } from './bulkhead.ts';

describe('bulkhead', () => {
  test('admits up to the limit and queues the rest in order', async () => {
    const bulkhead = createBulkhead(2);
    const signal = new AbortController().signal;
    const releaseA = await bulkhead.acquire(signal);
    const releaseB = await bulkhead.acquire(signal);
    const order: string[] = [];
    const c = bulkhead.acquire(signal).then((release) => {
      order.push('c');
      return release;
    });
    const d = bulkhead.acquire(signal).then((release) => {
      order.push('d');
      return release;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, []);
    releaseA();
    releaseA(); // a second release of the same slot is ignored
    (await c)();
    releaseB();
    (await d)();
    assert.deepEqual(order, ['c', 'd']);
    assert.equal(bulkhead.inFlight(), 0);
  });

  test('a waiting caller that aborts leaves the queue', async () => {
    const bulkhead = createBulkhead(1);
    const release = await bulkhead.acquire(new AbortController().signal);
    const controller = new AbortController();
    const waiting = bulkhead.acquire(controller.signal);
    controller.abort(new Error('gone'));
    await assert.rejects(waiting, /gone/);
    release();
    assert.equal(bulkhead.inFlight(), 0);
  });
});
