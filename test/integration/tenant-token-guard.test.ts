// The runtime guard of the tenant daily token quota, on the real ledger (tenant_usage_days): a
// tenant's runs are refused at their start once today's tokens reach the cap and stopped once
// today's tokens and what its runs stream reach it; other tenants are not affected, a finished
// run's stream stops counting, and a new UTC day starts from its own (empty) row.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { cancelOpenTasks, zeroUsage } from '../../src/engine/advance-sessions.ts';
import { recordUnsettledUsage } from '../../src/engine/run-spend.ts';
import { createBudgetGuard } from '../../src/engine/session-budget.ts';
import { finishTasks } from '../../src/engine/task-ops.ts';
import { chargeTenantDays, readTenantDayTokens, utcDayStart } from '../../src/engine/tenant-usage-days.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { newSessionRow, newTaskRow } from '../../src/store/rows.ts';
import type { Database } from '../../src/store/schema.ts';
import { STORE_BACKENDS, useStoreHandles } from '../fixtures/store-backends.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const DAY = 86_400_000;
const OWNER = 'worker-1';

/** A running session of `tenantId` with one task running under OWNER's first attempt. */
async function seedRunningTask(db: Kysely<Database>, tenantId: string, now: number) {
  const sessionId = randomUUID();
  const taskId = randomUUID();
  await db
    .insertInto('sessions')
    .values(
      newSessionRow(
        {
          id: sessionId,
          tenant_id: tenantId,
          objective: 'x',
          strategy: 'static',
          status: 'running',
          metadata: '{}',
          started_at: now,
        },
        now,
      ),
    )
    .execute();
  await db
    .insertInto('tasks')
    .values({
      ...newTaskRow(
        { tenantId, sessionId, maxAttempts: 1, now },
        {
          id: taskId,
          kind: 'agent',
          name: 't',
          role: 'researcher',
          agent_id: null,
          instructions: 'x',
          runner: null,
          phase: 0,
          position: 0,
          status: 'running',
        },
      ),
      attempts: 1,
      lease_owner: OWNER,
      lease_expires_at: now + 60_000,
    })
    .execute();
  return { tenantId, sessionId, taskId, attempt: { taskId, attempt: 1, owner: OWNER } };
}

