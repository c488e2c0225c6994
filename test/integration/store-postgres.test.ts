// PostgreSQL specifics of the store: URL selection, int8 as numbers, migrations from several
// replicas at once (advisory lock), advisory single-flight, and connection errors as STORE_UNAVAILABLE.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { LOCK_KEYS, runIfLockFree } from '../../src/store/advisory-lock.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { getMigrationStatus, migrateToLatest } from '../../src/store/migrate.ts';
import { MIGRATIONS } from '../../src/store/migrations/index.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';

function openPostgres(url: string, poolSize = 4): DatabaseHandle {
  return createDatabase({
    dataDir: '.',
    store: { url, synchronous: 'full', busyTimeoutMs: 5000, poolSize, connectTimeoutMs: 3000 },
  });
}

describe('PostgreSQL store', { timeout: 120_000 }, () => {
  let empty: TestDatabase;
  let migrated: TestDatabase;
  before(async () => {
    empty = await createTestDatabase({ empty: true });
    migrated = await createTestDatabase();
  });
  after(async () => {
    await empty?.drop();
    await migrated?.drop();
  });

  test('a postgres:// store.url selects PostgreSQL and bigint columns read as numbers', async () => {
    const handle = openPostgres(migrated.url);
    try {
      assert.equal(handle.dialect, 'postgres');
      assert.ok(!handle.location.includes(new URL(migrated.url).password));
      const tenant = await handle.db.selectFrom('tenants').selectAll().executeTakeFirstOrThrow();
      assert.equal(typeof tenant.created_at, 'number');
      const count = await handle.db
        .selectFrom('tenants')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      assert.equal(count.n, 1);
    } finally {
      await handle.close();
    }
  });

  test('three replicas migrating one empty database at once apply each migration exactly once', async () => {
    const handles = [openPostgres(empty.url), openPostgres(empty.url), openPostgres(empty.url)];
    try {
      const applied = await Promise.all(handles.map((handle) => migrateToLatest(handle.db)));
      const all = applied.flat();
      assert.deepEqual(all.sort(), MIGRATIONS.map((entry) => entry.name).sort());
      const status = await getMigrationStatus(handles[0]!.db);
      assert.equal(status.current, true);
      const tenants = await handles[1]!.db.selectFrom('tenants').selectAll().execute();
      assert.equal(tenants.length, 1);
    } finally {
      await Promise.all(handles.map((handle) => handle.close()));
    }
  });

  test('the audit tables are append-only on PostgreSQL too', async () => {
    const handle = openPostgres(migrated.url);
    try {
      await assert.rejects(sql`delete from audit_log`.execute(handle.db), /append-only/);
    } finally {
      await handle.close();
    }
  });

  test('runIfLockFree runs a job on one replica only while another holds the lock', async () => {
    const a = openPostgres(migrated.url);
    const b = openPostgres(migrated.url);
    try {
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => {
        entered = resolve;
      });
      const first = runIfLockFree(a.db, LOCK_KEYS.retention, async () => {
        entered();
        await held;
        return 'a';
      });
      await inside;
      const second = await runIfLockFree(b.db, LOCK_KEYS.retention, async () => 'b');
      assert.deepEqual(second, { ran: false });
      release();
      assert.deepEqual(await first, { ran: true, value: 'a' });
      assert.deepEqual(await runIfLockFree(b.db, LOCK_KEYS.retention, async () => 'b'), {
        ran: true,
        value: 'b',
      });
    } finally {
      await a.close();
      await b.close();
    }
  });
});
