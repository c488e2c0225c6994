// Erasing a whole tenant (store/tenant-purge.ts) on SQLite and PostgreSQL: every table with a
// tenant column is purged or kept on purpose (from the catalogue, so a new table cannot be
// forgotten); the tenant's rows go from every purged table in bounded steps while another tenant's
// rows stay exactly as they were; unfinished sessions refuse the purge with nothing changed; a purge
// stopped midway by a failing statement leaves a state that a second run finishes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Kysely, sql } from 'kysely';
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
      const classified = [...PURGED.filter((name) => name !== 'tenants'), ...KEPT].sort();
      assert.deepEqual(found, classified);
    });

    test("all of the tenant's rows go, in bounded steps; another tenant's stay as they were", async () => {
      await seedTenantRows(db, 'acme', { events: 25, usageDays: 9, cacheEntries: 7 });
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

      const revoked = { apiKeys: 0 };
      const deleted = await purgeTenant(db, 'acme', { rowsPerStep: 4, revoked });
      assert.deepEqual(deleted, inventory.rows, 'every row counted once');
      assert.equal(revoked.apiKeys, 2);
      const afterCounts = await countTenantRows(db, 'acme');
      for (const table of PURGED) assert.equal(afterCounts[table], 0, `${table} has no acme rows left`);
      // The audit record and the ids of the deleted sessions (for the workspace sweep) stay.
      assert.equal(afterCounts.audit_log, before.audit_log);
      assert.equal(afterCounts.deleted_sessions, before.deleted_sessions! + 2);
      assert.deepEqual(await readRowsNotOf(db, 'acme'), others, 'globex and the rest untouched');

      // Once more: nothing left to do, nothing else touched.
      assert.deepEqual(await purgeTenant(db, 'acme'), {});
      assert.deepEqual(await readRowsNotOf(db, 'acme'), others);
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
      assert.ok(midway.custom_roles! > 0 && midway.tenants! > 0, 'the rest is still there');
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
