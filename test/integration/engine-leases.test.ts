// Leases: expiry re-runs a task (bounded by maxAttempts), a completion from a stale lease holder is
// rejected, and a crashed engine's sessions are finished by a new one with every completion applied once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import type { SessionEvent } from '../../src/domain/types.ts';
import type { BudgetStopScope } from '../../src/engine/engine-observer.ts';
import { expireTaskLease } from '../../src/engine/lease-expiry.ts';
import { reapExpiredLeases } from '../../src/engine/lease-reaper.ts';
import { createLocalNotifier } from '../../src/engine/notifier.ts';
import { recordUnsettledUsage } from '../../src/engine/run-spend.ts';
import { finishTask } from '../../src/engine/task-ops.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { claimReadyTasks, findExpiredLeases } from '../../src/store/task-store.ts';
import { ACTOR, createHarness, type Harness, makeTempDir } from '../fixtures/engine-harness.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const instant: AgentRuntime = {
  kind: 'fake',
  run: async (task) => ({ output: `done ${task.name} attempt ${task.attempt}`, usage: { inputTokens: 1 } }),
};

const zero = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 };

/** Claims every ready task as a worker that will never come back (its lease already expired). */
async function claimAsGhost(h: Harness, owner: string) {
  return h.engine.queue.run((trx) =>
    claimReadyTasks(trx, 'sqlite', { owner, limit: 100, leaseMs: -1000, now: Date.now() }),
  );
}

async function reapAll(h: Harness) {
  return h.engine.queue.run(async (trx) => {
    const results = [];
    for (const row of await findExpiredLeases(trx, Date.now(), 100))
      results.push(await expireTaskLease(trx, row, Date.now()));
    return results;
  });
}

function assertContiguous(events: SessionEvent[]): void {
  assert.deepEqual(
    events.map((event) => event.seq),
    events.map((_, index) => index + 1),
  );
}

