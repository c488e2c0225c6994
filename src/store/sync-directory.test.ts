// What the store creates and must keep (data directory, database file, write-ahead log) has its
// directory entry synced: checked through the sync's diagnostics channel on real directories.
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { createDatabase } from './db.ts';
import { syncDirectory, syncDirectorySync } from './sync-directory.ts';

/** Runs `body` while recording the directories synced. */
async function recordingSyncs(body: (synced: string[]) => Promise<void>): Promise<void> {
  const synced: string[] = [];
  const listener = (message: unknown) => synced.push((message as { path: string }).path);
  subscribe('maos:store:directory-synced', listener);
  try {
    await body(synced);
  } finally {
    unsubscribe('maos:store:directory-synced', listener);
  }
}

describe('directory sync', () => {
  test('syncs a real directory, on the thread pool too; a missing one is an error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-dirsync-'));
    try {
      await recordingSyncs(async (synced) => {
        syncDirectorySync(dir);
        await syncDirectory(dir);
        assert.deepEqual(synced, [dir, dir]);
      });
      assert.throws(() => syncDirectorySync(join(dir, 'missing')), { code: 'ENOENT' });
      await assert.rejects(syncDirectory(join(dir, 'missing')), { code: 'ENOENT' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a new data directory, its database file and its write-ahead log are synced into their directories', async () => {
    const root = mkdtempSync(join(tmpdir(), 'maos-dirsync-'));
    const dir = join(root, 'data', 'maos');
    try {
      await recordingSyncs(async (synced) => {
        const handle = createDatabase({ dataDir: dir, store: { busyTimeoutMs: 1000, synchronous: 'full' } });
        try {
          // `data` into the root, `maos` into `data`, the database file into `maos`.
          assert.deepEqual(synced, [root, join(root, 'data'), dir]);
          synced.length = 0;
          await sql`create table t (x integer)`.execute(handle.db);
          // The first durable commit: the WAL file's entry, once.
          assert.deepEqual(synced, [dir]);
          await sql`insert into t values (1)`.execute(handle.db);
          assert.deepEqual(synced, [dir]);
        } finally {
          await handle.close();
        }
        synced.length = 0;
        // An existing data directory and database: nothing new to sync at the open.
        const again = createDatabase({ dataDir: dir, store: { busyTimeoutMs: 1000, synchronous: 'full' } });
        assert.deepEqual(synced, []);
        await again.close();
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
