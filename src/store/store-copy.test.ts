// The store copy's table list stays true to the schema (every table copied or skipped on purpose,
// keys and parent order as the database declares them), pages through tables in key order, and
// leaves the target without data when it stops midway.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { readCopiedTables } from '../../test/fixtures/copied-tables.ts';
import { ACTOR, createHarness, type Harness, makeTempDir } from '../../test/fixtures/engine-harness.ts';
import { createTestDatabase, type TestDatabase } from '../../test/fixtures/postgres.ts';
import { configSchema } from '../config/schema.ts';
import { createDatabase, type DatabaseHandle } from './db.ts';
import { migrateToLatest } from './migrate.ts';
import { COPIED_TABLES, copyStore, SKIPPED_TABLES } from './store-copy.ts';

async function openSqlite(path: string): Promise<DatabaseHandle> {
  const handle = createDatabase(
    configSchema.parse({ dataDir: makeTempDir(), store: { url: `sqlite:${path}`, synchronous: 'normal' } }),
  );
  await migrateToLatest(handle.db);
  return handle;
}

describe('store copy: the table list matches the schema', () => {
  let dir: string;
  let sqlite: SqliteDatabase.Database;
  let postgres: TestDatabase;

  before(async () => {
    dir = makeTempDir();
    const handle = await openSqlite(join(dir, 'schema.db'));
    await handle.close();
    sqlite = new SqliteDatabase(join(dir, 'schema.db'), { readonly: true });
    postgres = await createTestDatabase();
  });
  after(async () => {
    sqlite?.close();
    await postgres?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const classified = new Set([...COPIED_TABLES.map((table) => table.name), ...Object.keys(SKIPPED_TABLES)]);

  test('SQLite: every table is copied or skipped, with its primary key, parents first', () => {
    const names = (
      sqlite
        .prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")
        .all() as { name: string }[]
    ).map((row) => row.name);
    for (const name of names) assert.ok(classified.has(name), `table ${name} is neither copied nor skipped`);
    const seen = new Set<string>();
    for (const table of COPIED_TABLES) {
      assert.ok(names.includes(table.name), `${table.name} does not exist`);
      const columns = sqlite.prepare(`pragma table_info(${table.name})`).all() as {
        name: string;
        pk: number;
      }[];
      const key = columns
        .filter((column) => column.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((column) => column.name);
      assert.deepEqual(table.key, key, `${table.name}: the key to page by is the primary key`);
      const parents = sqlite.prepare(`pragma foreign_key_list(${table.name})`).all() as { table: string }[];
      for (const parent of parents)
        assert.ok(seen.has(parent.table), `${table.name} is copied before its parent ${parent.table}`);
      seen.add(table.name);
    }
  });

  test('PostgreSQL: every table is copied or skipped, with its primary key', async () => {
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      const tables = await client.query<{ name: string }>(
        "select table_name as name from information_schema.tables where table_schema = 'public'",
      );
      for (const { name } of tables.rows)
        assert.ok(classified.has(name), `table ${name} is neither copied nor skipped`);
      for (const table of COPIED_TABLES) {
        const key = await client.query<{ column: string }>(
          `select a.attname as column
             from pg_index i
             join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
            where i.indrelid = $1::regclass and i.indisprimary
            order by array_position(i.indkey, a.attnum)`,
          [table.name],
        );
        assert.deepEqual(
          table.key,
          key.rows.map((row) => row.column),
          `${table.name}: the key to page by is the primary key`,
        );
      }
    } finally {
      await client.end();
    }
  });
});

describe('store copy between two SQLite files', { timeout: 60_000 }, () => {
  let harness: Harness;
  let dir: string;

  before(async () => {
    harness = await createHarness({ runners: { echo: { command: ['sh', '-c', 'echo "task=$MAOS_TASK"'] } } });
    dir = makeTempDir();
    for (const objective of ['one', 'two', 'three']) {
      const { session } = await harness.engine.service.createSession(ACTOR, {
        objective,
        agents: [
          { name: 'a', role: 'engineer', task: 'x', runner: 'echo' },
          { name: 'b', role: 'qa', task: 'y', runner: 'echo', depends_on: ['a'] },
        ],
      });
      await harness.waitForSession(session.id);
    }
    await harness.engine.stop({ graceMs: 1000 });
  });
  after(async () => {
    await harness?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('pages through every table in key order: the target holds the same rows', async () => {
    const target = await openSqlite(join(dir, 'paged.db'));
    try {
      const progress: string[] = [];
      // Two rows per read: composite keys (events, plans) continue across pages and sessions.
      const report = await copyStore(harness.handle.db, target.db, {
        batchSize: 2,
        onTable: (name) => progress.push(name),
      });
      assert.deepEqual(
        progress,
        COPIED_TABLES.map((table) => table.name),
      );
      const source = await readCopiedTables(harness.handle.db);
      const copied = await readCopiedTables(target.db);
      for (const table of COPIED_TABLES)
        assert.deepEqual(copied.get(table.name), source.get(table.name), table.name);
      assert.equal(report.tables.find((table) => table.name === 'sessions')?.rows, 3);
      assert.ok((report.tables.find((table) => table.name === 'events')?.rows ?? 0) > 6);
    } finally {
      await target.close();
    }
  });

  test('a copy stopped midway leaves the target as it was: migrated, without data', async () => {
    const target = await openSqlite(join(dir, 'stopped.db'));
    try {
      const before = await readCopiedTables(target.db);
      await assert.rejects(
        copyStore(harness.handle.db, target.db, {
          onTable: (name) => {
            if (name === 'tasks') throw new Error('stopped after tasks');
          },
        }),
        /stopped after tasks/,
      );
      assert.deepEqual(await readCopiedTables(target.db), before);
      // A check that fails at the very end (a replica connected meanwhile) keeps nothing either.
      await assert.rejects(
        copyStore(harness.handle.db, target.db, {
          beforeCommit: async () => {
            throw new Error('a replica connected');
          },
        }),
        /a replica connected/,
      );
      assert.deepEqual(await readCopiedTables(target.db), before);
      // And a second attempt then succeeds.
      await copyStore(harness.handle.db, target.db);
      assert.equal((await readCopiedTables(target.db)).get('sessions')?.length, 3);
    } finally {
      await target.close();
    }
  });
});
