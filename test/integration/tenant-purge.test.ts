// Erasing a whole tenant (store/tenant-purge.ts) on SQLite and PostgreSQL: every table with a
// tenant column is purged or kept on purpose (from the catalogue, so a new table cannot be
// forgotten); the tenant's rows go from every purged table in bounded steps while another tenant's
// rows stay exactly as they were, and its `tenants` row stays with only its id; no statement holding
// SQLite's write lock reads a table in full; unfinished sessions refuse the purge with nothing
// changed; a purge stopped midway by a failing statement leaves a state that a second run finishes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type CompiledQuery, type Kysely, type KyselyPlugin, sql } from 'kysely';
import { AppError } from '../../src/errors/app-error.ts';
import type { DatabaseHandle } from '../../src/store/db.ts';
import {
  purgeTenant,
  readTenantInventory,
  TENANT_TABLES,
  TENANT_TABLES_KEPT,
} from '../../src/store/tenant-purge.ts';
import { seedSessionRows } from '../fixtures/session-rows.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';
import {
  countTenantRows,
  readRowsNotOf,
  seedTenantRows,
  tablesWithTenantColumn,
} from '../fixtures/tenant-rows.ts';

// biome-ignore lint/suspicious/noExplicitAny: reads tables of several areas' schemas
type AnyDb = Kysely<any>;

const PURGED = TENANT_TABLES.map((table) => table.name);
const KEPT = Object.keys(TENANT_TABLES_KEPT);

function rejectsWith(code: string, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof AppError, String(error));
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  };
}

/** Fails the next DELETE on `table` (a trigger), as a database error midway through a purge would. */
async function failDeletesOn(db: AnyDb, table: string, postgres: boolean): Promise<() => Promise<void>> {
  if (postgres) {
    await sql
      .raw(
        `create function test_refuse_delete() returns trigger language plpgsql as $$
         begin raise exception 'disk went away'; end $$`,
      )
      .execute(db);
    await sql
      .raw(
        `create trigger test_refuse_delete before delete on ${table} for each statement execute function test_refuse_delete()`,
      )
      .execute(db);
    return async () => {
      await sql.raw(`drop trigger test_refuse_delete on ${table}`).execute(db);
      await sql.raw('drop function test_refuse_delete()').execute(db);
    };
  }
  await sql
    .raw(
      `create trigger test_refuse_delete before delete on ${table} begin select raise(abort, 'disk went away'); end`,
    )
    .execute(db);
  return async () => {
    await sql.raw('drop trigger test_refuse_delete').execute(db);
  };
}

/**
 * Runs `fn` with a database that records, on SQLite, each statement that holds the write lock: a
 * write, or any statement between `begin immediate` and its end.
 */
async function recordWriteLockedStatements(
  db: AnyDb,
  fn: (recording: AnyDb) => Promise<unknown>,
): Promise<CompiledQuery[]> {
  const statements: CompiledQuery[] = [];
  let inTransaction = false;
  const recorder: KyselyPlugin = {
    transformQuery: ({ node, queryId }) => {
      const compiled = db.getExecutor().compileQuery(node, queryId);
      const text = compiled.sql.trim().toLowerCase();
      if (text.startsWith('begin immediate')) inTransaction = true;
      else if (text.startsWith('commit') || text.startsWith('rollback')) inTransaction = false;
      else if (inTransaction || /^(delete|update|insert)\b/.test(text)) statements.push(compiled);
      return node;
    },
    transformResult: async ({ result }) => result,
  };
  await fn(db.withPlugin(recorder));
  return statements;
}

