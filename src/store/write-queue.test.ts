import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { configSchema } from '../config/schema.ts';
import { AppError } from '../errors/app-error.ts';
import { createCoalescer } from './coalesce.ts';
import { createDatabase, type DatabaseHandle } from './db.ts';
import { migrateToLatest } from './migrate.ts';
import { createWriteQueue, type WriteQueue } from './write-queue.ts';

describe('write queue', () => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-wq-'));
  let handle: DatabaseHandle;
  before(async () => {
    handle = createDatabase(
      configSchema.parse({ dataDir: dir, store: { synchronous: 'full', busyTimeoutMs: 1000 } }),
    );
    await migrateToLatest(handle.db);
  });
  after(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const insertTenant = (id: string) => (trx: DatabaseHandle['db']) =>
    trx
      .insertInto('tenants')
      .values({ id, name: id, created_at: 1 })
      .execute()
      .then(() => id);

  test('operations queued in one tick share one commit; a failing one rolls back alone', async () => {
    const queue = createWriteQueue({ db: handle.db, dialect: 'sqlite' });
    const results = await Promise.allSettled([
      queue.run(insertTenant('t1')),
      queue.run(async (trx) => {
        await insertTenant('t-bad')(trx);
        throw new Error('boom');
      }),
      queue.run(insertTenant('t1')), // primary key violation
      queue.run(insertTenant('t2')),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(queue.stats(), { batches: 1, ops: 4, deferredBatches: 0, walFlushes: 0 });
    const ids = (await handle.db.selectFrom('tenants').select('id').orderBy('id').execute()).map((r) => r.id);
    assert.deepEqual(ids, ['default', 't1', 't2']);
  });

  test('an operation alone in its batch that fails leaves none of its writes; the next batch commits', async () => {
    const queue = createWriteQueue({ db: handle.db, dialect: 'sqlite' });
    await assert.rejects(
      queue.run(async (trx) => {
        await insertTenant('t-alone')(trx);
        throw new Error('boom');
      }),
      /boom/,
    );
    await queue.run(insertTenant('t-after'));
    assert.deepEqual(queue.stats(), { batches: 2, ops: 2, deferredBatches: 0, walFlushes: 0 });
    const ids = await handle.db
      .selectFrom('tenants')
      .select('id')
      .where('id', 'in', ['t-alone', 't-after'])
      .execute();
    assert.deepEqual(
      ids.map((row) => row.id),
      ['t-after'],
    );
  });

  test('a full disk fails the ops of its batch with the reason, alone or not; the queue goes on', async () => {
    const queue = createWriteQueue({ db: handle.db, dialect: 'sqlite' });
    const pages = await sql<{ page_count: number }>`pragma page_count`.execute(handle.db);
    await sql.raw(`pragma max_page_count = ${pages.rows[0]?.page_count ?? 0}`).execute(handle.db);
    const insertLarge = (id: string) => (trx: DatabaseHandle['db']) =>
      trx
        .insertInto('tenants')
        .values({ id, name: 'x'.repeat(200_000), created_at: 1 })
        .execute();
    try {
      const full = /^The database write failed: the disk holding the database is full$/;
      const batch = await Promise.allSettled([
        queue.run(insertTenant('t-full-1')),
        queue.run(insertLarge('t-full-2')),
        queue.run(insertTenant('t-full-3')),
      ]);
      for (const result of batch) {
        assert.equal(result.status, 'rejected');
        assert.ok(
          result.reason instanceof AppError && result.reason.code === 'STORE_UNAVAILABLE',
          String(result.reason),
        );
        assert.match(result.reason.message, full);
      }
      await assert.rejects(queue.run(insertLarge('t-full-alone')), (error: unknown) => {
        assert.ok(error instanceof AppError && error.code === 'STORE_UNAVAILABLE', String(error));
        assert.match(error.message, full);
        return true;
      });
    } finally {
      await sql.raw('pragma max_page_count = 1073741823').execute(handle.db);
    }
    await queue.run(insertTenant('t-full-after'));
    const ids = await handle.db.selectFrom('tenants').select('id').where('id', 'like', 't-full%').execute();
    assert.deepEqual(
      ids.map((row) => row.id),
      ['t-full-after'],
    );
  });

  test('a value is only acknowledged after its batch committed', async () => {
    const queue = createWriteQueue({ db: handle.db, dialect: 'sqlite' });
    await queue.run(insertTenant('t3'));
    // Read through a second connection: only committed data is visible there.
    const other = createDatabase(
      configSchema.parse({ dataDir: dir, store: { synchronous: 'full', busyTimeoutMs: 1000 } }),
    );
    try {
      const row = await other.db.selectFrom('tenants').select('id').where('id', '=', 't3').executeTakeFirst();
      assert.equal(row?.id, 't3');
    } finally {
      await other.close();
    }
  });

  test('the coalescer hands every item queued before the op runs to one call', async () => {
    const queue = createWriteQueue({ db: handle.db, dialect: 'sqlite' });
    const calls: number[][] = [];
    const double = createCoalescer(queue, async (_trx, items: number[]) => {
      calls.push(items);
      return items.map((item) => item * 2);
    });
    const values = await Promise.all([double(1), double(2), double(3)]);
    assert.deepEqual(values, [2, 4, 6]);
    assert.deepEqual(calls, [[1, 2, 3]]);
    assert.deepEqual(await double(5), 10);
    assert.equal(calls.length, 2);
  });

  test('drain waits for queued work', async () => {
    const queue = createWriteQueue({ db: handle.db, dialect: 'sqlite' });
    let done = false;
    void queue.run(insertTenant('t4')).then(() => {
      done = true;
    });
    await queue.drain();
    assert.equal(done, true);
  });

  // Commit durability (SQLite, synchronous: full): commits are flushed off the event loop; the
  // engine's own progress may be acknowledged before its flush.
  const createDeferredQueue = (): WriteQueue =>
    createWriteQueue({ db: handle.db, dialect: 'sqlite', durability: handle.durability, deferCommits: true });
  const flushes = () => handle.durability?.stats().flushes ?? Number.NaN;

  test('a batch of deferred ops is acknowledged at commit; readers wait for the WAL flush', async () => {
    const queue = createDeferredQueue();
    await queue.drain();
    assert.equal(queue.whenDurable(), undefined, 'nothing committed yet: nothing to wait for');
    const before = queue.stats().deferredBatches;
    assert.equal(await queue.run(insertTenant('d1'), { deferred: true }), 'd1');
    assert.equal(queue.stats().deferredBatches, before + 1);
    const flushed = queue.whenDurable();
    if (flushed) {
      // Committed (visible) but not yet known to be on disk: a reader must wait for the flush.
      await flushed;
    }
    assert.equal(queue.whenDurable(), undefined, 'flushed: nobody waits any more');
    assert.ok(queue.stats().walFlushes >= 1, 'the WAL was flushed');
  });

  test('the connection runs synchronous=NORMAL: the fsync of `full` is the flush off the event loop', async () => {
    const { rows } = await sql<{ synchronous: number }>`pragma synchronous`.execute(handle.db);
    assert.equal(rows[0]?.synchronous, 1);
  });

  test('in a batch with an ordinary op, the deferred op is acknowledged at commit and the ordinary one after its flush', async () => {
    const queue = createDeferredQueue();
    await queue.drain();
    const flushed = flushes();
    // Both in one batch (queued in the same turn); the deferred one settles first, not yet on disk.
    let durableAtDeferred: boolean | undefined;
    const deferredOp = queue.run(insertTenant('d2'), { deferred: true }).then((value) => {
      durableAtDeferred = queue.whenDurable() === undefined;
      return value;
    });
    const ordinary = queue.run(insertTenant('d3'));
    assert.equal(await ordinary, 'd3');
    assert.equal(await deferredOp, 'd2');
    assert.equal(durableAtDeferred, false, 'the deferred op did not wait for the flush');
    assert.ok(flushes() > flushed);
    assert.equal(queue.whenDurable(), undefined, 'the ordinary op was acknowledged once on disk');
    assert.equal(queue.stats().batches, 1);
  });

  test('the queue commits the next batch while the last one is being flushed', async () => {
    const queue = createWriteQueue({ db: handle.db, dialect: 'sqlite', durability: handle.durability });
    await queue.drain();
    // The second op is queued once the first batch has committed (its op ran), before its flush.
    let second: Promise<string> | undefined;
    let secondCommittedBeforeFirstFlush: boolean | undefined;
    const first = queue.run(async (trx) => {
      const value = await insertTenant('p1')(trx);
      second = queue.run(async (inner) => {
        const id = await insertTenant('p2')(inner);
        secondCommittedBeforeFirstFlush = !firstAcknowledged;
        return id;
      });
      return value;
    });
    let firstAcknowledged = false;
    void first.then(() => {
      firstAcknowledged = true;
    });
    assert.equal(await first, 'p1');
    assert.equal(await second, 'p2');
    assert.equal(queue.stats().batches, 2);
    assert.equal(secondCommittedBeforeFirstFlush, true, 'the second batch waited for the first flush');
  });

  test('a failed flush rejects the ops that wait for it, and only those; none goes unobserved', async () => {
    const diskError = new AppError('STORE_UNAVAILABLE', 'Flushing the database log to disk failed');
    let flushRequests = 0;
    // The real connection commits; the flush after it fails (a disk that refuses fdatasync).
    const failingDurability = {
      ...handle.durability!,
      deferCurrentCommits: () => undefined,
      whenDurable: () => {
        flushRequests += 1;
        return Promise.reject(diskError);
      },
    };
    const queue = createWriteQueue({
      db: handle.db,
      dialect: 'sqlite',
      durability: failingDurability,
      deferCommits: true,
    });
    const unobserved: unknown[] = [];
    const onUnhandled = (reason: unknown) => unobserved.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      // One batch: an engine op (acknowledged at commit), an API write (waits for the flush) and an
      // API write that fails by itself (rolled back to its savepoint, waits for nothing).
      const [engine, api, failing] = await Promise.allSettled([
        queue.run(insertTenant('f1'), { deferred: true }),
        queue.run(insertTenant('f2')),
        queue.run(async () => {
          throw new AppError('VALIDATION_FAILED', 'bad input');
        }),
      ]);
      assert.deepEqual(engine, { status: 'fulfilled', value: 'f1' });
      assert.deepEqual(api, { status: 'rejected', reason: diskError });
      assert.equal(failing.status, 'rejected');
      assert.equal((failing as PromiseRejectedResult).reason.code, 'VALIDATION_FAILED');
      // A batch whose only waiting op failed by itself asks for no flush at all.
      const requestsBefore = flushRequests;
      await Promise.allSettled([
        queue.run(insertTenant('f3'), { deferred: true }),
        queue.run(async () => {
          throw new AppError('VALIDATION_FAILED', 'bad input');
        }),
      ]);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(flushRequests, requestsBefore);
      assert.deepEqual(unobserved, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('without deferCommits every op is acknowledged after its flush', async () => {
    const queue = createWriteQueue({ db: handle.db, dialect: 'sqlite', durability: handle.durability });
    const before = queue.stats().deferredBatches;
    await queue.run(insertTenant('d4'), { deferred: true });
    assert.equal(queue.stats().deferredBatches, before);
    assert.equal(queue.whenDurable(), undefined);
  });

  test('a write outside the queue is answered once its commit is on disk', async () => {
    const flushed = flushes();
    await handle.db.insertInto('tenants').values({ id: 'direct', name: 'direct', created_at: 1 }).execute();
    assert.ok(flushes() > flushed, 'flushed before the insert was answered');
    assert.equal(handle.durability?.whenDurable(), undefined);
    // A transaction likewise, once, at its commit; reads flush nothing.
    const beforeTransaction = flushes();
    await handle.db.transaction().execute(async (trx) => {
      await trx.insertInto('tenants').values({ id: 'direct-2', name: 'd', created_at: 1 }).execute();
      await trx.updateTable('tenants').set({ name: 'direct 2' }).where('id', '=', 'direct-2').execute();
    });
    assert.equal(flushes(), beforeTransaction + 1);
    await handle.db.selectFrom('tenants').selectAll().execute();
    assert.equal(flushes(), beforeTransaction + 1);
  });

  test('a deferred batch that changed no row leaves nothing to flush', async () => {
    const queue = createDeferredQueue();
    await queue.run(insertTenant('d6'), { deferred: true });
    await queue.drain();
    const flushed = flushes();
    // An empty claim round or a reaper pass with nothing expired: reads and UPDATEs matching nothing.
    await queue.run(
      async (trx) => {
        await trx.updateTable('tenants').set({ name: 'x' }).where('id', '=', 'no-such-tenant').execute();
        return trx.selectFrom('tenants').select('id').execute();
      },
      { deferred: true },
    );
    assert.equal(queue.whenDurable(), undefined);
    await queue.drain();
    assert.equal(flushes(), flushed);
  });

  test('drain waits for the flush of deferred commits', async () => {
    const queue = createDeferredQueue();
    void queue.run(insertTenant('d5'), { deferred: true });
    await queue.drain();
    assert.equal(queue.whenDurable(), undefined);
  });
});
