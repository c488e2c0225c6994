// The console's plain ES modules cannot import the server's TypeScript: its status filter keeps its
// own list of session statuses, which must stay the domain's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SESSION_STATUSES } from '../../src/domain/types.ts';

test('the console offers exactly the session statuses of the domain', async () => {
  const moduleUrl = new URL('../../web/console/views/session-cells.js', import.meta.url).href;
  const consoleCells = (await import(moduleUrl)) as { SESSION_STATUSES: string[] };
  assert.deepEqual(consoleCells.SESSION_STATUSES, [...SESSION_STATUSES]);
});
