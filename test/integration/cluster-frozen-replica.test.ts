// Cluster mode: a replica frozen in the middle of a write operation (SIGSTOP, a paused VM or
// container, a node lost without a reset) is, for PostgreSQL, a session idle in transaction that
// keeps its row locks and advisory locks. Its transaction is ended by the server after a bound, so
// the other replicas' write queues (heartbeats included) and the lease reaper go on without it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { AppError } from '../../src/errors/app-error.ts';
import { LOCK_KEYS, tryTransactionLock } from '../../src/store/advisory-lock.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { lockSessions } from '../../src/store/session-locks.ts';
import { createWriteQueue } from '../../src/store/write-queue.ts';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { requestJson } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/** `promise`, or a rejection saying what hung once `ms` passed (instead of a test hanging forever). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

describe('a replica frozen mid-operation', { timeout: 120_000 }, () => {
  const suite = useReplicaSuite();

  test('does not hold its session locks and the reaper lock until it resumes', async (t) => {
    // The API-only replica stores a session; two write queues of their own play the replicas.
    const api = await suite.start({
      config: { store: { url: suite.database.url }, workers: { concurrency: 0 } },
    });
    const created = await requestJson<{ id: string }>(`${api.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'frozen', agents: [{ name: 'a', role: 'engineer', task: 'wait', runner: 'sleep' }] },
    });
    assert.equal(created.status, 201);
    const sessionId = created.body.id;
    const dataDir = mkdtempSync(join(tmpdir(), 'maos-frozen-'));
    const handles: DatabaseHandle[] = [];
    t.after(async () => {
      for (const handle of handles) await handle.close();
      rmSync(dataDir, { recursive: true, force: true });
    });
    const replica = () => {
      const handle = createDatabase({
        dataDir,
        store: {
          url: suite.database.url,
          synchronous: 'full',
          busyTimeoutMs: 5000,
          poolSize: 3,
          connectTimeoutMs: 5000,
        },
      });
      handles.push(handle);
      return { db: handle.db, queue: createWriteQueue({ db: handle.db, dialect: 'postgres' }) };
    };
    const frozen = replica();
    const other = replica();

    // The frozen replica's operation has locked the session row and taken the reaper's lock, and
    // then its process stops answering (its next statement never comes while it is frozen).
    let thaw!: () => void;
    const thawed = new Promise<void>((resolve) => {
      thaw = resolve;
    });
    let locked = false;
    const frozenOp = frozen.queue.run(async (trx) => {
      await lockSessions(trx, [sessionId]);
      assert.ok(await tryTransactionLock(trx, LOCK_KEYS.leaseReaper));
      locked = true;
      await thawed;
      return trx.selectFrom('sessions').select('id').where('id', '=', sessionId).execute();
    });
    const settledFrozen = frozenOp.then(
      () => null,
      (error: unknown) => error,
    );
    await waitFor(() => locked, 10_000, 'the frozen replica taking its locks');

    // Another replica's operation on the same session (a finish, a heartbeat behind it in its queue)
    // and its lease reaper go on once the server has ended the frozen transaction.
    await within(
      other.queue.run(async (trx) => {
        await lockSessions(trx, [sessionId]);
        await trx
          .updateTable('sessions')
          .set({ updated_at: Date.now() })
          .where('id', '=', sessionId)
          .execute();
      }),
      30_000,
      "the other replica's write on the frozen replica's session",
    );
    const reaperLock = await within(
      other.queue.run((trx) => tryTransactionLock(trx, LOCK_KEYS.leaseReaper)),
      30_000,
      'the reaper lock check',
    );
    assert.equal(reaperLock, true, "the frozen replica no longer holds the lease reaper's lock");

    // Resumed, the frozen replica's operation fails (its transaction is gone, nothing of it was
    // committed) and its queue writes again.
    thaw();
    const error = await settledFrozen;
    assert.ok(error instanceof Error, 'the operation of the frozen replica failed');
    assert.ok(
      error instanceof AppError && error.code === 'STORE_UNAVAILABLE',
      `STORE_UNAVAILABLE, got ${String(error)}`,
    );
    const after = await frozen.queue.run(async (trx) => {
      await lockSessions(trx, [sessionId]);
      return (await sql<{ one: number }>`select 1 as one`.execute(trx)).rows[0]?.one;
    });
    assert.equal(after, 1);
  });
});
