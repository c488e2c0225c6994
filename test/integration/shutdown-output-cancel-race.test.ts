// The last output lines of a run given back at shutdown (engine/stopped-run.ts) and a cancel of its
// session committing at the same moment on another replica (PostgreSQL): the lines are stored only
// while the run's claim holds, checked under the session's lock as every output flush checks it, so
// nothing follows the session's `session.finished`. Checked before the lock, the claim read the task
// still running while the cancel was uncommitted, and the lines went in after the cancel's final event.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import type { Claim } from '../../src/engine/task-outcome.ts';
import { appendTaskOutput } from '../../src/engine/task-output.ts';
import { appendEvents } from '../../src/store/event-store.ts';
import { lockSessions } from '../../src/store/session-locks.ts';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';
import { waitForLockWaiter } from '../fixtures/pause-query.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';

const idle: AgentRuntime = { kind: 'llm', run: async () => ({ output: 'x' }) };

test('postgres: the output a shutdown stores after a cancel committed is not appended after session.finished', async (t) => {
  const database = await createTestDatabase();
  t.after(() => database.drop());
  const h = await createHarness({ concurrency: 0, start: false, llm: idle, storeUrl: database.url });
  t.after(() => h.close());
  const { session } = await h.engine.service.createSession(ACTOR, {
    objective: 'race',
    agents: [{ name: 'a', role: 'engineer', task: 'w' }],
  });
  const db = h.handle.db;
  const task = await db
    .selectFrom('tasks')
    .selectAll()
    .where('session_id', '=', session.id)
    .executeTakeFirstOrThrow();
  await db
    .updateTable('tasks')
    .set({ status: 'running', lease_owner: 'W', attempts: 1, lease_expires_at: Date.now() + 60_000 })
    .where('id', '=', task.id)
    .execute();
  const claim: Claim = {
    taskId: task.id,
    sessionId: session.id,
    tenantId: task.tenant_id,
    name: task.name,
    owner: 'W',
    attempt: 1,
  };
  const ref = { id: session.id, tenantId: task.tenant_id };

  // A cancel as another replica makes it, held open before its commit: session locked, task
  // cancelled, final event appended.
  let commit: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    commit = resolve;
  });
  let cancelled: () => void = () => {};
  const cancelWritten = new Promise<void>((resolve) => {
    cancelled = resolve;
  });
  const cancel = db.transaction().execute(async (trx) => {
    await lockSessions(trx, [session.id], ref.tenantId);
    await trx.updateTable('tasks').set({ status: 'cancelled' }).where('id', '=', task.id).execute();
    await trx.updateTable('sessions').set({ status: 'cancelled' }).where('id', '=', session.id).execute();
    await appendEvents(
      trx,
      ref,
      [
        { type: 'session.status', data: { from: 'running', to: 'cancelled' } },
        {
          type: 'session.finished',
          data: {
            status: 'cancelled',
            error: 'cancelled on request',
            result: null,
            usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 },
          },
        },
      ],
      Date.now(),
    );
    cancelled();
    await held;
  });
  await cancelWritten;
  // The shutdown's write of the run's last lines, meanwhile on this replica.
  const stored = db
    .transaction()
    .execute((trx) => appendTaskOutput(trx, claim, [{ stream: 'text', line: 'last words' }], Date.now()));
  await waitForLockWaiter(db);
  commit();
  await cancel;
  assert.equal(await stored, false, 'the claim no longer holds once the cancel committed');
  const events = await h.engine.service.listEvents(ACTOR, session.id, 0, 1000);
  assert.equal(events.at(-1)?.type, 'session.finished');
  assert.ok(!events.some((event) => event.type === 'task.output'));
});
