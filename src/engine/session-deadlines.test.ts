import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configSchema } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { createWriteQueue, type WriteQueue } from '../store/write-queue.ts';
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

  test('a sweep is engine progress: its batch is acknowledged without waiting for the disk', async () => {
    const queue = createWriteQueue({
      db: handle.db,
      dialect: 'sqlite',
      durability: handle.durability,
      deferCommits: true,
    });
    const deferred: boolean[] = [];
    const recording: WriteQueue = {
      ...queue,
      run: (op, options) => {
        deferred.push(options?.deferred === true);
        return queue.run(op, options);
      },
    };
    try {
      const sweeper = createDeadlineSweeper({
        queue: recording,
        logger: silent,
        onExpired() {},
        intervalMs: 600_000,
      });
      sweeper.start(); // sweeps at once
      await sweeper.stop();
      // An ordinary op would make every batch it joins (once a second) wait for its flush.
      assert.deepEqual(deferred, [true]);
    } finally {
      await queue.close();
    }
  });
});
