// A transaction whose connection dies under it (server restart, backend terminated): Kysely rolls
// back on that same connection, which fails too, and throws the rollback's error instead of the
// query's. That error must still be STORE_UNAVAILABLE (503), not a raw driver error (500 INTERNAL).
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../test/fixtures/postgres.ts';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { AppError } from '../errors/app-error.ts';
import { createDatabase } from './db.ts';

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase({ empty: true });
});
after(async () => {
  await database?.drop();
});

test('a transaction whose connection is terminated fails with STORE_UNAVAILABLE', async () => {
  const handle = createDatabase({
    dataDir: tmpdir(),
    store: { url: database.url, synchronous: 'full', busyTimeoutMs: 5000, poolSize: 2 },
  });
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  try {
    // The transaction waits for a lock the admin session holds, and its server process is then ended.
    const key = 727_077;
    await admin.query('select pg_advisory_lock($1)', [key]);
    const transaction = handle.db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${key})`.execute(trx);
    });
    const outcome = transaction.then(
      () => undefined,
      (error: unknown) => error,
    );
    const waiting = await waitFor(async () => {
      const rows = await admin.query(
        `select pid from pg_locks where locktype = 'advisory' and not granted and objid = $1`,
        [key],
      );
      return rows.rows[0]?.pid as number | undefined;
    });
    await admin.query('select pg_terminate_backend($1)', [waiting]);
    const error = await outcome;
    assert.ok(error instanceof AppError, `not an AppError: ${String(error)}`);
    assert.equal(error.code, 'STORE_UNAVAILABLE');
    // The dead client is not handed out again.
    for (let i = 0; i < 3; i++) {
      const row = await sql<{ n: number }>`select 1 as n`.execute(handle.db);
      assert.equal(row.rows[0]?.n, 1);
    }
  } finally {
    await admin.end();
    await handle.close();
  }
});
