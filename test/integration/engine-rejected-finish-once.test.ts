// A finish rejected because its claim no longer held still charges what the run spent, once per
// run: the same finish written again (as when its first try committed but the COMMIT's answer was
// lost, and the engine tried it again) charges nothing more. Another run of the task (the next
// attempt, or another worker) is charged on its own. SQLite here; PostgreSQL with a lost COMMIT
// answer in pg-outage-engine.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { finishTask } from '../../src/engine/task-ops.ts';
import { claimOf, type FinishEffects, type RunOutcome } from '../../src/engine/task-outcome.ts';
import { claimReadyTasks } from '../../src/store/task-store.ts';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';

const instant = {
  kind: 'fake' as const,
  run: async () => ({ output: 'unused', usage: {} }),
};

test('a rejected finish written twice charges its run once; another run is charged on its own', async () => {
  const h = await createHarness({ llm: instant, start: false });
  try {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'rejected finish once',
      agents: [{ name: 'only', role: 'engineer', task: 't' }],
    });
    const [row] = await h.engine.queue.run((trx) =>
      claimReadyTasks(trx, h.handle.dialect, {
        owner: 'w1',
        limit: 1,
        leaseMs: 60_000,
        now: Date.now(),
        start: true,
      }),
    );
    const task = {
      taskId: row!.id,
      sessionId: session.id,
      tenantId: row!.tenant_id,
      name: row!.name,
      attempt: Number(row!.attempts),
    };
    const claim = claimOf(task, 'w1');
    // The task is another worker's now: every finish of this claim is rejected.
    await h.handle.db
      .updateTable('tasks')
      .set({ lease_owner: 'w2', attempts: task.attempt + 1 })
      .where('id', '=', task.taskId)
      .execute();
    const outcome: RunOutcome = {
      ok: true,
      output: 'late',
      usage: { inputTokens: 5, outputTokens: 2, cacheReadTokens: 0, costUsd: 0.01 },
    };
    for (let i = 0; i < 2; i++) {
      const effects: FinishEffects = await h.engine.queue.run((trx) =>
        finishTask(trx, claim, outcome, Date.now()),
      );
      assert.equal(effects.applied, false);
    }
    const usage = async () => {
      const detail = await h.engine.service.getSession(ACTOR, session.id);
      return [detail.usage.inputTokens, detail.tasks[0]!.usage.inputTokens];
    };
    assert.deepEqual(await usage(), [5, 5], 'charged once');
    // Another worker's run at the same attempt, and this worker's at the next one: each charged.
    for (const other of [claimOf(task, 'w3'), claimOf({ ...task, attempt: task.attempt + 2 }, 'w1')]) {
      await h.engine.queue.run((trx) => finishTask(trx, other, outcome, Date.now()));
    }
    assert.deepEqual(await usage(), [15, 15]);
  } finally {
    await h.close();
  }
});
