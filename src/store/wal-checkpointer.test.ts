import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import SqliteDatabase from 'better-sqlite3';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { createDatabase } from './db.ts';
import { INLINE_CHECKPOINT_FRAMES, startWalCheckpointer } from './wal-checkpointer.ts';

const dir = mkdtempSync(join(tmpdir(), 'maos-checkpoint-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes of one WAL frame at the default page size (a 24-byte frame header and the page). */
const FRAME_BYTES = 24 + 4096;

function openWal(name: string): { path: string; sqlite: SqliteDatabase.Database } {
  const path = join(dir, name);
  const sqlite = new SqliteDatabase(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.exec('create table rows (id integer primary key, body text not null)');
  return { path, sqlite };
}

/** The WAL's length in frames, from the WAL-index header in `-shm` (mxFrame, byte 16). */
function walLength(path: string): number {
  const header = Buffer.alloc(20);
  const fd = openSync(`${path}-shm`, 'r');
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  return header.readUInt32LE(16);
}

/** `commits` one-row transactions of a 1 KiB body, yielding to the event loop every ten. */
async function writeRows(sqlite: SqliteDatabase.Database, commits: number): Promise<void> {
  const insert = sqlite.prepare('insert into rows (body) values (?)');
  for (let i = 0; i < commits; i++) {
    insert.run('x'.repeat(1024));
    if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('WAL checkpoints on a worker thread', () => {
  test('the worker takes over the checkpoints, has the WAL restarted when it grows long and loses nothing', async () => {
    const { path, sqlite } = openWal('steady.db');
    const failures: string[] = [];
    const checkpointer = startWalCheckpointer({
      path,
      sqlite,
      startAtBytes: 1,
      intervalMs: 5,
      watchIntervalMs: 5,
      thresholdFrames: 16,
      onFailure: (message) => failures.push(message),
    });
    const autocheckpoint = () => sqlite.pragma('wal_autocheckpoint', { simple: true });
    let rows = 0;
    const write = async (commits: number, yielding: boolean) => {
      if (yielding) await writeRows(sqlite, commits);
      else for (let i = 0; i < commits; i++) sqlite.prepare('insert into rows (body) values (?)').run('x');
      rows += commits;
    };
    try {
      await write(20, true);
      await waitFor(() => checkpointer.running(), 10_000, 'the worker to start');
      // The write connection no longer checkpoints by itself.
      assert.equal(autocheckpoint(), 0);

      // Committed frames are copied by the worker.
      await write(100, true);
      await waitFor(() => checkpointer.checkpoints() > 0, 10_000, 'a checkpoint by the worker');

      // Under steady writes the worker's checkpoints alone never let the WAL start over (see
      // restartNeeded in the worker). A WAL of four times the threshold (64 frames), written without
      // a pause, makes the worker ask the write connection to checkpoint after its commits...
      await write(200, false);
      await waitFor(() => autocheckpoint() === 64, 10_000, 'the worker to ask for a restart');
      // ...which restarts the WAL from its beginning at a later commit (one at which the previous
      // commit's checkpoint found the worker's own checkpoint finished and copied every frame), and
      // the worker takes the checkpoints back. One commit per look until then.
      await waitFor(
        () => {
          sqlite.prepare('insert into rows (body) values (?)').run('x');
          rows++;
          return walLength(path) < 64;
        },
        10_000,
        'the WAL to start over',
      );
      await waitFor(() => autocheckpoint() === 0, 10_000, 'the checkpoints back on the worker');
    } finally {
      await checkpointer.close();
    }
    assert.equal(checkpointer.running(), false);
    assert.equal(autocheckpoint(), INLINE_CHECKPOINT_FRAMES);
    sqlite.close();
    assert.deepEqual(failures, []);

    const reopened = new SqliteDatabase(path, { readonly: true });
    assert.deepEqual(reopened.prepare('select count(*) as n from rows').get(), { n: rows });
    assert.equal(reopened.pragma('integrity_check', { simple: true }), 'ok');
    reopened.close();
  });

  test('a small database never starts the worker', async () => {
    const { path, sqlite } = openWal('small.db');
    const checkpointer = startWalCheckpointer({
      path,
      sqlite,
      startAtBytes: 1024 * 1024,
      intervalMs: 5,
      watchIntervalMs: 5,
    });
    await writeRows(sqlite, 20);
    await sleep(50);
    assert.equal(checkpointer.running(), false);
    assert.equal(sqlite.pragma('wal_autocheckpoint', { simple: true }), INLINE_CHECKPOINT_FRAMES);
    await checkpointer.close();
    sqlite.close();
  });

  test('a worker that cannot open the database reports why and leaves checkpoints inline', async () => {
    const { sqlite } = openWal('failing.db');
    // A WAL file without its database: the watcher starts the worker, which cannot open the file.
    const missing = join(dir, 'missing.db');
    writeFileSync(`${missing}-wal`, Buffer.alloc(FRAME_BYTES));
    const failures: string[] = [];
    const checkpointer = startWalCheckpointer({
      path: missing,
      sqlite,
      startAtBytes: 1,
      intervalMs: 5,
      watchIntervalMs: 5,
      onFailure: (message) => failures.push(message),
    });
    await waitFor(() => failures.length > 0, 10_000, 'the failure');
    assert.match(failures[0]!, /unable to open|no such file|cannot open/i);
    assert.equal(checkpointer.running(), false);
    assert.equal(sqlite.pragma('wal_autocheckpoint', { simple: true }), INLINE_CHECKPOINT_FRAMES);
    await checkpointer.close();
    sqlite.close();
  });

  test('a worker that fails while running reports why and hands the checkpoints back', {
    timeout: 30_000,
  }, async () => {
    const { sqlite } = openWal('running.db');
    // A database the worker opens (it says it is ready, the write connection stops checkpointing),
    // but without the WAL-index its first look at the backlog reads: that look fails.
    const broken = join(dir, 'no-wal-index.db');
    new SqliteDatabase(broken).close();
    writeFileSync(`${broken}-wal`, Buffer.alloc(FRAME_BYTES));
    const failures: string[] = [];
    const checkpointer = startWalCheckpointer({
      path: broken,
      sqlite,
      startAtBytes: 1,
      intervalMs: 5,
      watchIntervalMs: 5,
      onFailure: (message) => failures.push(message),
    });
    try {
      await waitFor(() => failures.length > 0, 10_000, 'the failure');
      assert.match(failures[0]!, /ENOENT|no such file/i);
      assert.equal(checkpointer.running(), false);
      assert.equal(sqlite.pragma('wal_autocheckpoint', { simple: true }), INLINE_CHECKPOINT_FRAMES);
      // Reported once, not again when the thread then exits.
      await sleep(50);
      assert.equal(failures.length, 1);
    } finally {
      await checkpointer.close();
      sqlite.close();
    }
  });

  test('createDatabase checkpoints in the background by default, inline when configured so', async () => {
    const { sql } = await import('kysely');
    /** The write connection's wal_autocheckpoint once its WAL passed the 1 MiB start size. */
    const autocheckpointAfterWrites = async (
      name: string,
      waitMs: number,
      walCheckpoint?: 'background' | 'inline',
    ) => {
      const handle = createDatabase({
        dataDir: join(dir, name),
        store: { synchronous: 'normal', busyTimeoutMs: 1000, ...(walCheckpoint ? { walCheckpoint } : {}) },
      });
      try {
        await sql`create table rows (id integer primary key, body text not null)`.execute(handle.db);
        for (let i = 0; i < 400; i++) {
          await sql`insert into rows (body) values (${'x'.repeat(4096)})`.execute(handle.db);
        }
        const read = async () =>
          (await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(handle.db)).rows[0]!
            .wal_autocheckpoint;
        // The watcher looks every second; the worker then starts and says it is ready.
        for (let waited = 0; waited < waitMs && (await read()) !== 0; waited += 50) await sleep(50);
        return await read();
      } finally {
        await handle.close();
      }
    };
    // Bounded generously: a worker thread's start (loading its modules) is slow on a busy machine.
    assert.equal(await autocheckpointAfterWrites('default', 20_000), 0);
    // Longer than the default case takes to switch (about a second).
    assert.equal(await autocheckpointAfterWrites('inline', 2500, 'inline'), INLINE_CHECKPOINT_FRAMES);
  });
});
