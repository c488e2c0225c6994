// Row locking on PostgreSQL that keeps replicas from deadlocking: session locks do not conflict
// with the key-share locks of foreign-key checks, a claim never waits for a lock, and the write
// queue commits each operation on its own, so no batch holds one operation's locks while the next
// one waits for another replica.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { createRuntimeRegistry } from '../../src/agents/runtimes/runtime.ts';
import { createEngine } from '../../src/engine/index.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { lockSessions } from '../../src/store/session-locks.ts';
import { claimReadyTasks } from '../../src/store/task-store.ts';
import { createWriteQueue } from '../../src/store/write-queue.ts';
import { createTestDatabase, isLockTimeout, type TestDatabase } from '../fixtures/postgres.ts';

/** Runs `statement` with a short lock_timeout on its own connection: true if it got its locks. */
async function locksWithin(handle: DatabaseHandle, statement: string, ids: string[]): Promise<boolean> {
  return handle.db.connection().execute(async (conn) => {
    await sql`begin`.execute(conn);
    try {
      await sql`set local lock_timeout = '300ms'`.execute(conn);
      await sql.raw(statement.replace('$ids', ids.map((id) => `'${id}'`).join(', '))).execute(conn);
      return true;
    } catch (error) {
      if (isLockTimeout(error)) return false;
      throw error;
    } finally {
      await sql`rollback`.execute(conn);
    }
  });
}

describe('PostgreSQL row locks between replicas', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  let handle: DatabaseHandle;
  let engine: ReturnType<typeof createEngine>;
  let sessionId: string;

  before(async () => {
    database = await createTestDatabase();
    handle = createDatabase({
      dataDir: '.',
      store: {
        url: database.url,
        synchronous: 'full',
        busyTimeoutMs: 5000,
        poolSize: 4,
        connectTimeoutMs: 3000,
      },
    });
    const runtimes = createRuntimeRegistry();
    runtimes.registerLlm({ kind: 'test', run: async () => ({ output: '' }) });
    engine = createEngine({
      config: {
        workers: { concurrency: 0, pollIntervalMs: 1000 },
        tasks: { leaseSeconds: 30, maxAttempts: 3 },
        runners: {},
      },
      db: handle.db,
      dialect: handle.dialect,
      logger: createLogger({ level: 'silent' }),
      runtimes,
    });
    const session = await engine.service.createSession(
      { tenantId: 'default', principalId: 'test' },
      { objective: 'locks', agents: [{ name: 'a', role: 'engineer', task: 'x' }] },
    );
    sessionId = session.session.id;
  });
  after(async () => {
    await handle?.close();
    await database?.drop();
  });

  test('a session lock is granted while another transaction holds a foreign-key share lock on it', async () => {
    await handle.db.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      try {
        // What an event insert's foreign-key check takes on the session row.
        await sql`select id from sessions where id = ${sessionId} for key share`.execute(conn);
        assert.equal(
          await locksWithin(handle, 'select id from sessions where id in ($ids) for update', [sessionId]),
          false,
          'FOR UPDATE would wait for the key-share lock (the deadlock this avoids)',
        );
        const granted = await handle.db.connection().execute(async (other) => {
          await sql`begin`.execute(other);
          try {
            await sql`set local lock_timeout = '300ms'`.execute(other);
            await lockSessions(other, [sessionId]);
            return true;
          } catch (error) {
            if (isLockTimeout(error)) return false;
            throw error;
          } finally {
            await sql`rollback`.execute(other);
          }
        });
        assert.equal(granted, true, 'lockSessions does not wait for key-share locks');
      } finally {
        await sql`rollback`.execute(conn);
      }
    });
  });

  test('lockSessions still excludes a second locker of the same session', async () => {
    await handle.db.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      try {
        await lockSessions(conn, [sessionId]);
        assert.equal(
          await locksWithin(handle, 'update sessions set updated_at = updated_at where id in ($ids)', [
            sessionId,
          ]),
          false,
        );
      } finally {
        await sql`rollback`.execute(conn);
      }
    });
  });

  test('a claim skips ready tasks whose session row another transaction holds, without waiting', async () => {
    /** Claims in a transaction that is rolled back (the task stays ready for the next test). */
    const claimOnce = () =>
      handle.db.connection().execute(async (conn) => {
        await sql`begin`.execute(conn);
        try {
          await sql`set local lock_timeout = '300ms'`.execute(conn);
          const rows = await claimReadyTasks(conn, 'postgres', {
            owner: 'test',
            limit: 10,
            leaseMs: 30_000,
            now: Date.now(),
          });
          return rows.map((row) => row.session_id);
        } finally {
          await sql`rollback`.execute(conn);
        }
      });
    assert.deepEqual(await claimOnce(), [sessionId], 'the session has one ready task');
    await handle.db.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      try {
        await lockSessions(conn, [sessionId]);
        assert.deepEqual(await claimOnce(), [], 'skipped while the session row is locked');
      } finally {
        await sql`rollback`.execute(conn);
      }
    });
    assert.deepEqual(await claimOnce(), [sessionId]);
  });

  test('the write queue commits each operation before the next one of the same batch runs', async () => {
    const queue = createWriteQueue({ db: handle.db, dialect: 'postgres' });
    // Queued in one tick: one batch. The second op checks from another connection whether the
    // first op's session lock is still held.
    const first = queue.run((trx) => lockSessions(trx, [sessionId]));
    const second = queue.run(() =>
      locksWithin(handle, 'select id from sessions where id in ($ids) for no key update', [sessionId]),
    );
    await first;
    assert.equal(await second, true, "the first operation's locks were released at its own commit");
    assert.equal(queue.stats().batches, 1);
  });

  test('a claim takes at most its limit, also when the plan runs its subquery once per row', async () => {
    // Six more ready tasks (after the tests above, which count the first session's one).
    await engine.service.createSession(
      { tenantId: 'default', principalId: 'test' },
      {
        objective: 'limit',
        agents: [1, 2, 3, 4, 5, 6].map((n) => ({ name: `t${n}`, role: 'engineer', task: `x${n}` })),
      },
    );
    const claimed = await handle.db.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      try {
        // A plan PostgreSQL is free to choose, forced here: a nested loop over all tasks whose
        // inner side is the claim's locking subquery, run again for every outer row.
        for (const setting of ['hashjoin', 'hashagg', 'material', 'mergejoin', 'sort']) {
          await sql.raw(`set local enable_${setting} = off`).execute(conn);
        }
        const rows = await claimReadyTasks(conn, 'postgres', {
          owner: 'test',
          limit: 2,
          leaseMs: 30_000,
          now: Date.now(),
        });
        return rows.length;
      } finally {
        await sql`rollback`.execute(conn);
      }
    });
    assert.equal(claimed, 2, 'two of the seven ready tasks claimed, as many as the free slots asked for');
  });
});
