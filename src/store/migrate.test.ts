import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { sql } from 'kysely';
import { configSchema } from '../config/schema.ts';
import { AppError } from '../errors/app-error.ts';
import { createDatabase } from './db.ts';
import { getMigrationStatus, migrateToLatest } from './migrate.ts';
import { MIGRATIONS, type NamedMigration } from './migrations/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'maos-migrate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function open(name: string) {
  return createDatabase(
    configSchema.parse({
      dataDir: dir,
      store: { url: `sqlite:${join(dir, name)}`, synchronous: 'full', busyTimeoutMs: 1000 },
    }),
  );
}

describe('migrations', () => {
  test('apply all, then report current, and are idempotent', async () => {
    const handle = open('a.db');
    try {
      const before = await getMigrationStatus(handle.db);
      assert.deepEqual(before.applied, []);
      assert.equal(before.current, false);
      const applied = await migrateToLatest(handle.db);
      assert.deepEqual(
        applied,
        MIGRATIONS.map((m) => m.name),
      );
      const status = await getMigrationStatus(handle.db);
      assert.equal(status.current, true);
      assert.deepEqual(await migrateToLatest(handle.db), []);
      const tenant = await handle.db
        .selectFrom('tenants')
        .selectAll()
        .where('id', '=', 'default')
        .executeTakeFirst();
      assert.equal(tenant?.id, 'default');
    } finally {
      await handle.close();
    }
  });

  test('sets the connection pragmas', async () => {
    const handle = open('p.db');
    try {
      const journal = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(handle.db);
      assert.equal(journal.rows[0]?.journal_mode, 'wal');
      const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(handle.db);
      assert.equal(fk.rows[0]?.foreign_keys, 1);
      // `synchronous: full` is NORMAL plus a WAL flush off the event loop before each write is
      // acknowledged (store/commit-durability.ts).
      const sync = await sql<{ synchronous: number }>`pragma synchronous`.execute(handle.db);
      assert.equal(sync.rows[0]?.synchronous, 1);
      assert.ok(handle.durability, 'commits are flushed before they are acknowledged');
    } finally {
      await handle.close();
    }
  });

  test('refuses a database that is newer than the code', async () => {
    const handle = open('b.db');
    try {
      await migrateToLatest(handle.db);
      await sql`insert into kysely_migration (name, timestamp) values ('9999_from_the_future', '2030-01-01T00:00:00.000Z')`.execute(
        handle.db,
      );
      const status = await getMigrationStatus(handle.db);
      assert.deepEqual(status.unknown, ['9999_from_the_future']);
      assert.equal(status.current, false);
      await assert.rejects(
        () => migrateToLatest(handle.db),
        (error: unknown) => error instanceof AppError && error.code === 'DATABASE_NEWER_THAN_CODE',
      );
    } finally {
      await handle.close();
    }
  });

  test('SQLite: a migration that fails midway leaves nothing of itself behind and applies once fixed', async () => {
    const handle = open('midway.db');
    try {
      const twoSteps = (second: string) => [
        ...MIGRATIONS.slice(0, 1),
        {
          name: '0002_two_steps',
          migration: {
            async up(db: Parameters<NamedMigration['migration']['up']>[0]) {
              await db.schema.createTable('first_step').addColumn('id', 'integer').execute();
              await sql.raw(second).execute(db);
            },
          },
        },
      ];
      // The second statement fails (as on a full disk): the first one's table must not stay behind.
      await assert.rejects(
        () => migrateToLatest(handle.db, twoSteps('create index broken on no_such_table (id)')),
        /Migration 0002_two_steps failed: no such table: main\.no_such_table/,
      );
      const tables = await handle.db.introspection.getTables();
      assert.equal(
        tables.some((table) => table.name === 'first_step'),
        false,
      );
      assert.deepEqual((await getMigrationStatus(handle.db)).applied, [MIGRATIONS[0]?.name]);
      // Once the cause is gone, the same migration applies (it found no half of itself in the way).
      assert.deepEqual(await migrateToLatest(handle.db, twoSteps('create index fixed on first_step (id)')), [
        '0002_two_steps',
      ]);
    } finally {
      await handle.close();
    }
  });

  test('a failed migration names itself and the reason, and leaves the ones before it applied', async () => {
    const handle = open('c.db');
    try {
      const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      const failing = [
        ...MIGRATIONS.slice(0, 1),
        {
          name: '0002_fails',
          migration: {
            async up() {
              throw full;
            },
          },
        },
      ];
      await assert.rejects(
        () => migrateToLatest(handle.db, failing),
        (error: unknown) => {
          assert.ok(error instanceof AppError);
          assert.equal(error.code, 'MIGRATION_REQUIRED');
          // The operator reads what to fix, not just that something failed.
          assert.equal(error.message, 'Migration 0002_fails failed: the disk holding the database is full');
          return true;
        },
      );
      const odd = [
        { name: '0002_fails', migration: { up: async () => Promise.reject(new Error('no such column: x')) } },
      ];
      await assert.rejects(
        () => migrateToLatest(handle.db, [...MIGRATIONS.slice(0, 1), ...odd]),
        /Migration 0002_fails failed: no such column: x/,
      );
      assert.deepEqual((await getMigrationStatus(handle.db, failing)).applied, [MIGRATIONS[0]?.name]);
    } finally {
      await handle.close();
    }
  });
});
