// A run that lost its lease but kept going charges what it spent to its task when it ends, and a
// `task.usage` event names the task: without it, a reader following the events (the console's
// session page reads only the tasks events name) never learned of the charge. Both ways a run loses
// its lease: a stall here longer than the lease (the task re-run by this process, the stalled run
// stopped), and a takeover by another replica (the run's finish rejected). Once the session has
// ended no event is written (`session.finished` stays last), but the session's detail shows the
// charge. On SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import type { SessionEvent, Usage } from '../../src/domain/types.ts';
import { expireTaskLease } from '../../src/engine/lease-expiry.ts';
import { appendEvents } from '../../src/store/event-store.ts';
import { claimReadyTasks, findExpiredLeases } from '../../src/store/task-store.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/** What the run that lost its lease spent; what the attempt that took over spent. */
const LATE: Usage = { inputTokens: 700, outputTokens: 300, cacheReadTokens: 0, costUsd: 0.5 };
const SECOND: Usage = { inputTokens: 20, outputTokens: 12, cacheReadTokens: 0, costUsd: 0.25 };
const ZERO: Usage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 };

interface Gate {
  promise: Promise<void>;
  open(): void;
}

/**
 * A runtime whose attempt n runs until `open(n)`, whatever its abort signal says (a run that keeps
 * going: its model call was under way), then answers with LATE (attempt 1) or SECOND usage.
 */
function gatedRuntime() {
  const gates = new Map<number, Gate>();
  const gate = (attempt: number): Gate => {
    let entry = gates.get(attempt);
    if (!entry) {
      let open = () => {};
      const promise = new Promise<void>((resolve) => {
        open = resolve;
      });
      entry = { promise, open };
      gates.set(attempt, entry);
    }
    return entry;
  };
  const started: number[] = [];
  const runtime: AgentRuntime = {
    kind: 'fake',
    async run(task) {
      started.push(task.attempt);
      await gate(task.attempt).promise;
      return { output: `attempt ${task.attempt}`, usage: task.attempt === 1 ? LATE : SECOND };
    },
  };
  return { runtime, started, open: (attempt: number) => gate(attempt).open() };
}

async function startSession(t: { after(fn: () => unknown): void }, store: 'sqlite' | 'postgres') {
  let storeUrl: string | undefined;
  if (store === 'postgres') {
    const database = await createTestDatabase();
    t.after(() => database.drop());
    storeUrl = database.url;
  }
  const gated = gatedRuntime();
  const h = await createHarness({ llm: gated.runtime, maxAttempts: 3, ...(storeUrl ? { storeUrl } : {}) });
  t.after(async () => {
    // Runs still waiting end now, so the engine's stop does not wait for them.
    for (const attempt of [1, 2, 3]) gated.open(attempt);
    await h.close();
  });
  const { session } = await h.engine.service.createSession(ACTOR, {
    objective: 'lease',
    agents: [{ name: 'only', role: 'engineer', task: 't' }],
  });
  await waitFor(() => gated.started.includes(1), 10_000, 'attempt 1 to start');
  const task = (await h.engine.service.getSession(ACTOR, session.id)).tasks[0]!;
  return { h, gated, sessionId: session.id, taskId: task.id };
}

/**
 * The stall: the running attempt's lease runs out and the reaper gives the task back (ready), in
 * one transaction so that no lease renewal comes in between; `thenClaimAs` claims it at once for
 * another replica (a worker id of none here), in that same transaction.
 */
async function loseLease(h: Harness, sessionId: string, thenClaimAs?: string) {
  await h.engine.queue.run(async (trx) => {
    await trx
      .updateTable('tasks')
      .set({ lease_expires_at: Date.now() - 1 })
      .where('session_id', '=', sessionId)
      .execute();
    const rows = await findExpiredLeases(trx, Date.now(), 10);
    assert.equal(rows.length, 1);
    const expired = await expireTaskLease(trx, rows[0]!, Date.now());
    assert.equal(expired.retried, true);
    if (thenClaimAs) {
      const claimed = await claimReadyTasks(trx, h.handle.dialect, {
        owner: thenClaimAs,
        limit: 10,
        leaseMs: 600_000,
        now: Date.now(),
      });
      assert.equal(claimed.length, 1);
    }
  });
}

function usageEvents(events: SessionEvent[]): SessionEvent[] {
  return events.filter((event) => event.type === 'task.usage');
}

async function taskUsage(h: Harness, sessionId: string): Promise<Usage> {
  return (await h.engine.service.getSession(ACTOR, sessionId)).tasks[0]!.usage;
}

