// A database (or role) with a statement_timeout, as managed PostgreSQL services often set: a replica
// that waits for another's migration waits for it whatever that timeout, and a migration that runs
// longer than it is applied, instead of failing with "canceling statement due to statement timeout";
// any other statement it cancels is a STORE_UNAVAILABLE (503) that names it, not an internal error.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { configSchema } from '../../src/config/schema.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { LOCK_KEYS } from '../../src/store/advisory-lock.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import type { NamedMigration } from '../../src/store/migrations/index.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/** A migration whose statement runs for `seconds`. */
function slowMigration(name: string, seconds: number): NamedMigration {
  return {
    name,
    migration: {
      async up(db) {
        await sql`select pg_sleep(${seconds})`.execute(db);
        await sql.raw(`create table ${name.replace(/^\d+_/, 'slow_')} (id integer)`).execute(db);
      },
    },
  };
}

/**
 * A replica migrates while another holds the migration lock for longer than the 200 ms timeout that
 * `setLimit` sets on the test database `name`: the wait and the migrations go on, and the pool's
 * connections keep the timeout `setting` for everything else.
 */
async function migrateWhileLockHeld(
  t: TestContext,
  setLimit: (admin: pg.Client, name: string) => Promise<unknown>,
  setting: string,
): Promise<void> {
  const database = await createTestDatabase({ empty: true });
  t.after(() => database.drop());
  const admin = new pg.Client({ connectionString: database.url });
  // Dropping the database ends the test's own sessions.
  admin.on('error', () => undefined);
  await admin.connect();
  t.after(() => admin.end());
  const name = new URL(database.url).pathname.slice(1);
  await setLimit(admin, name);

  // Another replica migrating: it holds the lock for longer than the timeout.
  const holder = new pg.Client({ connectionString: database.url });
  holder.on('error', () => undefined);
  await holder.connect();
  t.after(() => holder.end().catch(() => undefined));
  await holder.query('select pg_advisory_lock($1)', [LOCK_KEYS.migrate]);

  const dir = mkdtempSync(join(tmpdir(), 'maos-statement-timeout-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const handle = createDatabase(configSchema.parse({ dataDir: dir, store: { url: database.url } }));
  t.after(() => handle.close());
  const migrations = [slowMigration('0001_first', 0.5), slowMigration('0002_second', 0.5)];
  const migrating = migrateToLatest(handle.db, migrations);
  migrating.catch(() => undefined);
  await waitFor(
    async () =>
      (
        await admin.query(
          `select 1 from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'`,
        )
      ).rowCount === 1,
    10_000,
    'the migration waiting for the lock',
  );
  // Past the timeout: the wait goes on.
  await delay(600);
  await holder.query('select pg_advisory_unlock($1)', [LOCK_KEYS.migrate]);

  assert.deepEqual(await migrating, ['0001_first', '0002_second']);
  // The pool's connections keep the database's or role's timeout for everything else.
  const { rows } = await sql<{
    timeout: string;
  }>`select current_setting(${setting}) as timeout`.execute(handle.db);
  assert.equal(rows[0]?.timeout, '200ms');
}

test('with a statement_timeout, a migration waits for the lock held by another and runs longer than it', (t) =>
  migrateWhileLockHeld(
    t,
    (admin, name) => admin.query(`alter database "${name}" set statement_timeout = '200ms'`),
    'statement_timeout',
  ));

// PostgreSQL 17 ends the session of a transaction that runs longer than it, a lock wait included.
test('with a role transaction_timeout, a migration waits for the lock held by another and runs longer than it', async (t) => {
  const probe = await createTestDatabase({ empty: true });
  t.after(() => probe.drop());
  const client = new pg.Client({ connectionString: probe.url });
  await client.connect();
  const { rows } = await client.query<{ version: number }>(
    `select current_setting('server_version_num')::integer as version`,
  );
  await client.end();
  if ((rows[0]?.version ?? 0) < 170000) {
    t.skip('transaction_timeout is new in PostgreSQL 17');
    return;
  }
  await migrateWhileLockHeld(
    t,
    // The role's setting in this database only (dropped with it), as a managed service sets it.
    (admin, name) =>
      admin.query(`alter role current_user in database "${name}" set transaction_timeout = '200ms'`),
    'transaction_timeout',
  );
});

test('a statement the statement_timeout cancels fails with STORE_UNAVAILABLE naming it', async (t) => {
  const database = await createTestDatabase();
  t.after(() => database.drop());
  const dir = mkdtempSync(join(tmpdir(), 'maos-statement-timeout-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const handle = createDatabase(configSchema.parse({ dataDir: dir, store: { url: database.url } }));
  t.after(() => handle.close());
  const error = await handle.db
    .transaction()
    .execute(async (trx) => {
      await sql`set local statement_timeout = '100ms'`.execute(trx);
      await sql`select pg_sleep(2)`.execute(trx);
    })
    .then(
      () => assert.fail('the statement was not cancelled'),
      (failure: unknown) => failure,
    );
  assert.ok(error instanceof AppError, String(error));
  assert.equal(error.code, 'STORE_UNAVAILABLE');
  assert.match(error.message, /statement_timeout/);
  assert.equal((error.cause as { code?: string } | undefined)?.code, '57014');
});
