// A PostgreSQL that refuses writes (here: a database set to read-only transactions, as a standby or
// a failed-over replica answers) fails a write with STORE_UNAVAILABLE naming the condition, not with
// the driver's raw error (a 500).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { AppError } from '../../src/errors/app-error.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { createWriteQueue } from '../../src/store/write-queue.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';

describe('PostgreSQL refusing writes', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  let handle: DatabaseHandle;

  before(async () => {
    database = await createTestDatabase();
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const name = new URL(database.url).pathname.slice(1);
      await admin.query(`alter database ${name} set default_transaction_read_only = on`);
    } finally {
      await admin.end();
    }
    handle = createDatabase({
      dataDir: '.',
      store: {
        url: database.url,
        synchronous: 'full',
        busyTimeoutMs: 5000,
        poolSize: 2,
        connectTimeoutMs: 3000,
      },
    });
  });
  after(async () => {
    await handle?.close();
    await database?.drop();
  });

  test('a write fails with STORE_UNAVAILABLE and the reason', async () => {
    const queue = createWriteQueue({ db: handle.db, dialect: 'postgres' });
    await assert.rejects(
      queue.run((trx) =>
        trx.insertInto('tenants').values({ id: 't-ro', name: 't-ro', created_at: 1 }).execute(),
      ),
      (error: unknown) => {
        assert.ok(error instanceof AppError, String(error));
        assert.equal(error.code, 'STORE_UNAVAILABLE');
        assert.match(error.message, /the database server accepts only reads/);
        return true;
      },
    );
    const rows = await handle.db.selectFrom('tenants').select('id').where('id', '=', 't-ro').execute();
    assert.deepEqual(rows, []);
  });
});
