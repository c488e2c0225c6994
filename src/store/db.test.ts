import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { type LogEvent, sql } from 'kysely';
import { AppError } from '../errors/app-error.ts';
import { createDatabase } from './db.ts';

describe('createDatabase query logging', () => {
  test('the query span logger is asked for with the dialect name and sees every query', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-db-'));
    const systems: string[] = [];
    const events: LogEvent[] = [];
    const handle = createDatabase(
      { dataDir: dir, store: { busyTimeoutMs: 1000, synchronous: 'normal' } },
      {
        querySpanLogger: (system) => {
          systems.push(system);
          return (event) => events.push(event);
        },
      },
    );
    try {
      await sql`select 1 as one`.execute(handle.db);
      assert.deepEqual(systems, ['sqlite']);
      assert.equal(events.length, 1);
      assert.equal(events[0]?.level, 'query');
      assert.match(events[0]?.query.sql ?? '', /select 1 as one/);
    } finally {
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('createDatabase SQLite connection settings', () => {
  test('WAL journal, foreign keys, the busy timeout and temporary B-trees in memory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-db-'));
    const handle = createDatabase({ dataDir: dir, store: { busyTimeoutMs: 1234, synchronous: 'full' } });
    try {
      const read = async (pragma: string) =>
        Object.values((await sql.raw(`pragma ${pragma}`).execute(handle.db)).rows[0] as object)[0];
      assert.equal(await read('journal_mode'), 'wal');
      assert.equal(await read('foreign_keys'), 1);
      assert.equal(await read('busy_timeout'), 1234);
      // 2 = MEMORY: RETURNING and unindexed sorts build their temporary B-trees without files.
      assert.equal(await read('temp_store'), 2);
      // 1 = NORMAL: `full` flushes each commit's WAL itself, off the event loop (commit-durability.ts).
      assert.equal(await read('synchronous'), 1);
    } finally {
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('createDatabase data directory', () => {
  test('a new data directory and database are the service user’s only; existing ones keep their modes', async () => {
    const root = mkdtempSync(join(tmpdir(), 'maos-db-'));
    const dir = join(root, 'data', 'maos');
    const mode = (path: string) => statSync(path).mode & 0o777;
    try {
      const handle = createDatabase({ dataDir: dir, store: { busyTimeoutMs: 1000, synchronous: 'full' } });
      await sql`create table t (x integer)`.execute(handle.db);
      assert.equal(mode(dir), 0o750);
      assert.equal(mode(join(root, 'data')), 0o750);
      assert.equal(mode(join(dir, 'maos.db')), 0o600);
      // SQLite gives its -wal and -shm files the database file's permissions.
      assert.equal(mode(join(dir, 'maos.db-wal')), 0o600);
      await handle.close();

      chmodSync(join(dir, 'maos.db'), 0o640);
      const again = createDatabase({ dataDir: dir, store: { busyTimeoutMs: 1000, synchronous: 'full' } });
      await sql`insert into t values (1)`.execute(again.db);
      await again.close();
      assert.equal(mode(join(dir, 'maos.db')), 0o640, 'an operator’s choice is kept');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a data directory that cannot be created is STORE_UNAVAILABLE naming it, not a defect', () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-db-'));
    try {
      // A file where the data directory should be.
      const file = join(dir, 'not-a-directory');
      writeFileSync(file, '');
      assert.throws(
        () =>
          createDatabase({
            dataDir: join(file, 'data'),
            store: { busyTimeoutMs: 1000, synchronous: 'normal' },
          }),
        (error: unknown) => {
          assert.ok(error instanceof AppError);
          assert.equal(error.code, 'STORE_UNAVAILABLE');
          assert.match(error.message, /Cannot create the data directory .*not-a-directory\/data \(ENOTDIR\)/);
          return true;
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a database whose -wal file cannot be created is STORE_UNAVAILABLE naming it, not INTERNAL', () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-db-'));
    try {
      const path = join(dir, 'maos.db');
      const existing = new SqliteDatabase(path);
      existing.pragma('journal_mode = WAL');
      existing.exec('create table t (x)');
      existing.close();
      // What a read-only data directory does (root ignores permissions, so a test cannot chmod it):
      // the open succeeds and the first statement fails to open the WAL beside the file.
      mkdirSync(`${path}-wal`);
      assert.throws(
        () => createDatabase({ dataDir: dir, store: { busyTimeoutMs: 1000, synchronous: 'normal' } }),
        (error: unknown) => {
          assert.ok(error instanceof AppError);
          assert.equal(error.code, 'STORE_UNAVAILABLE');
          assert.match(
            error.message,
            /Cannot open the database file .*maos\.db: unable to open database file/,
          );
          assert.match(error.message, /must be writable/);
          return true;
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a file that is not a database is named as such, not as a matter of permissions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-db-'));
    try {
      writeFileSync(join(dir, 'maos.db'), 'dataDir: ./data\nport: 7070\n'.repeat(100));
      assert.throws(
        () => createDatabase({ dataDir: dir, store: { busyTimeoutMs: 1000, synchronous: 'normal' } }),
        (error: unknown) => {
          assert.ok(error instanceof AppError);
          assert.equal(error.code, 'STORE_UNAVAILABLE');
          assert.match(
            error.message,
            /maos\.db: file is not a database \(it is not a SQLite database: check store\.url and dataDir\)/,
          );
          assert.doesNotMatch(error.message, /must be writable/);
          return true;
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a data directory under a read-only file system is STORE_UNAVAILABLE (EROFS), not ENOENT', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-db-'));
    const readOnly = join(dir, 'ro');
    mkdirSync(readOnly);
    // A read-only bind mount of a temp dir: only root can make one; elsewhere there is nothing to see.
    try {
      execFileSync('mount', ['--bind', readOnly, readOnly], { stdio: 'ignore' });
    } catch {
      rmSync(dir, { recursive: true, force: true });
      t.skip('needs root to mount a read-only file system');
      return;
    }
    t.after(() => {
      execFileSync('umount', [readOnly], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    });
    execFileSync('mount', ['-o', 'remount,bind,ro', readOnly], { stdio: 'ignore' });
    assert.throws(
      () =>
        createDatabase({
          dataDir: join(readOnly, 'data', 'maos'),
          store: { busyTimeoutMs: 1000, synchronous: 'normal' },
        }),
      (error: unknown) => {
        assert.ok(error instanceof AppError);
        assert.equal(error.code, 'STORE_UNAVAILABLE');
        assert.match(error.message, /Cannot create the data directory .*ro\/data\/maos \(EROFS\)/);
        return true;
      },
    );
  });
});
