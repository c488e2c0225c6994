import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { configSchema } from '../config/schema.ts';
import { createCoalescer } from './coalesce.ts';
import { createDatabase, type DatabaseHandle } from './db.ts';
import { migrateToLatest } from './migrate.ts';
import { createWriteQueue, type WriteQueue } from './write-queue.ts';

describe('write queue', () => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-wq-'));
  let handle: DatabaseHandle;
  // Queues with deferred durability hold the WAL file open: closed after the tests.
  const deferredQueues: WriteQueue[] = [];
  before(async () => {
    handle = createDatabase(
      configSchema.parse({ dataDir: dir, store: { synchronous: 'full', busyTimeoutMs: 1000 } }),
    );
    await migrateToLatest(handle.db);
  });
  after(async () => {
    for (const queue of deferredQueues) await queue.close();
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

  // Deferred durability (SQLite, synchronous=FULL): the engine's own progress.
  const synchronousSetting = async () =>
    (await sql<{ synchronous: number }>`pragma synchronous`.execute(handle.db)).rows[0]?.synchronous;

  const createDeferredQueue = (): WriteQueue => {
    const queue = createWriteQueue({
      db: handle.db,
      dialect: 'sqlite',
      deferredSync: { databasePath: handle.location },
    });
    deferredQueues.push(queue);
    return queue;
  };

  test('a batch of deferred ops commits without its fsync; readers wait for the WAL flush', async () => {
    const queue = createDeferredQueue();
    assert.equal(queue.whenDurable(), undefined, 'nothing committed yet: nothing to wait for');
    assert.equal(await queue.run(insertTenant('d1'), { deferred: true }), 'd1');
    const stats = queue.stats();
    assert.equal(stats.deferredBatches, 1);
    const flushed = queue.whenDurable();
    if (flushed) {
      // Committed (visible) but not yet known to be on disk: a reader must wait for the flush.
      await flushed;
    }
    assert.equal(queue.whenDurable(), undefined, 'flushed: nobody waits any more');
    assert.ok(queue.stats().walFlushes >= 1, 'the WAL was flushed by the queue');
    // The connection is back to FULL for every other writer (API writes outside the queue).
    assert.equal(await synchronousSetting(), 2);
  });

  test('an ordinary op in the batch makes it a synced commit, which covers the deferred ops too', async () => {
    const queue = createDeferredQueue();
    await Promise.all([queue.run(insertTenant('d2'), { deferred: true }), queue.run(insertTenant('d3'))]);
    assert.equal(queue.stats().batches, 1);
    assert.equal(queue.stats().deferredBatches, 0);
    assert.equal(queue.whenDurable(), undefined);
  });

  test('without deferredSync every op is acknowledged after a synced commit', async () => {
    const queue = createWriteQueue({ db: handle.db, dialect: 'sqlite' });
    await queue.run(insertTenant('d4'), { deferred: true });
    assert.equal(queue.stats().deferredBatches, 0);
    assert.equal(queue.whenDurable(), undefined);
  });

  test('a deferred batch that fails still restores synchronous=FULL', async () => {
    const queue = createDeferredQueue();
    await assert.rejects(queue.run(insertTenant('d1'), { deferred: true })); // duplicate key
    await queue.drain();
    assert.equal(await synchronousSetting(), 2);
  });

  test('a deferred batch that changed no row leaves nothing to flush', async () => {
    const queue = createDeferredQueue();
    await queue.run(insertTenant('d6'), { deferred: true });
    await queue.drain();
    const flushes = queue.stats().walFlushes;
    // An empty claim round or a reaper pass with nothing expired: reads only.
    await queue.run((trx) => trx.selectFrom('tenants').select('id').execute(), { deferred: true });
    assert.equal(queue.whenDurable(), undefined);
    await queue.drain();
    assert.equal(queue.stats().walFlushes, flushes);
  });

  test('drain waits for the flush of deferred commits', async () => {
    const queue = createDeferredQueue();
    void queue.run(insertTenant('d5'), { deferred: true });
    await queue.drain();
    assert.equal(queue.whenDurable(), undefined);
    assert.equal(queue.stats().walFlushes, 1);
  });
});
