// A replica whose pooled connections are all in use (a burst of requests, statements waiting on a
// lock): a statement that finds none free within store.connectTimeoutMs fails as a busy pool, with
// a short Retry-After, not as a database that cannot be reached; one that waits behind connections
// still being opened to a database that does not answer fails as that database, not as a busy pool.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../../test/fixtures/postgres.ts';
import { startTcpRelay, viaRelay } from '../../test/fixtures/tcp-relay.ts';
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
  let busy = 0;
  const handle = createDatabase(
    {
      dataDir: tmpdir(),
      store: {
        url: database.url,
        synchronous: 'full',
        busyTimeoutMs: 5000,
        poolSize: 1,
        // Also the bound on opening the connection held below: at 200 ms it failed on a loaded machine.
        connectTimeoutMs: 1000,
      },
    },
    // The operator sees it (maos_store_pool_wait_timeouts_total).
    { poolObserver: { poolBusy: () => (busy += 1) } },
  );
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
      assert.equal(busy, 1);
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

test('statements waiting behind connections being opened to an unanswering database are told it cannot be reached', async () => {
  const direct = new URL(database.url);
  const relay = await startTcpRelay({ host: direct.hostname, port: Number(direct.port) });
  // Nothing answers (a firewall dropping packets, a proxy whose database is gone).
  relay.blackhole();
  let busy = 0;
  const handle = createDatabase(
    {
      dataDir: tmpdir(),
      store: {
        url: viaRelay(database.url, relay),
        synchronous: 'full',
        busyTimeoutMs: 5000,
        poolSize: 2,
        connectTimeoutMs: 200,
      },
    },
    { poolObserver: { poolBusy: () => (busy += 1) } },
  );
  try {
    // Two statements open the pool's two connections; the other two wait for one of them.
    const outcomes = await Promise.allSettled([1, 2, 3, 4].map(() => sql`select 1`.execute(handle.db)));
    const errors = outcomes.map((outcome) => {
      assert.equal(outcome.status, 'rejected');
      return outcome.reason as unknown;
    });
    for (const error of errors) {
      assert.ok(error instanceof AppError, String(error));
      assert.equal(error.code, 'STORE_UNAVAILABLE');
      // Not "raise store.poolSize": no connection of the pool was ever in use.
      assert.doesNotMatch(error.message, /poolSize|in use/);
      assert.match(error.message, /cannot be reached/);
      assert.equal(error.retryAfterSeconds, undefined);
    }
    assert.equal(busy, 0);
  } finally {
    await handle.close().catch(() => undefined);
    await relay.cut();
  }
});
