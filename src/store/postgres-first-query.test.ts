// A new pooled PostgreSQL connection first learns its server process id (for the stalled-query
// check), and only then serves its user's query: two queries in flight on one client are deprecated
// by pg (a process warning now, refused by pg 9).
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../../test/fixtures/postgres.ts';
import { createDatabase } from './db.ts';
import { getPostgresPool } from './postgres-dialect.ts';

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase({ empty: true });
});
after(async () => {
  await database?.drop();
});

test("a new connection's first query does not run beside the process id query", async () => {
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on('warning', onWarning);
  const handle = createDatabase({
    dataDir: tmpdir(),
    store: { url: database.url, synchronous: 'full', busyTimeoutMs: 5000, poolSize: 3 },
  });
  try {
    // A caller that sends two statements at once on a client just handed out: the second waits in
    // pg's queue behind the first, as pg allows. Had the pool's own process id query still been
    // running, the second would queue behind two, which pg deprecates.
    const pool = getPostgresPool(handle.db);
    assert.ok(pool);
    const client = await pool.connect();
    try {
      const [first, second] = await Promise.all([
        client.query('select 1 as n'),
        client.query('select 2 as n'),
      ]);
      assert.deepEqual([first.rows[0]?.n, second.rows[0]?.n], [1, 2]);
    } finally {
      client.release();
    }
    // Process warnings are emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      warnings.filter((message) => message.includes('already executing a query')),
      [],
    );
  } finally {
    process.off('warning', onWarning);
    await handle.close();
  }
});
