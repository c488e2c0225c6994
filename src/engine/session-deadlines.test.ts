import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configSchema } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { createWriteQueue } from '../store/write-queue.ts';
import { createDeadlineSweeper } from './session-deadlines.ts';

const silent = { info() {}, warn() {} } as unknown as Logger;

describe('deadline sweeper', () => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-deadlines-'));
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

  test('a sweep is engine progress: its batch commits without waiting for the disk', async () => {
    const queue = createWriteQueue({
      db: handle.db,
      dialect: 'sqlite',
      deferredSync: { databasePath: handle.location },
    });
    try {
      const sweeper = createDeadlineSweeper({ queue, logger: silent, onExpired() {}, intervalMs: 600_000 });
      sweeper.start(); // sweeps at once
      await sweeper.stop();
      // An ordinary op would make every batch it joins (once a second) a synced commit.
      assert.deepEqual(
        { batches: queue.stats().batches, deferredBatches: queue.stats().deferredBatches },
        { batches: 1, deferredBatches: 1 },
      );
    } finally {
      await queue.close();
    }
  });
});
