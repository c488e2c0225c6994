// A PostgreSQL database whose other schemas hold tables of the names MAOS uses: another application's
// Kysely migration tables, or an older MAOS schema kept under another name (renamed aside before a
// restore or a copy into a fresh `public`). MAOS's tables are those of its own schema (the first
// existing one of the search_path): a new database is migrated, its status read and a store copy's
// dry run checks it, and the other schemas are left as they were.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { MIGRATIONS } from '../../src/store/migrations/index.ts';
import { runMaos } from '../fixtures/cli.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';

interface StatusJson {
  applied: string[];
  pending: string[];
  unknown: string[];
  current: boolean;
}

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe('migrations beside other schemas of one PostgreSQL database', { timeout: 120_000 }, () => {
  let dir: string;
  let postgres: TestDatabase;
  let config: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-pg-schemas-'));
    postgres = await createTestDatabase({ empty: true });
    // Another Kysely application's migrations, and a kept MAOS schema with a session in it.
    await query(
      postgres.url,
      `create schema other;
       create table other.kysely_migration (name varchar(255) primary key, timestamp varchar(255) not null);
       create table other.kysely_migration_lock (id varchar(255) primary key, is_locked integer not null default 0);
       insert into other.kysely_migration values ('0001_their_own', '2026-01-01T00:00:00.000Z');
       create schema maos_before_restore;
       create table maos_before_restore.sessions (id text primary key);
       insert into maos_before_restore.sessions values ('kept')`,
    );
    config = join(dir, 'maos.json');
    writeFileSync(config, JSON.stringify({ dataDir: join(dir, 'data'), store: { url: postgres.url } }));
  });

  after(async () => {
    await postgres?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a new database reads as not migrated, migrates into its own schema, and the others stay', async () => {
    const before = await runMaos(['migrate', '--status', '--json', '--config', config]);
    assert.equal(before.code, 0, before.stderr);
    const status = JSON.parse(before.stdout) as StatusJson;
    assert.deepEqual(status.applied, [], 'the other schema’s migrations are not this database’s');
    assert.deepEqual(status.unknown, []);
    assert.equal(status.pending.length, MIGRATIONS.length);

    // A store copy's dry run into this database checks it as the empty target it is.
    const source = join(dir, 'source.json');
    writeFileSync(source, JSON.stringify({ dataDir: join(dir, 'source') }));
    assert.equal((await runMaos(['migrate', '--config', source])).code, 0);
    const dryRun = await runMaos([
      'store',
      'copy',
      '--dry-run',
      '--json',
      '--to',
      postgres.url,
      '--config',
      source,
    ]);
    assert.equal(dryRun.code, 0, dryRun.stderr);
    assert.equal(
      (JSON.parse(dryRun.stdout) as { pendingMigrations: number }).pendingMigrations,
      MIGRATIONS.length,
    );

    const migrate = await runMaos(['migrate', '--json', '--config', config]);
    assert.equal(migrate.code, 0, migrate.stderr);
    assert.equal((JSON.parse(migrate.stdout) as { applied: string[] }).applied.length, MIGRATIONS.length);
    const after = await runMaos(['migrate', '--status', '--json', '--config', config]);
    assert.equal(after.code, 0, after.stderr);
    assert.equal((JSON.parse(after.stdout) as StatusJson).current, true);

    const applied = await query<{ name: string }>(
      postgres.url,
      'select name from public.kysely_migration order by name',
    );
    assert.deepEqual(
      applied.map((row) => row.name),
      MIGRATIONS.map((entry) => entry.name),
    );
    const theirs = await query<{ name: string }>(postgres.url, 'select name from other.kysely_migration');
    assert.deepEqual(
      theirs.map((row) => row.name),
      ['0001_their_own'],
    );
    const kept = await query<{ id: string }>(postgres.url, 'select id from maos_before_restore.sessions');
    assert.deepEqual(
      kept.map((row) => row.id),
      ['kept'],
    );
  });
});
