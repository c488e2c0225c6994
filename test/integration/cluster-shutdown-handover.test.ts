// Cluster mode: a replica that shuts down gives its running tasks back and announces them, so
// another replica takes them over at once instead of at its next poll.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer } from '../fixtures/server.ts';

interface Session {
  id: string;
  tasks: Array<{ status: string; attempts: number }>;
}

test('a task given back at shutdown is claimed by another replica without waiting for its poll', {
  timeout: 90_000,
}, async (t) => {
  const database = await createTestDatabase();
  const cleanups: Array<() => Promise<void>> = [];
  // Servers first, then their database (after-hooks would run in the order they were added).
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await database.drop();
  });
  // Polls (and notifier sweeps) far apart: only the announcement can wake the other replica in time.
  const config = {
    store: { url: database.url, synchronous: 'full' },
    workers: { concurrency: 1, pollIntervalMs: 60_000 },
    tasks: { leaseSeconds: 30, maxAttempts: 3 },
  };
  const leaving = await startTestServer({ config });
  let leavingClosed = false;
  cleanups.push(async () => {
    if (!leavingClosed) await leaving.close();
  });
  const created = await requestJson<Session>(`${leaving.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'hand over',
      agents: [{ name: 'a', role: 'engineer', task: 'wait', runner: 'sleep' }],
    },
  });
  assert.equal(created.status, 201);
  const id = created.body.id;
  const runningOn = async (url: string) =>
    (await requestJson<Session>(`${url}/v1/sessions/${id}`)).body.tasks[0]?.status === 'running';
  for (let i = 0; i < 200 && !(await runningOn(leaving.url)); i++)
    await new Promise((r) => setTimeout(r, 50));
  assert.ok(await runningOn(leaving.url), 'the task runs on the first replica');

  const staying = await startTestServer({ config });
  cleanups.push(() => staying.close());
  await leaving.close();
  leavingClosed = true;
  const owner = async () =>
    await staying.app.database.db
      .selectFrom('tasks')
      .select(['status', 'lease_owner'])
      .where('session_id', '=', id)
      .executeTakeFirstOrThrow();
  let row = await owner();
  for (let i = 0; i < 200 && row.status !== 'running'; i++) {
    await new Promise((r) => setTimeout(r, 50));
    row = await owner();
  }
  assert.equal(row.status, 'running', 'the other replica took the task over within 10 s');
});
