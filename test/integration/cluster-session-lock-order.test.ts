// PostgreSQL: the sweeps that end several sessions in one transaction (the lease reaper, the
// deadline sweep) lock those sessions in id order, as a finish does (docs/operations-cluster.md):
// locked one by one in another order, they held one session while waiting for the next, which
// another replica's finish could hold while waiting for the first — a deadlock.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { reapExpiredLeases } from '../../src/engine/lease-reaper.ts';
import { createLocalNotifier } from '../../src/engine/notifier.ts';
import { expireSessionDeadlines } from '../../src/engine/session-deadlines.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { claimReadyTasks } from '../../src/store/task-store.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { waitForLockWaiter } from '../fixtures/pause-query.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';

const instant: AgentRuntime = { kind: 'llm', run: async () => ({ output: 'done' }) };

/** Two sessions of one task each, as [lower id, higher id]. */
async function twoSessions(h: Harness, budget?: { deadlineSeconds: number }): Promise<[string, string]> {
  const ids: string[] = [];
  for (const name of ['one', 'two']) {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: name,
      agents: [{ name, role: 'engineer', task: name }],
      ...(budget ? { budget } : {}),
    });
    ids.push(session.id);
  }
  const [low, high] = ids.sort();
  return [low!, high!];
}

/**
 * Holds the lower session's row as another replica's finish would, until `sweep` waits for it;
 * then tells whether the higher session's row can be locked at once (the sweep holds none of its
 * sessions while it waits). The sweep then goes on.
 */
async function higherFreeWhileSweepWaits(
  h: Harness,
  url: string,
  [low, high]: [string, string],
  sweep: () => Promise<unknown>,
): Promise<boolean> {
  const other = new pg.Client({ connectionString: url });
  await other.connect();
  let swept: Promise<unknown> | undefined;
  try {
    await other.query('begin');
    await other.query('select id from sessions where id = $1 for no key update', [low]);
    swept = sweep();
    await waitForLockWaiter(h.handle.db);
    try {
      await other.query('select id from sessions where id = $1 for no key update nowait', [high]);
      return true;
    } catch (error) {
      if ((error as { code?: string }).code === '55P03') return false;
      throw error;
    }
  } finally {
    await other.query('rollback').catch(() => undefined);
    await other.end();
    await swept;
  }
}

describe('PostgreSQL: sweeps lock the sessions they end in id order', { timeout: 60_000 }, () => {
  test('the lease reaper, whose expired leases are not in session order', async (t) => {
    const database = await createTestDatabase();
    t.after(() => database.drop());
    const h = await createHarness({ llm: instant, start: false, storeUrl: database.url });
    t.after(() => h.close());
    const [low, high] = await twoSessions(h);
    await h.engine.queue.run((trx) =>
      claimReadyTasks(trx, 'postgres', { owner: 'ghost', limit: 10, leaseMs: 60_000, now: Date.now() }),
    );
    // Both leases ran out, the higher session's first: the reaper visits it first.
    for (const [sessionId, agoMs] of [
      [high, 60_000],
      [low, 30_000],
    ] as const) {
      await sql`update tasks set status = 'running',
        lease_expires_at = (extract(epoch from clock_timestamp()) * 1000)::bigint - ${agoMs}
        where session_id = ${sessionId}`.execute(h.handle.db);
    }
    const free = await higherFreeWhileSweepWaits(h, database.url, [low, high], () =>
      reapExpiredLeases({
        queue: h.engine.queue,
        notifier: createLocalNotifier(),
        logger: createLogger({ level: 'silent' }),
        now: Date.now,
        onReadied() {},
      }),
    );
    assert.equal(free, true, 'the reaper held the higher session while waiting for the lower one');
    const tasks = await h.handle.db.selectFrom('tasks').select(['status', 'attempts']).execute();
    assert.deepEqual(
      tasks.map((task) => task.status),
      ['ready', 'ready'],
      'both leases were reaped once the other transaction ended',
    );
  });

  test('the deadline sweep, whose scan is not in session order', async (t) => {
    const database = await createTestDatabase();
    t.after(() => database.drop());
    const h = await createHarness({ llm: instant, start: false, storeUrl: database.url });
    t.after(() => h.close());
    const [low, high] = await twoSessions(h, { deadlineSeconds: 1 });
    // Both deadlines passed. The lower session's rows are written last, so the sweep's scan (in the
    // rows' physical order) meets the higher session first.
    for (const id of [high, low]) {
      await sql`update sessions set created_at = created_at - 60000 where id = ${id}`.execute(h.handle.db);
      await sql`update session_settings set budget = budget where session_id = ${id}`.execute(h.handle.db);
    }
    const free = await higherFreeWhileSweepWaits(h, database.url, [low, high], () =>
      h.engine.queue.run((trx) => expireSessionDeadlines(trx, Date.now())),
    );
    assert.equal(free, true, 'the sweep held the higher session while waiting for the lower one');
    for (const id of [low, high]) {
      const detail = await h.engine.service.getSession(ACTOR, id);
      assert.equal(detail.status, 'failed');
      assert.match(detail.error ?? '', /^BUDGET_EXCEEDED: deadline exceeded/);
    }
  });
});
