// GET /v1/sessions?retryOf=<id> (and with a status besides) must read a range of an index holding
// the tenant's retries, never walk the tenant's whole session list: without statistics SQLite's
// planner took `sessions_tenant_created` for its order, so a tenant with thousands of sessions and
// a session retried once or never had every one of its session rows read at each such request.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { type CompiledQuery, Kysely } from 'kysely';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { IGNORE_DAMAGED_JSON } from '../../src/store/rows.ts';
import type { Database } from '../../src/store/schema.ts';
import { listSessionRecords } from '../../src/store/session-store.ts';
import { createSqliteDialect } from '../../src/store/sqlite-dialect.ts';

describe('session list queries on SQLite', { timeout: 30_000 }, () => {
  let dir: string;
  let sqlite: SqliteDatabase.Database;
  let db: Kysely<Database>;
  const executed: CompiledQuery[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-session-list-index-'));
    sqlite = new SqliteDatabase(join(dir, 'maos.db'));
    db = new Kysely<Database>({
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

  /** EXPLAIN QUERY PLAN of the statement `run` ran last, as one string. */
  async function planOf(run: () => Promise<unknown>): Promise<string> {
    executed.length = 0;
    await run();
    const query = executed.at(-1);
    assert.ok(query, 'no statement was run');
    return (
      sqlite.prepare(`explain query plan ${query.sql}`).all(...(query.parameters as unknown[])) as Array<{
        detail: string;
      }>
    )
      .map((row) => row.detail)
      .join('\n');
  }

  const original = '0d6c3f0e-8a4b-4c1d-9e2f-3a4b5c6d7e8f';
  const cursorAt = Buffer.from(JSON.stringify([1_700_000_000_000, original])).toString('base64url');

  for (const [label, query] of [
    ['the retries of a session', { retryOf: original, limit: 20 }],
    ['their next page', { retryOf: original, limit: 20, cursor: cursorAt }],
    ['those in a status', { retryOf: original, status: 'failed' as const, limit: 20 }],
  ] as const) {
    test(`${label} are read from the retries' index, in its order`, async () => {
      const plan = await planOf(() => listSessionRecords(db, 'tenant-a', query, IGNORE_DAMAGED_JSON));
      assert.match(
        plan,
        /USING (COVERING )?INDEX sessions_tenant_retry_of_created \(tenant_id=\? AND retry_of=\?/,
      );
      assert.doesNotMatch(plan, /TEMP B-TREE/, 'no sort of what was read');
    });
  }

  test('the list without retryOf keeps its indexes', async () => {
    assert.match(
      await planOf(() => listSessionRecords(db, 'tenant-a', { limit: 20 }, IGNORE_DAMAGED_JSON)),
      /INDEX sessions_tenant_created \(tenant_id=\?\)/,
    );
    assert.match(
      await planOf(() =>
        listSessionRecords(db, 'tenant-a', { status: 'failed', limit: 20 }, IGNORE_DAMAGED_JSON),
      ),
      /INDEX sessions_tenant_status_created \(tenant_id=\? AND status=\?\)/,
    );
  });
});
