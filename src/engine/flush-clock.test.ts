// Unit tests for the shared output flush clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { context, createContextKey, ROOT_CONTEXT } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
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

test('each flush runs in the context it joined from, not in the one of the run that armed the timer', async () => {
  const manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
  try {
    const key = createContextKey('run');
    const clock = createFlushClock(5);
    const seen: Array<[string, unknown]> = [];
    const flushOf = (name: string) => () => seen.push([name, context.active().getValue(key)]);
    const b = flushOf('b');
    const c = flushOf('c');
    // B's run arms the timer; C's joins the same tick from its own context.
    context.with(ROOT_CONTEXT.setValue(key, 'run B'), () => clock.join(b));
    context.with(ROOT_CONTEXT.setValue(key, 'run C'), () => clock.join(c));
    for (let waited = 0; seen.length < 2 && waited < 5000; waited += 10) await sleep(10);
    assert.deepEqual(seen, [
      ['b', 'run B'],
      ['c', 'run C'],
    ]);
  } finally {
    context.disable();
  }
});
