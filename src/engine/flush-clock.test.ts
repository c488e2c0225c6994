// Unit tests for the shared output flush clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFlushClock } from './flush-clock.ts';

test('runs that joined are flushed once at the next tick; a run that left is not', async () => {
  const clock = createFlushClock(5);
  const calls: string[] = [];
  const a = () => calls.push('a');
  const b = () => calls.push('b');
  const c = () => {
    calls.push('c');
    // Still pending: joins the tick after.
    if (calls.filter((name) => name === 'c').length < 2) clock.join(c);
  };
  clock.join(a);
  clock.join(a);
  clock.join(b);
  clock.join(c);
  clock.leave(b);
  // Two ticks: waited for, not timed (a loaded machine may run them late).
  for (let waited = 0; calls.length < 3 && waited < 5000; waited += 10) await sleep(10);
  assert.deepEqual(calls, ['a', 'c', 'c']);
  // Nothing joined since: no further calls.
  await sleep(30);
  assert.deepEqual(calls, ['a', 'c', 'c']);
});