for (const backend of STORE_BACKENDS) {
  describe(`tenant daily token guard: ${backend.name}`, { timeout: 60_000 }, () => {
    const store = useStoreHandles(backend, 1);
    const addTenants = (...ids: string[]) =>
      store.handles[0]!.db.insertInto('tenants')
        .values(ids.map((id) => ({ id, name: id, created_at: 0 })))
        .execute();

    test('refuses a start at the cap, stops the tenant’s streams together, spares other tenants', async () => {
      const db = store.handles[0]!.db;
      let clock = utcDayStart(Date.now()) + 3_600_000;
      const guard = createBudgetGuard(db, { maxDailyTokensPerTenant: 1000, now: () => clock });
      const tenant = `guard-${backend.name}-a`;
      const other = `guard-${backend.name}-b`;
      await addTenants(tenant, other);
      const task = (tenantId: string, taskId: string) => ({ tenantId, sessionId: `s-${taskId}`, taskId });
      const tokens = (outputTokens: number) => ({ ...zeroUsage(), outputTokens });
      await chargeTenantDays(db, new Map([[tenant, { ...zeroUsage(), inputTokens: 600 }]]), clock);

      const first = task(tenant, 'first');
      const second = task(tenant, 'second');
      await guard.prepare(first);
      await guard.prepare(second);
      assert.equal(guard.check(first, tokens(250)), null);
      // 600 charged + 250 + 150 streamed by the two runs.
      const stop = guard.check(second, tokens(150));
      assert.ok(stop instanceof AppError);
      assert.equal(stop.code, 'QUOTA_EXCEEDED');
      assert.match(stop.message, /^The tenant used 1000 tokens today \(limit 1000\); the agent was stopped$/);
      // Its wait: until 00:00 UTC on the guard's clock (01:00 now).
      assert.equal(stop.retryAfterSeconds, 23 * 3600);
      // Another tenant's run streams as much as it likes under its own cap.
      const foreign = task(other, 'foreign');
      await guard.prepare(foreign);
      assert.equal(guard.check(foreign, tokens(900)), null);
      // The first run ended (its finish charges it): its stream no longer counts.
      guard.release(first);
      assert.equal(guard.check(second, tokens(150)), null);
      guard.release(second);

      // The day is at the cap: a run does not start.
      await chargeTenantDays(db, new Map([[tenant, tokens(400)]]), clock);
      await assert.rejects(guard.prepare(task(tenant, 'late')), (error: unknown) => {
        assert.ok(error instanceof AppError);
        assert.equal(error.code, 'QUOTA_EXCEEDED');
        assert.match(error.message, /used 1000 tokens today \(limit 1000\); the agent was not started$/);
        assert.equal(error.retryAfterSeconds, 23 * 3600);
        return true;
      });
      // At 00:00 UTC the next day starts from its own row.
      clock += DAY;
      await guard.prepare(task(tenant, 'tomorrow'));
      assert.equal(guard.check(task(tenant, 'tomorrow'), tokens(999)), null);
    });

    test('a run still counts today’s tokens after another run of its tenant has ended', async () => {
      const db = store.handles[0]!.db;
      const clock = utcDayStart(Date.now()) + 3_600_000;
      const guard = createBudgetGuard(db, { maxDailyTokensPerTenant: 1000, now: () => clock });
      const tenant = `guard-${backend.name}-siblings`;
      await addTenants(tenant);
      await chargeTenantDays(db, new Map([[tenant, { ...zeroUsage(), inputTokens: 900 }]]), clock);
      const run = (taskId: string) => ({ tenantId: tenant, sessionId: `s-${taskId}`, taskId });
      const tokens = (outputTokens: number) => ({ ...zeroUsage(), outputTokens });

      // The first run ends while the second is prepared but has not flushed yet.
      await guard.prepare(run('ended'));
      await guard.prepare(run('waiting'));
      assert.equal(guard.check(run('ended'), tokens(10)), null);
      guard.release(run('ended'));
      // 900 charged + 150 streamed: stopped (at the latest once the day is read again).
      const stop = await waitFor(() => guard.check(run('waiting'), tokens(150)) ?? undefined);
      assert.ok(stop instanceof AppError);
      assert.equal(stop.code, 'QUOTA_EXCEEDED');
    });

    test('a cancelled run’s stream stops counting once the cancel has charged it', async () => {
      const db = store.handles[0]!.db;
      let clock = utcDayStart(Date.now()) + 3_600_000;
      const guard = createBudgetGuard(db, { maxDailyTokensPerTenant: 1000, now: () => clock });
      const tenant = `guard-${backend.name}-cancel`;
      await addTenants(tenant);
      const tokens = (outputTokens: number) => ({ ...zeroUsage(), outputTokens });
      const cancelled = await seedRunningTask(db, tenant, clock);
      const sibling = await seedRunningTask(db, tenant, clock);
      await guard.prepare(cancelled);
      await guard.prepare(sibling);
      assert.equal(guard.check(cancelled, tokens(600)), null);
      assert.equal(guard.check(sibling, tokens(100)), null);
      // The run has recorded its 600 tokens; its session is cancelled: the cancel charges them.
      assert.ok(await recordUnsettledUsage(db, cancelled.attempt, tokens(600), clock));
      await db
        .transaction()
        .execute((trx) => cancelOpenTasks(trx, cancelled.sessionId, 'cancelled', clock, []));
      assert.equal(await readTenantDayTokens(db, tenant, utcDayStart(clock)), 600);

      // Read again while the cancelled run has not noticed yet (it still flushes, release pending):
      // 600 charged + the sibling's 350 is under the cap; its 600 streamed are not counted again.
      clock += 1000;
      await guard.prepare(sibling);
      assert.equal(guard.check(cancelled, tokens(600)), null);
      assert.equal(guard.check(sibling, tokens(350)), null);
      // The charged tokens do count: the sibling is stopped at 1000.
      const stop = guard.check(sibling, tokens(400));
      assert.ok(stop instanceof AppError);
      assert.match(stop.message, /^The tenant used 1000 tokens today/);
      guard.release(cancelled);
      guard.release(sibling);
    });

    test('a replica counts the spend other replicas’ runs have recorded, each run once', async () => {
      const db = store.handles[0]!.db;
      let clock = utcDayStart(Date.now()) + 3_600_000;
      // Two replicas: each its own guard and runs, one store.
      const replicaA = createBudgetGuard(db, { maxDailyTokensPerTenant: 1000, now: () => clock });
      const replicaB = createBudgetGuard(db, { maxDailyTokensPerTenant: 1000, now: () => clock });
      const tenant = `guard-${backend.name}-replicas`;
      await addTenants(tenant);
      const tokens = (outputTokens: number) => ({ ...zeroUsage(), outputTokens });
      const onA = await seedRunningTask(db, tenant, clock);
      const onB = await seedRunningTask(db, tenant, clock);
      // A prepare reads the tenant's figures afresh (over the cap it also refuses: not asked here).
      const readAgain = (guard: typeof replicaA, task: typeof onA) => guard.prepare(task).catch(() => {});
      await replicaA.prepare(onA);
      await replicaB.prepare(onB);
      assert.equal(replicaA.check(onA, tokens(700)), null);
      assert.equal(replicaB.check(onB, tokens(200)), null);
      // A's run records its spend with an output flush, as it does at most once a second.
      assert.ok(await recordUnsettledUsage(db, onA.attempt, tokens(700), clock));

      // A record its task's attempt no longer holds (re-claimed elsewhere) is not counted: a cancel
      // would not charge it either.
      const reclaimed = await seedRunningTask(db, tenant, clock);
      assert.ok(await recordUnsettledUsage(db, reclaimed.attempt, tokens(5000), clock));
      await db
        .updateTable('tasks')
        .set({ attempts: 2, lease_owner: 'worker-2' })
        .where('id', '=', reclaimed.taskId)
        .execute();

      // B's next read sees A's 700 in flight: 700 + 200 is under the cap, 700 + 300 reaches it.
      clock += 1000;
      await readAgain(replicaB, onB);
      assert.equal(replicaB.check(onB, tokens(200)), null);
      const stop = replicaB.check(onB, tokens(300));
      assert.ok(stop instanceof AppError);
      assert.match(stop.message, /^The tenant used 1000 tokens today \(limit 1000\)/);
      // A counts its own run once, by what it streamed beyond its record: 750 + B's record (none).
      await readAgain(replicaA, onA);
      assert.equal(replicaA.check(onA, tokens(750)), null);
      // B's run records 200 of its spend: A sees it with its own 799 under the cap, with 800 at it.
      assert.ok(await recordUnsettledUsage(db, onB.attempt, tokens(200), clock));
      clock += 1000;
      await readAgain(replicaA, onA);
      assert.equal(replicaA.check(onA, tokens(799)), null);
      assert.ok(replicaA.check(onA, tokens(800)) instanceof AppError);

      // A's run finishes: its 750 go from its record to the day's row, counted once on B too.
      replicaA.release(onA);
      await db.transaction().execute((trx) =>
        finishTasks(
          trx,
          [
            {
              claim: { ...onA.attempt, sessionId: onA.sessionId, tenantId: tenant, name: 't' },
              outcome: { ok: true, output: 'done', usage: tokens(750), spendOnRecord: tokens(700) },
            },
          ],
          clock,
        ),
      );
      assert.equal(await readTenantDayTokens(db, tenant, utcDayStart(clock)), 750);
      clock += 1000;
      await readAgain(replicaB, onB);
      assert.equal(replicaB.check(onB, tokens(249)), null);
      assert.ok(replicaB.check(onB, tokens(250)) instanceof AppError);
      replicaB.release(onB);
    });

    test('without a cap the guard stops nothing, however much the tenant spent', async () => {
      const db = store.handles[0]!.db;
      const tenant = `uncapped-${backend.name}`;
      await addTenants(tenant);
      await chargeTenantDays(
        db,
        new Map([[tenant, { ...zeroUsage(), inputTokens: 10_000_000 }]]),
        Date.now(),
      );
      const guard = createBudgetGuard(db);
      const run = { tenantId: tenant, sessionId: 'no-such-session', taskId: 'run' };
      await guard.prepare(run);
      assert.equal(guard.check(run, { ...zeroUsage(), outputTokens: 10_000_000 }), null);
    });
  });
}
