// The console's plain ES modules cannot import the server's TypeScript: it keeps its own lists of
// session and task statuses, which must stay the domain's, each with the words the console shows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SESSION_STATUSES, TASK_STATUSES } from '../../src/domain/types.ts';

interface ConsoleStatuses {
  SESSION_STATUSES: string[];
  TASK_STATUSES: string[];
  STATUS_LABELS: Record<string, string>;
}

const consoleStatuses = (await import(
  new URL('../../web/console/statuses.js', import.meta.url).href
)) as ConsoleStatuses;

test('the console offers exactly the session statuses of the domain', () => {
  assert.deepEqual(consoleStatuses.SESSION_STATUSES, [...SESSION_STATUSES]);
});

test('the console knows exactly the task statuses of the domain', () => {
  assert.deepEqual(consoleStatuses.TASK_STATUSES, [...TASK_STATUSES]);
});

test('every session and task status has its words, and no label is left over', () => {
  const statuses = new Set<string>([...SESSION_STATUSES, ...TASK_STATUSES]);
  for (const status of statuses) {
    const label = consoleStatuses.STATUS_LABELS[status];
    assert.ok(label, `no label for status ${status}`);
    assert.doesNotMatch(label, /_/, `the label of ${status} is words, not the raw value`);
  }
  assert.deepEqual(Object.keys(consoleStatuses.STATUS_LABELS).sort(), [...statuses].sort());
});
