// A replica whose pooled connections are all in use (a burst of requests, statements waiting on a
// lock): a statement that finds none free within store.connectTimeoutMs fails as a busy pool, with
// a short Retry-After, not as a database that cannot be reached.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../../test/fixtures/postgres.ts';
import { AppError } from '../errors/app-error.ts';
import { createDatabase } from './db.ts';
import { getPostgresPool } from './postgres-dialect.ts';

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase({ empty: true });
});
after(async () => {
  await database?.drop();
});

test('a statement that finds no pooled connection free is refused as a busy pool, with Retry-After', async () => {
  const handle = createDatabase({
    dataDir: tmpdir(),
    store: {
      url: database.url,
      synchronous: 'full',
      busyTimeoutMs: 5000,
      poolSize: 1,
      connectTimeoutMs: 200,
    },
  });
  try {
    const pool = getPostgresPool(handle.db);
    assert.ok(pool);
    const held = await pool.connect();
    try {
      const error = await sql`select 1`.execute(handle.db).then(
        () => assert.fail('the statement got a connection'),
        (failure: unknown) => failure,
      );
      assert.ok(error instanceof AppError, String(error));
      assert.equal(error.code, 'STORE_UNAVAILABLE');
      assert.equal(error.retryAfterSeconds, 1);
      assert.doesNotMatch(error.message, /cannot be reached/);
      assert.match(error.message, /store\.poolSize/);
    } finally {
      held.release();
    }
    // The connection given back serves the next statement.
    const { rows } = await sql<{ n: number }>`select 1 as n`.execute(handle.db);
    assert.equal(rows[0]?.n, 1);
  } finally {
    await handle.close();
  }
});