for (const store of ['sqlite', 'postgres'] as const) {
  test(`${store}: a run stalled past its lease and re-run here charges its task when it ends, with a task.usage event`, async (t) => {
    const { h, gated, sessionId, taskId } = await startSession(t, store);
    await loseLease(h, sessionId);
    // Attempt 2 starts here; attempt 1 is stopped but its model call goes on.
    await waitFor(() => gated.started.includes(2), 10_000, 'attempt 2 to start');
    gated.open(1);
    const [event] = await waitFor(
      async () => {
        const found = usageEvents(await h.allEvents(sessionId));
        return found.length > 0 && found;
      },
      10_000,
      'the task.usage event',
    );
    assert.deepEqual(event!.data, { taskId, name: 'only', attempt: 1, usage: LATE });
    // The task shows the charge while attempt 2 still runs.
    const running = await h.engine.service.getSession(ACTOR, sessionId);
    assert.equal(running.status, 'running');
    assert.deepEqual(running.tasks[0]!.usage, LATE);
    assert.deepEqual(running.usage, LATE);

    gated.open(2);
    const done = await h.waitForSession(sessionId);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.equal(done.result, 'attempt 2');
    const both = {
      inputTokens: LATE.inputTokens + SECOND.inputTokens,
      outputTokens: LATE.outputTokens + SECOND.outputTokens,
      cacheReadTokens: 0,
      costUsd: LATE.costUsd + SECOND.costUsd,
    };
    assert.deepEqual(done.tasks[0]!.usage, both);
    assert.deepEqual(done.usage, both);
    const events = await h.allEvents(sessionId);
    assert.equal(usageEvents(events).length, 1, 'charged and announced once');
    assert.equal(events.at(-1)!.type, 'session.finished');
    assert.deepEqual(
      events.map((item) => item.seq),
      events.map((_, index) => index + 1),
    );
  });

  test(`${store}: a run whose task another replica took over charges its task when its finish is rejected, with a task.usage event`, async (t) => {
    const { h, gated, sessionId, taskId } = await startSession(t, store);
    await loseLease(h, sessionId, 'other-replica');
    // The run answers: its finish finds the task another's (attempt 2), and only charges its spend.
    gated.open(1);
    const [event] = await waitFor(
      async () => {
        const found = usageEvents(await h.allEvents(sessionId));
        return found.length > 0 && found;
      },
      10_000,
      'the task.usage event',
    );
    assert.deepEqual(event!.data, { taskId, name: 'only', attempt: 1, usage: LATE });
    const detail = await h.engine.service.getSession(ACTOR, sessionId);
    assert.equal(detail.status, 'running');
    assert.equal(detail.tasks[0]!.status, 'leased', 'claimed by the other replica');
    assert.equal(detail.tasks[0]!.attempts, 2, 'the other replica still holds it');
    assert.equal(detail.tasks[0]!.result, null, 'the rejected finish stored no result');
    assert.deepEqual(detail.tasks[0]!.usage, LATE);
    assert.deepEqual(detail.usage, LATE);
    await h.engine.service.cancelSession(ACTOR, sessionId);
    const events = await h.allEvents(sessionId);
    assert.equal(usageEvents(events).length, 1);
    assert.ok(event!.seq < events.at(-1)!.seq);
  });

  test(`${store}: a run that ends after its session was cancelled is charged with no event after session.finished; the detail shows it`, async (t) => {
    const { h, gated, sessionId } = await startSession(t, store);
    const cancelled = await h.engine.service.cancelSession(ACTOR, sessionId);
    assert.equal(cancelled.status, 'cancelled');
    // Read once the session and its task have ended, before the charge (the detail of an ended
    // session is kept in memory: it must not be served stale after it).
    assert.deepEqual(await taskUsage(h, sessionId), { ...LATE, inputTokens: 0, outputTokens: 0, costUsd: 0 });
    gated.open(1);
    await waitFor(
      async () => (await taskUsage(h, sessionId)).outputTokens === LATE.outputTokens,
      10_000,
      'the late charge',
    );
    const detail = await h.engine.service.getSession(ACTOR, sessionId);
    assert.deepEqual(detail.tasks[0]!.usage, LATE);
    assert.deepEqual(detail.usage, LATE);
    assert.deepEqual(detail.agents[0]?.usage, LATE);
    const events = await h.allEvents(sessionId);
    assert.equal(events.at(-1)!.type, 'session.finished', 'nothing follows the end');
    assert.deepEqual(usageEvents(events), []);
    const finished = events.at(-1)!.data as { usage: Usage };
    assert.equal(finished.usage.outputTokens, 0, 'the end was announced before the charge');
  });
}

// Another replica ends the session while the run's charge is being written here: the charge waits
// for the session's lock, then finds the session ended, so no `task.usage` lands after the
// `session.finished` that replica committed (a status read before the lock would have found it
// running).
test('postgres: a charge waiting on the session lock held by another replica ending the session writes no event after session.finished', async (t) => {
  const { h, gated, sessionId } = await startSession(t, 'postgres');
  await loseLease(h, sessionId, 'other-replica');
  const db = h.handle.db;
  const waitingOnLock = async () => {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`.execute(db);
    return rows[0]!.n > 0;
  };
  await db.transaction().execute(async (trx) => {
    // The other replica's cancel: the session locked first, as every writer of its end does.
    await sql`select id from sessions where id = ${sessionId} for no key update`.execute(trx);
    // The run answers here: its finish is rejected (the task is the other replica's), and its charge
    // waits for the lock.
    gated.open(1);
    await waitFor(waitingOnLock, 10_000, 'the charge to wait for the session lock');
    const now = Date.now();
    await trx
      .updateTable('sessions')
      .set({ status: 'cancelled', finished_at: now, updated_at: now })
      .where('id', '=', sessionId)
      .execute();
    await appendEvents(
      trx,
      { id: sessionId, tenantId: ACTOR.tenantId },
      [
        { type: 'session.status', data: { from: 'running', to: 'cancelled' } },
        { type: 'session.finished', data: { status: 'cancelled', error: null, result: null, usage: ZERO } },
      ],
      now,
    );
  });
  await waitFor(
    async () => (await taskUsage(h, sessionId)).outputTokens === LATE.outputTokens,
    10_000,
    'the charge',
  );
  const events = await h.allEvents(sessionId);
  assert.equal(events.at(-1)!.type, 'session.finished', 'nothing follows the end');
  assert.deepEqual(usageEvents(events), []);
  const detail = await h.engine.service.getSession(ACTOR, sessionId);
  assert.deepEqual(detail.usage, LATE, 'charged all the same');
});
