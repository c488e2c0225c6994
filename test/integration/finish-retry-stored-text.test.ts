// A finish tried again after its first try committed without the answer reaching the engine is
// recognised by the task's stored result (findFinishedRuns), also when the output holds text the
// store keeps otherwise (U+0000 and an unpaired surrogate as U+FFFD): compared as given, the stored
// finish was not found, and the run's usage was charged a second time as that of an unapplied run.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { findFinishedRuns, finishTasks } from '../../src/engine/task-ops.ts';
import { claimReadyTasks } from '../../src/store/task-store.ts';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';

const instant: AgentRuntime = { kind: 'fake', run: async () => ({ output: 'done' }) };

describe('a finish tried again', { timeout: 60_000 }, () => {
  for (const [what, outcome] of [
    ['an output holding NUL and a lone surrogate', { ok: true as const, output: 'a\u0000b\uD800c' }],
    ['an error holding NUL', { ok: false as const, error: 'failed\u0000here' }],
  ] as const) {
    test(`after a commit whose answer was lost is found stored, not charged again: ${what}`, async () => {
      const h = await createHarness({ llm: instant, start: false });
      try {
        const { session } = await h.engine.service.createSession(ACTOR, {
          objective: 'x',
          agents: [{ name: 'a', role: 'engineer', task: 't' }],
        });
        const [task] = await h.engine.queue.run((trx) =>
          claimReadyTasks(trx, 'sqlite', { owner: 'w', limit: 1, leaseMs: 60_000, now: Date.now() }),
        );
        assert.ok(task);
        await h.handle.db.updateTable('tasks').set({ status: 'running' }).where('id', '=', task.id).execute();
        const usage = { inputTokens: 100, outputTokens: 50, cacheReadTokens: 0, costUsd: 0 };
        const item = {
          claim: {
            taskId: task.id,
            sessionId: session.id,
            tenantId: 'default',
            name: 'a',
            owner: 'w',
            attempt: 1,
          },
          outcome: { ...outcome, usage },
        };
        // The first try commits (its answer lost on the way back, as in an outage).
        const [first] = await h.engine.queue.run((trx) => finishTasks(trx, [item], Date.now()));
        assert.equal(first?.applied, true);
        // The second try looks for it first.
        const done = await h.engine.queue.run((trx) => findFinishedRuns(trx, [item]));
        assert.equal(done.has(item), true);
        // As the scheduler's retry does: only a finish not found stored is applied again.
        if (!done.has(item)) await h.engine.queue.run((trx) => finishTasks(trx, [item], Date.now()));
        const stored = await h.handle.db
          .selectFrom('sessions')
          .select(['input_tokens', 'output_tokens'])
          .where('id', '=', session.id)
          .executeTakeFirstOrThrow();
        assert.deepEqual([Number(stored.input_tokens), Number(stored.output_tokens)], [100, 50]);
      } finally {
        await h.close();
      }
    });
  }
});
