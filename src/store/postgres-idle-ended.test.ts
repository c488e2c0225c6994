// PostgreSQL ends the pool's idle connections (pg_terminate_backend here; the end of a read-only
// failover period or a restart do the same): the next statement met one of them before the pool
// had read the server's goodbye and failed (57P01, ECONNRESET). A checkout's first statement that
// cannot have changed anything is now sent again on a new connection, and the other connections
// idle at that moment are not handed out; a write is not sent twice.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { endIdleSessionsUnnoticed } from '../../test/fixtures/end-idle-connections.ts';
import { createTestDatabase, type TestDatabase } from '../../test/fixtures/postgres.ts';
import { AppError } from '../errors/app-error.ts';
import { createDatabase, type DatabaseHandle } from './db.ts';
import { runPostgresOpsInTransactions } from './postgres-write-batch.ts';

const POOL_SIZE = 4;

let database: TestDatabase;
let admin: pg.Client;
let handle: DatabaseHandle;
/** What the pool reported (the server's metrics: maos_store_*_connections_*_total). */
let seen: { resent: number; failed: number; discarded: number };
before(async () => {
  database = await createTestDatabase({ empty: true });
  admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  await admin.query('create table notes (id serial primary key, body text not null)');
});
after(async () => {
  await admin?.end();
  await database?.drop();
});
beforeEach(async () => {
  seen = { resent: 0, failed: 0, discarded: 0 };
  handle = createDatabase(
    {
      dataDir: tmpdir(),
      store: { url: database.url, synchronous: 'full', busyTimeoutMs: 5000, poolSize: POOL_SIZE },
    },
    {
      poolObserver: {
        endedConnection: (outcome) => {
          seen[outcome] += 1;
        },
        idleConnectionDiscarded: () => {
          seen.discarded += 1;
        },
      },
    },
  );
  await admin.query('truncate notes');
});
afterEach(async () => {
  await handle.close();
});

/** Fills the pool: every connection has served a statement and sits idle. Returns their server pids. */
async function fillPool(): Promise<number[]> {
  const rows = await Promise.all(
    Array.from({ length: POOL_SIZE }, () =>
      sql<{ pid: number }>`select pg_backend_pid() as pid, pg_sleep(0.05)`.execute(handle.db),
    ),
  );
  const pids = [...new Set(rows.map((result) => result.rows[0]!.pid))];
  assert.equal(pids.length, POOL_SIZE, 'every connection of the pool served one statement');
  return pids;
}

function isUnavailable(error: unknown): boolean {
  return error instanceof AppError && error.code === 'STORE_UNAVAILABLE';
}

test('a read right after the server ended every idle connection succeeds, on a new connection', async () => {
  const ended = await fillPool();
  assert.equal(endIdleSessionsUnnoticed(database.url), POOL_SIZE);
  const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(handle.db);
  assert.ok(!ended.includes(rows[0]!.pid), 'served by a connection the server had not ended');
  // None of the ended connections is handed out again: statements at once on all of them succeed.
  const again = await Promise.all(
    Array.from({ length: POOL_SIZE }, () =>
      sql<{ pid: number }>`select pg_backend_pid() as pid, pg_sleep(0.02)`.execute(handle.db),
    ),
  );
  for (const result of again) assert.ok(!ended.includes(result.rows[0]!.pid));
  // Counted: one statement sent again; the other ended connections were either discarded unused or
  // dropped by the pool once it read the server's goodbye (no statement met them).
  assert.equal(seen.resent, 1);
  assert.equal(seen.failed, 0);
  assert.ok(seen.discarded <= POOL_SIZE - 1, `${seen.discarded} discarded`);
});

test("a write batch's transaction right after the server ended every idle connection commits", async () => {
  await fillPool();
  assert.equal(endIdleSessionsUnnoticed(database.url), POOL_SIZE);
  // The write queue's PostgreSQL path: one connection, one transaction per operation.
  const outcomes = await handle.db
    .connection()
    .execute((conn) =>
      runPostgresOpsInTransactions(conn, [
        (trx) => sql`insert into notes (body) values ('first')`.execute(trx),
        (trx) => sql`insert into notes (body) values ('second')`.execute(trx),
      ]),
    );
  assert.deepEqual(
    outcomes.map((outcome) => outcome.ok),
    [true, true],
    outcomes.map((outcome) => (outcome.ok ? 'ok' : String(outcome.error))).join(', '),
  );
  const { rows } = await admin.query('select body from notes order by id');
  assert.deepEqual(
    rows.map((row) => row.body),
    ['first', 'second'],
  );
});

test('a Kysely transaction right after the server ended every idle connection commits', async () => {
  await fillPool();
  assert.equal(endIdleSessionsUnnoticed(database.url), POOL_SIZE);
  await handle.db.transaction().execute(async (trx) => {
    await sql`insert into notes (body) values ('in a transaction')`.execute(trx);
  });
  const { rows } = await admin.query('select body from notes');
  assert.deepEqual(
    rows.map((row) => row.body),
    ['in a transaction'],
  );
  // Its `begin` met an ended connection and was sent again.
  assert.deepEqual([seen.resent, seen.failed], [1, 0]);
});

test('a write whose connection the server ended after it committed is not sent again', async () => {
  await fillPool();
  // The statement commits its row and then has the server end its own session (57P01): an answer
  // lost after the commit, as a dropped connection can lose it. Sent again, the row would be there twice.
  await assert.rejects(
    sql`insert into notes (body) values ('once'); commit; select pg_terminate_backend(pg_backend_pid())`.execute(
      handle.db,
    ),
    isUnavailable,
  );
  const { rows } = await admin.query('select body from notes');
  assert.deepEqual(
    rows.map((row) => row.body),
    ['once'],
  );
  // The ended connection was not given back to the pool, nor were those idle beside it.
  for (let i = 0; i < POOL_SIZE; i++) await sql`insert into notes (body) values ('next')`.execute(handle.db);
  // Counted as an ended connection whose statement failed, not as one sent again.
  assert.deepEqual([seen.resent, seen.failed], [0, 1]);
});

test('a statement after the first of a checkout is not sent again when its connection is ended', async () => {
  await fillPool();
  await admin.query('create sequence if not exists sends');
  await assert.rejects(
    handle.db.connection().execute(async (conn) => {
      await sql`select 1`.execute(conn);
      // Counts its sends (a sequence is not rolled back), then has the server end its session.
      await sql`select nextval('sends'), pg_terminate_backend(pg_backend_pid())`.execute(conn);
    }),
    isUnavailable,
  );
  const { rows } = await admin.query<{ last_value: string; is_called: boolean }>(
    'select last_value, is_called from sends',
  );
  assert.deepEqual([Number(rows[0]!.last_value), rows[0]!.is_called], [1, true], 'sent once');
  // Not a first statement: failed as any lost connection does, not counted as one met idle.
  assert.deepEqual([seen.resent, seen.failed], [0, 0]);
});
