// The usage arithmetic settlers and the per-model split share: sums kept to the millionth, and a
// part within a whole up to the rounding of costs summed in another order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isUsageWithin, sumUsage, ZERO_USAGE } from './types.ts';

const usage = (inputTokens: number, outputTokens: number, cacheReadTokens: number, costUsd: number) => ({
  inputTokens,
  outputTokens,
  cacheReadTokens,
  costUsd,
});

test('sumUsage adds every figure, the cost to the millionth', () => {
  assert.deepEqual(sumUsage([]), ZERO_USAGE);
  assert.deepEqual(sumUsage([usage(1, 2, 3, 0.1), usage(10, 20, 30, 0.2)]), usage(11, 22, 33, 0.3));
});

test('isUsageWithin: every figure at most the whole, the cost within half a millionth', () => {
  const whole = usage(100, 50, 10, 0.3);
  assert.equal(isUsageWithin(whole, whole), true);
  assert.equal(isUsageWithin(ZERO_USAGE, whole), true);
  // 0.1 + 0.2 summed as floats is 0.30000000000000004: rounding, not spend.
  assert.equal(isUsageWithin(usage(100, 50, 10, 0.1 + 0.2), whole), true);
  assert.equal(isUsageWithin(usage(100, 50, 10, 0.300001), whole), false);
  assert.equal(isUsageWithin(usage(101, 50, 10, 0.3), whole), false);
  assert.equal(isUsageWithin(usage(100, 51, 10, 0.3), whole), false);
  assert.equal(isUsageWithin(usage(100, 50, 11, 0.3), whole), false);
});
