import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createWindowCounters } from './window-counters.ts';

describe('fixed-window counters', () => {
  test('count per key within a window, then start again when it ends', () => {
    const counters = createWindowCounters(60);
    assert.deepEqual(counters.charge('a', 1000), { consumed: 1, msBeforeNext: 60_000 });
    assert.deepEqual(counters.charge('a', 11_000), { consumed: 2, msBeforeNext: 50_000 });
    assert.deepEqual(counters.charge('b', 11_000), { consumed: 1, msBeforeNext: 60_000 });
    // The window of `a` opened at 1 000 ms and ends at 61 000 ms.
    assert.deepEqual(counters.charge('a', 60_999), { consumed: 3, msBeforeNext: 1 });
    assert.deepEqual(counters.charge('a', 61_000), { consumed: 1, msBeforeNext: 60_000 });
  });

  test('ended windows are dropped, so memory does not grow with every key ever seen', () => {
    const counters = createWindowCounters(1);
    for (let i = 0; i < 100; i++) counters.charge(`ip-${i}`, 0);
    assert.equal(counters.size(), 100);
    // Two windows later a sweep runs on the next charge and only the new key is left.
    counters.charge('later', 2000);
    assert.equal(counters.size(), 1);
  });
});
