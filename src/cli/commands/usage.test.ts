import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultUsageRange } from './usage.ts';

test('without --from/--to the range is this UTC month up to the end of today (UTC), today included', () => {
  assert.deepEqual(defaultUsageRange(new Date('2026-11-28T14:23:05.123Z')), {
    from: '2026-11-01T00:00:00.000Z',
    to: '2026-11-29T00:00:00.000Z',
  });
  // Midnight itself starts a day: that day is in the range, it is not an empty one.
  assert.deepEqual(defaultUsageRange(new Date('2026-12-01T00:00:00.000Z')), {
    from: '2026-12-01T00:00:00.000Z',
    to: '2026-12-02T00:00:00.000Z',
  });
  // A date-time with an offset west of UTC: the UTC day decides (here already the next month).
  assert.deepEqual(defaultUsageRange(new Date('2026-11-30T23:30:00-05:00')), {
    from: '2026-12-01T00:00:00.000Z',
    to: '2026-12-02T00:00:00.000Z',
  });
});
