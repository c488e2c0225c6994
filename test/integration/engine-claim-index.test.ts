// The claim and lease-reaper queries must use their partial indexes on SQLite: with a bound
// `status = ?` the planner cannot use an index declared `WHERE status = 'ready'`, and every claim
// then scanned the whole tasks table (cost growing with every finished task ever stored).
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
import { claimReadyTasks, findExpiredLeases } from '../../src/store/task-store.ts';

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
  async function planOf(run: () => Promise<unknown>): Promise<string> {
    executed.length = 0;
    await run();
    const query = executed.at(-1);
    assert.ok(query, 'no statement was run');
    const rows = sqlite
      .prepare(`explain query plan ${query.sql}`)
      .all(...(query.parameters as unknown[])) as Array<{ detail: string }>;
    return rows.map((row) => row.detail).join('\n');
  }

  test('claiming ready tasks walks the ready-queue index, not the tasks table', async () => {
    const plan = await planOf(() =>
      claimReadyTasks(db, 'sqlite', { owner: 'w', limit: 8, leaseMs: 1000, now: Date.now() }),
    );
    assert.match(plan, /tasks_ready_queue/, plan);
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