for (const backend of STORE_BACKENDS) {
  const postgres = backend.name === 'postgres';
  describe(`purging a tenant: ${backend.name}`, { timeout: 120_000 }, () => {
    let handle: DatabaseHandle;
    let db: AnyDb;
    let dispose: () => Promise<void>;
    before(async () => {
      const opened = await backend.open(1);
      handle = opened.handles[0] as DatabaseHandle;
      db = handle.db as AnyDb;
      dispose = opened.dispose;
    });
    after(async () => {
      await dispose?.();
    });

    test('every table with a tenant column is purged or kept on purpose', async () => {
      const found = await tablesWithTenantColumn(db, postgres);
      // The tenant row is kept too, keyed by `id`.
      const classified = [...PURGED, ...KEPT.filter((name) => name !== 'tenants')].sort();
      assert.deepEqual(found, classified);
    });

    test("all of the tenant's rows go, in bounded steps; another tenant's stay as they were", async () => {
      await seedTenantRows(db, 'acme', { events: 25, usageDays: 9, cacheEntries: 7, name: 'Acme Corp.' });
      await seedTenantRows(db, 'globex');
      for (const tenant of ['acme', 'globex']) {
        const counts = await countTenantRows(db, tenant);
        for (const table of [...PURGED, ...KEPT])
          assert.ok(counts[table]! > 0, `${tenant} has rows in ${table}`);
      }
      const others = await readRowsNotOf(db, 'acme');
      const before = await countTenantRows(db, 'acme');
      const inventory = await readTenantInventory(db, 'acme');
      assert.deepEqual(
        inventory.rows,
        Object.fromEntries(PURGED.map((table) => [table, before[table]])),
        'the dry run counts what the purge deletes',
      );
      assert.equal(inventory.unfinished.count, 0);
      assert.equal(inventory.name, 'Acme Corp.', 'a name other than the id is listed');
      assert.equal(inventory.kept.tenants, 1);
      const tenantRow = await db.selectFrom('tenants').selectAll().where('id', '=', 'acme').execute();

      const revoked = { apiKeys: 0 };
      const renamed = { tenant: false };
      const deleted = await purgeTenant(db, 'acme', { rowsPerStep: 4, revoked, renamed });
      assert.deepEqual(deleted, inventory.rows, 'every row counted once');
      assert.equal(revoked.apiKeys, 2);
      // The tenant row stays (deleting it would check every table referencing it), holding only its
      // id and creation time.
      assert.equal(deleted.tenants, undefined);
      assert.equal(renamed.tenant, true);
      assert.deepEqual(
        await db.selectFrom('tenants').selectAll().where('id', '=', 'acme').execute(),
        tenantRow.map((row) => ({ ...row, name: 'acme' })),
      );
      assert.equal((await readTenantInventory(db, 'acme')).name, undefined);
      const afterCounts = await countTenantRows(db, 'acme');
      for (const table of PURGED) assert.equal(afterCounts[table], 0, `${table} has no acme rows left`);
      // The tenant row, the audit record and the ids of the deleted sessions (for the workspace
      // sweep) stay.
      assert.equal(afterCounts.tenants, 1);
      assert.equal(afterCounts.audit_log, before.audit_log);
      assert.equal(afterCounts.deleted_sessions, before.deleted_sessions! + 2);
      assert.deepEqual(await readRowsNotOf(db, 'acme'), others, 'globex and the rest untouched');

      // Once more: nothing left to do, nothing else touched.
      const again = { tenant: false };
      assert.deepEqual(await purgeTenant(db, 'acme', { renamed: again }), {});
      assert.equal(again.tenant, false);
      assert.deepEqual(await readRowsNotOf(db, 'acme'), others);
    });

    test('no statement holding the write lock reads a table in full', { skip: postgres }, async () => {
      // A table without an index on tenant_id read under SQLite's write lock holds every writer
      // (a live server's) for the whole scan: rows are found by a read first, then deleted by key.
      await seedTenantRows(db, 'soylent', { events: 3, cacheEntries: 3 });
      await seedTenantRows(db, 'tyrell');
      const statements = await recordWriteLockedStatements(db, (recording) =>
        purgeTenant(recording, 'soylent', { rowsPerStep: 2 }),
      );
      assert.equal((await countTenantRows(db, 'soylent')).mcp_stream_events, 0);
      const scans: string[] = [];
      for (const statement of statements) {
        const plan = await db
          .executeQuery<{ detail: string }>({
            ...statement,
            sql: `explain query plan ${statement.sql}`,
          })
          .then((result) => result.rows);
        for (const { detail } of plan) {
          if (/^SCAN (?!CONSTANT ROW)/.test(detail)) scans.push(`${detail}: ${statement.sql}`);
        }
      }
      assert.ok(statements.length > 10, `only ${statements.length} statements recorded`);
      assert.deepEqual(scans, []);
    });

    test('a tenant with a session that has not finished is refused, nothing changed', async () => {
      await seedTenantRows(db, 'initech');
      await seedSessionRows(db, {
        id: 'initech-running',
        tenantId: 'initech',
        status: 'running',
        finishedAt: null,
      });
      const rows = await readRowsNotOf(db, 'nobody');
      await assert.rejects(
        purgeTenant(db, 'initech'),
        rejectsWith(
          'INVALID_STATE',
          /Tenant initech has 1 session\(s\) that have not finished \(1 running\).*cancel them first \(initech-running\)/,
        ),
      );
      assert.deepEqual(await readRowsNotOf(db, 'nobody'), rows, 'no row changed, no key revoked');
    });

    test('a purge stopped by a failing statement is finished by a second run', async () => {
      await seedTenantRows(db, 'umbrella', { events: 12 });
      await seedTenantRows(db, 'hooli');
      const others = await readRowsNotOf(db, 'umbrella');
      const expected = (await readTenantInventory(db, 'umbrella')).rows;
      // Sessions and most tables are erased before custom roles; the failure stops it there.
      const restore = await failDeletesOn(db, 'custom_roles', postgres);
      const partial = {};
      try {
        await assert.rejects(
          purgeTenant(db, 'umbrella', { rowsPerStep: 5, deleted: partial }),
          /disk went away/,
        );
      } finally {
        await restore();
      }
      const midway = await countTenantRows(db, 'umbrella');
      assert.equal(midway.sessions, 0, 'sessions were erased before the failure');
      assert.ok(midway.custom_roles! > 0 && midway.api_keys! > 0, 'the rest is still there');
      const keys = await db
        .selectFrom('api_keys')
        .select('revoked_at')
        .where('tenant_id', '=', 'umbrella')
        .execute();
      assert.ok(
        keys.length > 0 && keys.every((key) => key.revoked_at !== null),
        'its keys are revoked already',
      );
      assert.ok(Object.keys(partial).length > 0, 'what was erased before the failure is reported');

      const rest = await purgeTenant(db, 'umbrella');
      const total: Record<string, number> = { ...partial };
      for (const [table, n] of Object.entries(rest)) total[table] = (total[table] ?? 0) + (n ?? 0);
      assert.deepEqual(total, expected, 'both runs together erased every row once');
      const afterCounts = await countTenantRows(db, 'umbrella');
      for (const table of PURGED) assert.equal(afterCounts[table], 0, `${table} has no umbrella rows left`);
      assert.deepEqual(await readRowsNotOf(db, 'umbrella'), others);
    });
  });
}