describe('leases', { timeout: 60_000 }, () => {
  test('an expired lease is re-run with attempt + 1 by the reaper', async () => {
    const h = await createHarness({ llm: instant, start: false, leaseSeconds: 2 });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'x',
        agents: [{ name: 'only', role: 'engineer', task: 't' }],
      });
      const claimed = await claimAsGhost(h, 'ghost');
      assert.equal(claimed.length, 1);
      h.engine.start();
      const done = await h.waitForSession(session.id);
      assert.equal(done.status, 'completed');
      assert.equal(done.tasks[0]!.attempts, 2);
      assert.equal(done.result, 'done only attempt 2');
      const reasons = (await h.allEvents(session.id)).map((event) => event.data.reason).filter(Boolean);
      assert.match(String(reasons[0]), /lease expired \(worker ghost lost\); retrying/);
    } finally {
      await h.close();
    }
  });

  test('after a stall longer than the lease, the earlier run stops and the new attempt keeps its lease', async () => {
    // Attempt 1 runs until aborted; attempt 2 takes longer than a lease, so it lives only if its
    // lease goes on being renewed after attempt 1 ended.
    let concurrent = 0;
    let maxConcurrent = 0;
    let firstStopped = false;
    const runtime: AgentRuntime = {
      kind: 'fake',
      async run(task, ctx) {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        try {
          if (task.attempt === 1) {
            await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
            firstStopped = true;
            throw new Error('stopped');
          }
          await new Promise((resolve) => setTimeout(resolve, 5000));
          return { output: `attempt ${task.attempt}` };
        } finally {
          concurrent--;
        }
      },
    };
    // Why 2 s: the heartbeat renews every third of the lease, so this process may be held up for over
    // a second on a busy machine before attempt 2's lease runs out unrenewed (with 1 s: 0.67 s).
    const h = await createHarness({ llm: runtime, leaseSeconds: 2, maxAttempts: 5 });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'x',
        agents: [{ name: 'only', role: 'engineer', task: 't' }],
      });
      await waitFor(
        async () => (await h.engine.service.getSession(ACTOR, session.id)).tasks[0]?.status === 'running',
      );
      // The stall: the lease runs out under the running attempt, and the reaper re-queues it (in one
      // transaction, so that no heartbeat renews the lease in between).
      const expired = await h.engine.queue.run(async (trx) => {
        await trx
          .updateTable('tasks')
          .set({ lease_expires_at: Date.now() - 1 })
          .where('session_id', '=', session.id)
          .execute();
        const rows = await findExpiredLeases(trx, Date.now(), 10);
        return Promise.all(rows.map((row) => expireTaskLease(trx, row, Date.now())));
      });
      assert.equal(expired[0]?.retried, true);
      const done = await h.waitForSession(session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.tasks[0]!.attempts, 2, 'attempt 2 was not expired in turn');
      assert.equal(done.result, 'attempt 2');
      assert.equal(firstStopped, true, 'the earlier run was stopped');
    } finally {
      await h.close();
    }
  });

  test('retries are bounded by maxAttempts, then the task and session fail with the reason', async () => {
    const h = await createHarness({ llm: instant, start: false, maxAttempts: 2 });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'x',
        agents: [
          { name: 'a', role: 'engineer', task: 't' },
          { name: 'b', role: 'engineer', task: 't', depends_on: ['a'] },
        ],
      });
      await claimAsGhost(h, 'ghost-1');
      assert.deepEqual(
        (await reapAll(h)).map((r) => r.retried),
        [true],
      );
      await claimAsGhost(h, 'ghost-2');
      const second = await reapAll(h);
      assert.deepEqual(
        second.map((r) => [r.retried, r.sessionFinished]),
        [[false, 'failed']],
      );
      const detail = await h.engine.service.getSession(ACTOR, session.id);
      assert.equal(detail.status, 'failed');
      assert.match(detail.error!, /task a failed: lease expired on attempt 2 of 2/);
      assert.deepEqual(
        detail.tasks.map((task) => task.status),
        ['failed', 'cancelled'],
      );
      const events = await h.allEvents(session.id);
      assertContiguous(events);
      assert.equal(events.at(-1)!.type, 'session.finished');
    } finally {
      await h.close();
    }
  });

  test('a lost lease whose recorded spend puts its session over budget counts one budget stop', async () => {
    const h = await createHarness({ llm: instant, start: false, maxAttempts: 1 });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'x',
        agents: [{ name: 'a', role: 'engineer', task: 't' }],
        budget: { maxTokens: 100 },
      });
      const [claimed] = await claimAsGhost(h, 'ghost');
      assert.ok(claimed);
      // The lost run recorded 1,500 tokens: the reaper charges them, over the session's 100.
      const claim = { taskId: claimed.id, attempt: 1, owner: 'ghost' };
      assert.ok(await recordUnsettledUsage(h.handle.db, claim, { ...zero, inputTokens: 1500 }, Date.now()));
      const stops: BudgetStopScope[] = [];
      await reapExpiredLeases({
        queue: h.engine.queue,
        notifier: createLocalNotifier(),
        logger: createLogger({ level: 'silent' }),
        observer: { budgetExceeded: (scope) => stops.push(scope) },
        now: Date.now,
        onReadied() {},
      });
      const detail = await h.engine.service.getSession(ACTOR, session.id);
      assert.equal(detail.status, 'failed');
      assert.match(detail.error ?? '', /^BUDGET_EXCEEDED/);
      assert.deepEqual(stops, ['session']);
    } finally {
      await h.close();
    }
  });

  test('a lost lease with attempts left whose recorded spend puts its session over budget fails the session instead of running the task again', async () => {
    const h = await createHarness({ llm: instant, start: false, maxAttempts: 3 });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'x',
        agents: [
          { name: 'a', role: 'engineer', task: 't' },
          { name: 'b', role: 'engineer', task: 't' },
        ],
        budget: { maxTokens: 100 },
      });
      const claimed = await claimAsGhost(h, 'ghost');
      assert.equal(claimed.length, 2);
      // One lost run recorded 1,500 tokens: the reaper charges them, over the session's 100.
      const claim = { taskId: claimed[0]!.id, attempt: 1, owner: 'ghost' };
      assert.ok(await recordUnsettledUsage(h.handle.db, claim, { ...zero, inputTokens: 1500 }, Date.now()));
      const stops: BudgetStopScope[] = [];
      const finished: string[] = [];
      await reapExpiredLeases({
        queue: h.engine.queue,
        notifier: createLocalNotifier(),
        logger: createLogger({ level: 'silent' }),
        observer: {
          budgetExceeded: (scope) => stops.push(scope),
          sessionFinished: (status) => finished.push(status),
        },
        now: Date.now,
        onReadied() {},
      });
      const detail = await h.engine.service.getSession(ACTOR, session.id);
      assert.equal(detail.status, 'failed');
      assert.match(detail.error ?? '', /^BUDGET_EXCEEDED: token budget exceeded: 1500 of 100 tokens used/);
      assert.equal(detail.usage.inputTokens, 1500, 'the lost run charged once');
      assert.deepEqual(
        detail.tasks.map((task) => task.status),
        ['cancelled', 'cancelled'],
        'neither task is left to run again',
      );
      assert.deepEqual(stops, ['session']);
      assert.deepEqual(finished, ['failed']);
      const events = await h.allEvents(session.id);
      assertContiguous(events);
      assert.equal(events.at(-1)!.type, 'session.finished');
    } finally {
      await h.close();
    }
  });

  test('a lost lease whose recorded spend fails its session stops the other runs of that session here at once', async () => {
    // The run of `b` goes on in this process; the run of the other task was lost with its worker.
    const stopped: string[] = [];
    const waiting: AgentRuntime = {
      kind: 'fake',
      run: (_task, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            stopped.push((ctx.signal.reason as Error).message);
            reject(ctx.signal.reason);
          });
        }),
    };
    const h = await createHarness({ llm: waiting, start: false, leaseSeconds: 3, concurrency: 2 });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'x',
        agents: [
          { name: 'a', role: 'engineer', task: 't' },
          { name: 'b', role: 'engineer', task: 't' },
        ],
        budget: { maxTokens: 100 },
      });
      const [lost] = await h.engine.queue.run((trx) =>
        claimReadyTasks(trx, 'sqlite', { owner: 'ghost', limit: 1, leaseMs: 60_000, now: Date.now() }),
      );
      assert.ok(lost);
      const claim = { taskId: lost.id, attempt: 1, owner: 'ghost' };
      assert.ok(await recordUnsettledUsage(h.handle.db, claim, { ...zero, inputTokens: 1500 }, Date.now()));
      h.engine.start();
      await waitFor(async () => {
        const detail = await h.engine.service.getSession(ACTOR, session.id);
        return detail.tasks.some((task) => task.status === 'running') ? true : undefined;
      });
      // The ghost's lease runs out: the reaper charges its 1,500 tokens, over the session's 100.
      await h.engine.queue.run((trx) =>
        trx.updateTable('tasks').set({ lease_expires_at: 0 }).where('id', '=', lost.id).execute(),
      );
      const detail = await h.waitForSession(session.id);
      assert.match(detail.error ?? '', /^BUDGET_EXCEEDED/);
      await waitFor(() => (stopped.length > 0 ? true : undefined));
      // Stopped for its session by the reaper's pass, not later, when its lease renewal found it gone.
      assert.deepEqual(stopped, ['task stopped: cancel']);
    } finally {
      await h.close();
    }
  });

  test('a session whose stored budget cannot be read is reaped and finished as one without a budget, and does not stop the others', async () => {
    const h = await createHarness({ llm: instant, start: false, maxAttempts: 3 });
    try {
      const create = (budget: Record<string, number>) =>
        h.engine.service.createSession(ACTOR, {
          objective: 'x',
          agents: [{ name: 'a', role: 'engineer', task: 't' }],
          budget,
        });
      const { session: damaged } = await create({ maxTokens: 100 });
      const { session: other } = await create({ maxTokens: 100 });
      // Damaged by hand (an operator's edit of the JSON gone wrong, say).
      await h.handle.db
        .updateTable('session_settings')
        .set({ budget: '{"maxTokens": 100,' })
        .where('session_id', '=', damaged.id)
        .execute();
      const claimed = await claimAsGhost(h, 'ghost');
      assert.equal(claimed.length, 2);
      // The reaper's pass goes on: both lost runs are retried.
      const results = await reapAll(h);
      assert.deepEqual(
        results.map((result) => result.retried),
        [true, true],
      );
      // One batch of finishes holding both sessions is applied.
      const again = await h.engine.queue.run((trx) =>
        claimReadyTasks(trx, 'sqlite', { owner: 'w', limit: 100, leaseMs: 60_000, now: Date.now() }),
      );
      assert.equal(again.length, 2);
      await h.engine.queue.run((trx) =>
        trx
          .updateTable('tasks')
          .set({ status: 'running' })
          .where(
            'id',
            'in',
            again.map((task) => task.id),
          )
          .execute(),
      );
      const ok = { ok: true as const, output: 'x', usage: { ...zero, inputTokens: 10 } };
      const finished = await h.engine.queue.run(async (trx) => {
        const out = [];
        for (const task of again)
          out.push(
            await finishTask(
              trx,
              {
                taskId: task.id,
                sessionId: task.session_id,
                tenantId: 'default',
                name: 'a',
                owner: 'w',
                attempt: 2,
              },
              ok,
              Date.now(),
            ),
          );
        return out;
      });
      assert.deepEqual(
        finished.map((effects) => effects.sessionFinished),
        ['completed', 'completed'],
      );
      const stored = await h.handle.db
        .selectFrom('sessions')
        .select(['id', 'status', 'input_tokens'])
        .where('id', 'in', [damaged.id, other.id])
        .orderBy('id')
        .execute();
      assert.deepEqual(
        stored.map((row) => [row.status, Number(row.input_tokens)]),
        [
          ['completed', 10],
          ['completed', 10],
        ],
      );
    } finally {
      await h.close();
    }
  });

  test('a completion for a lease no longer held is rejected and never applied twice', async () => {
    const h = await createHarness({ llm: instant, start: false });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'x',
        agents: [{ name: 'only', role: 'engineer', task: 't' }],
      });
      const [first] = await claimAsGhost(h, 'old-owner');
      await reapAll(h);
      const [second] = await h.engine.queue.run((trx) =>
        claimReadyTasks(trx, 'sqlite', { owner: 'new-owner', limit: 1, leaseMs: 60_000, now: Date.now() }),
      );
      assert.equal(second!.attempts, 2);
      await h.engine.queue.run((trx) =>
        trx.updateTable('tasks').set({ status: 'running' }).where('id', '=', second!.id).execute(),
      );
      const claimOf = (owner: string, attempt: number) => ({
        taskId: first!.id,
        sessionId: session.id,
        tenantId: 'default',
        name: 'only',
        owner,
        attempt,
      });
      const ok = { ok: true as const, output: 'x', usage: zero };
      const stale = await h.engine.queue.run((trx) =>
        finishTask(trx, claimOf('old-owner', 1), ok, Date.now()),
      );
      assert.equal(stale.applied, false);
      const current = await h.engine.queue.run((trx) =>
        finishTask(trx, claimOf('new-owner', 2), ok, Date.now()),
      );
      assert.equal(current.applied, true);
      assert.equal(current.sessionFinished, 'completed');
      const replay = await h.engine.queue.run((trx) =>
        finishTask(trx, claimOf('new-owner', 2), ok, Date.now()),
      );
      assert.equal(replay.applied, false);
      const events = await h.allEvents(session.id);
      assert.equal(events.filter((event) => event.type === 'task.result').length, 1);
      assert.equal(events.filter((event) => event.type === 'session.finished').length, 1);
    } finally {
      await h.close();
    }
  });

  test('after a crash mid-run a new engine finishes every session, each completion applied once', async () => {
    const dir = makeTempDir();
    // First engine: tasks named `a` finish, the others hang until the "crash".
    const flaky: AgentRuntime = {
      kind: 'fake',
      run: (task, ctx) =>
        task.name === 'a'
          ? Promise.resolve({ output: `a of ${task.sessionId}` })
          : new Promise((_resolve, reject) =>
              ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
            ),
    };
    const first = await createHarness({ dir, llm: flaky, leaseSeconds: 2, concurrency: 4 });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { session } = await first.engine.service.createSession(ACTOR, {
        objective: `session ${i}`,
        agents: [
          { name: 'a', role: 'engineer', task: 't' },
          { name: 'b', role: 'tester', task: 't', depends_on: ['a'] },
          { name: 'c', role: 'reviewer', task: 't', depends_on: ['b'] },
          { name: 'd', role: 'engineer', task: 't' },
        ],
      });
      ids.push(session.id);
    }
    await waitFor(async () => {
      const counts = await first.engine.getQueueCounts();
      return counts.tasks.running >= 4 ? true : undefined;
    });
    await first.close({ crash: true, keepDir: true });

    const second = await createHarness({ dir, llm: instant, leaseSeconds: 2, concurrency: 4 });
    try {
      for (const id of ids) {
        const done = await second.waitForSession(id, 30_000);
        assert.equal(done.status, 'completed', done.error ?? '');
        assert.ok(done.tasks.every((task) => task.status === 'succeeded'));
        const events = await second.allEvents(id);
        assertContiguous(events);
        for (const task of done.tasks) {
          const results = events.filter(
            (event) => event.type === 'task.result' && event.data.taskId === task.id,
          );
          assert.equal(results.length, 1, `task ${task.name} completed ${results.length} times`);
          const succeeded = events.filter(
            (event) =>
              event.type === 'task.status' && event.data.taskId === task.id && event.data.to === 'succeeded',
          );
          assert.equal(succeeded.length, 1);
        }
        assert.equal(events.at(-1)!.type, 'session.finished');
        assert.equal(events.filter((event) => event.type === 'session.finished').length, 1);
      }
      const retried = (await Promise.all(ids.map((id) => second.engine.service.getSession(ACTOR, id))))
        .flatMap((detail) => detail.tasks)
        .filter((task) => task.attempts > 1);
      assert.ok(retried.length >= 4, 'tasks held by the crashed engine were re-run');
    } finally {
      await second.close();
    }
  });
});
