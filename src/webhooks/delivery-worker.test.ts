// The retry schedule of webhook deliveries: the configured delay of the failed attempt ±20%, the
// last entry repeating; and Retry-After read as seconds or as an HTTP date.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRetryAfter, retryDelayMs } from './delivery-worker.ts';

test('retry delays follow the schedule within ±20%, the last entry repeating', () => {
  const schedule = [30, 120, 600];
  assert.equal(
    retryDelayMs(schedule, 1, () => 0.5),
    30_000,
  );
  assert.equal(
    retryDelayMs(schedule, 2, () => 0),
    96_000,
  );
  assert.equal(
    retryDelayMs(schedule, 3, () => 1),
    720_000,
  );
  assert.equal(
    retryDelayMs(schedule, 7, () => 0.5),
    600_000,
  );
});

test('Retry-After is read as seconds or as an HTTP date; anything else is ignored', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter(' 5 ', now), 5000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 12:01:30 GMT', now), 90_000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 11:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter(null, now), null);
  assert.equal(parseRetryAfter('soon', now), null);
});
