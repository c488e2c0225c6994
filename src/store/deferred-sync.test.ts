import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { configSchema } from '../config/schema.ts';
import { AppError } from '../errors/app-error.ts';
import { createDatabase, type DatabaseHandle } from './db.ts';
import { migrateToLatest } from './migrate.ts';
import { createWalFlusher } from './wal-flusher.ts';
import { createWriteQueue } from './write-queue.ts';

describe('write queue: deferred durability (SQLite, synchronous=FULL)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-deferred-'));
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
  const synchronousSetting = async () =>
    (await sql<{ synchronous: number }>`pragma synchronous`.execute(handle.db)).rows[0]?.synchronous;

  test('a batch of deferred ops commits without its fsync; readers wait for the WAL flush', async () => {
    const queue = createWriteQueue({
      db: handle.db,
      dialect: 'sqlite',
      deferredSync: { databasePath: handle.location },
    });
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
    const queue = createWriteQueue({
      db: handle.db,
      dialect: 'sqlite',
      deferredSync: { databasePath: handle.location },
    });
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
    const queue = createWriteQueue({
      db: handle.db,
      dialect: 'sqlite',
      deferredSync: { databasePath: handle.location },
    });
    await assert.rejects(queue.run(insertTenant('d1'), { deferred: true })); // duplicate key
    await queue.drain();
    assert.equal(await synchronousSetting(), 2);
  });

  test('drain waits for the flush of deferred commits', async () => {
    const queue = createWriteQueue({
      db: handle.db,
      dialect: 'sqlite',
      deferredSync: { databasePath: handle.location },
    });
    void queue.run(insertTenant('d5'), { deferred: true });
    await queue.drain();
    assert.equal(queue.whenDurable(), undefined);
    assert.equal(queue.stats().walFlushes, 1);
  });
});

describe('WAL flusher', () => {
  test('one flush in flight at a time; commits made meanwhile are covered by the next one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-walflush-'));
    const wal = join(dir, 'x.db-wal');
    try {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(wal, 'frames');
      const flusher = createWalFlusher(wal);
      flusher.committed(true);
      flusher.committed(true);
      const first = flusher.whenDurable();
      assert.ok(first);
      await first;
      // The first commit started a flush; the second came during it and needed one more.
      assert.equal(flusher.flushes(), 2);
      flusher.committed(true);
      await flusher.whenDurable();
      assert.equal(flusher.flushes(), 3);
      // A synced commit makes everything before it durable at once.
      flusher.committed(true);
      flusher.committed(false);
      assert.equal(flusher.whenDurable(), undefined);
      assert.equal(flusher.deferredCommits(), 4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('close during a flush waits for it; a flush after close opens the file again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-walflush-'));
    const wal = join(dir, 'x.db-wal');
    try {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(wal, 'frames');
      const flusher = createWalFlusher(wal);
      flusher.committed(true);
      const pending = flusher.whenDurable();
      flusher.close();
      await pending;
      flusher.committed(true);
      await flusher.whenDurable();
      assert.equal(flusher.flushes(), 2);
      flusher.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a flush that fails rejects the waiters with STORE_UNAVAILABLE; the next one retries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-walflush-'));
    const wal = join(dir, 'missing.db-wal');
    try {
      const flusher = createWalFlusher(wal);
      flusher.committed(true);
      await assert.rejects(
        flusher.whenDurable() ?? Promise.resolve(),
        (error: unknown) => error instanceof AppError && error.code === 'STORE_UNAVAILABLE',
      );
      const { writeFileSync } = await import('node:fs');
      writeFileSync(wal, 'frames');
      await flusher.whenDurable();
      assert.equal(flusher.whenDurable(), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
