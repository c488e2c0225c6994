// The claim and lease-reaper queries must use their partial indexes on SQLite: with a bound
// `status = ?` the planner cannot use an index declared `WHERE status = 'ready'`, and every claim
// then scanned the whole tasks table (cost growing with every finished task ever stored). The
// claim's ranking of tenants and the hand-off's look for other tenants' ready tasks read ranges of
// those indexes too, never the whole ready queue.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { type CompiledQuery, Kysely } from 'kysely';
import { readLiveTasks } from '../../src/engine/tenant-token-guard.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import type { Database } from '../../src/store/schema.ts';
import { createSqliteDialect } from '../../src/store/sqlite-dialect.ts';
import { claimReadyTasks, findExpiredLeases, startReadiedTasks } from '../../src/store/task-store.ts';

describe('queue queries on SQLite', { timeout: 30_000 }, () => {
  let dir: string;
  let sqlite: SqliteDatabase.Database;
  let db: Kysely<Database>;
  const executed: CompiledQuery[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-claim-index-'));
    sqlite = new SqliteDatabase(join(dir, 'maos.db'));
    db = new Kysely<Database>({
      // MAOS's dialect, whose compiler writes parameters `+?` (sqlite-dialect.ts).
      dialect: createSqliteDialect(sqlite),
      log: (event) => {
        if (event.level === 'query') executed.push(event.query);
      },
    });
    await migrateToLatest(db);
  });
  after(async () => {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** EXPLAIN QUERY PLAN of the last statement run by `run`, as one string. */
  /** The plan of the last statement `run` ran (with `all`, of every one, one after the other). */
  async function planOf(run: () => Promise<unknown>, options: { all?: boolean } = {}): Promise<string> {
    executed.length = 0;
    await run();
    const queries = options.all ? [...executed] : executed.slice(-1);
    assert.ok(queries.length > 0, 'no statement was run');
    return queries
      .flatMap(
        (query) =>
          sqlite.prepare(`explain query plan ${query.sql}`).all(...(query.parameters as unknown[])) as Array<{
            detail: string;
          }>,
      )
      .map((row) => row.detail)
      .join('\n');
  }

  /** Ready tasks of `tenants` (the tasks' rows only: the claim reads nothing else). */
  async function seedReady(tenants: readonly string[]): Promise<void> {
    await db.deleteFrom('tasks').execute();
    await db.deleteFrom('sessions').execute();
    const now = Date.now();
    for (const tenant of tenants) {
      await db
        .insertInto('tenants')
        .values({ id: tenant, name: tenant, created_at: now })
        .onConflict((c) => c.column('id').doNothing())
        .execute();
      await db
        .insertInto('sessions')
        .values({
          id: `s-${tenant}`,
          tenant_id: tenant,
          objective: 'x',
          strategy: 'pipeline',
          status: 'running',
          plan_version: 1,
          created_at: now,
          updated_at: now,
        } as never)
        .execute();
      for (let i = 0; i < 3; i++) {
        await db
          .insertInto('tasks')
          .values({
            id: `${tenant}-${i}`,
            tenant_id: tenant,
            session_id: `s-${tenant}`,
            kind: 'agent',
            name: `t${i}`,
            role: 'engineer',
            instructions: 'x',
            status: 'ready',
            max_attempts: 3,
            created_at: now,
            updated_at: now,
            ready_at: now + i,
          } as never)
          .execute();
      }
    }
  }

  test('claiming the ready tasks of one tenant walks the ready-queue index, not the tasks table', async () => {
    await seedReady(['default']);
    const plan = await planOf(() =>
      claimReadyTasks(db, 'sqlite', { owner: 'w', limit: 8, leaseMs: 1000, now: Date.now() }),
    );
    assert.match(plan, /SEARCH tasks USING INDEX tasks_ready_tenant \(tenant_id=\?\)/, plan);
    assert.doesNotMatch(plan, /SCAN tasks/, plan);
  });

  test('ranking the tenants with ready tasks reads ranges of the queue and claimed-task indexes only', async () => {
    await seedReady(['default', 'tenant-b']);
    // The window of tenants (from one tenant id to the next), then the claim that ranks theirs.
    const plan = await planOf(
      () => claimReadyTasks(db, 'sqlite', { owner: 'w', limit: 8, leaseMs: 1000, now: Date.now() }),
      { all: true },
    );
    assert.match(plan, /USING COVERING INDEX tasks_ready_tenant \(tenant_id>\?\)/, plan);
    assert.match(plan, /USING COVERING INDEX tasks_ready_tenant \(tenant_id=\?\)/, plan);
    assert.match(plan, /tasks_claimed_tenant \(tenant_id=\?\)/, plan);
    assert.doesNotMatch(plan, /SCAN (tasks|t|c|l)\b/, plan);
  });

  test('the hand-off looks for ready tasks of other tenants in two ranges of the ready-queue index', async () => {
    await seedReady(['default', 'tenant-b']);
    await db
      .updateTable('tasks')
      .set({ status: 'pending', ready_at: null })
      .where('id', '=', 'default-0')
      .execute();
    const plan = await planOf(() =>
      startReadiedTasks(db, ['default-0'], { owner: 'w', leaseMs: 1000, now: Date.now() }),
    );
    assert.match(plan, /tasks_ready_tenant \(tenant_id<\?\)/, plan);
    assert.match(plan, /tasks_ready_tenant \(tenant_id>\?\)/, plan);
    assert.doesNotMatch(plan, /SCAN/, plan);
  });

  test('the tenant token guard reads the tenant’s claimed tasks through their index', async () => {
    const plan = await planOf(() => readLiveTasks(db, 'tenant-a'));
    assert.match(plan, /tasks_claimed_tenant/, plan);
  });

  test('the lease reaper walks the claimed-leases index', async () => {
    const plan = await planOf(() => findExpiredLeases(db, Date.now(), 10));
    assert.match(plan, /tasks_claimed_leases/, plan);
  });
});
