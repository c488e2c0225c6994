// `maos migrate --status` changes nothing: on a database that does not exist yet it reports every
// migration pending without creating the data directory or the SQLite file; an existing one is
// read as it is, its WAL included, and left byte for byte as it was.
import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { runMaos } from '../fixtures/cli.ts';

interface StatusJson {
  database: string;
  exists: boolean;
  applied: string[];
  pending: string[];
  current: boolean;
}

test('migrate --status on a missing database reports it pending and creates nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-migrate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const file = join(dir, 'maos.yaml');
  writeFileSync(file, `dataDir: ${JSON.stringify(dataDir)}\n`);

  const json = await runMaos(['migrate', '--status', '--json', '--config', file]);
  assert.equal(json.code, 0, json.stderr);
  const before = JSON.parse(json.stdout) as StatusJson;
  assert.equal(before.database, join(dataDir, 'maos.db'));
  assert.equal(before.exists, false);
  assert.deepEqual(before.applied, []);
  assert.ok(before.pending.length > 0);
  assert.equal(before.current, false);

  const text = await runMaos(['migrate', '--status', '--config', file]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /\(does not exist yet\)/);
  assert.match(text.stdout, new RegExp(`no database yet: ${before.pending.length} migrations pending`));
  assert.equal(existsSync(dataDir), false, 'migrate --status created the data directory');

  // The same for a SQLite file named by store.url.
  const elsewhere = join(dir, 'elsewhere', 'maos.db');
  const urlFile = join(dir, 'url.yaml');
  writeFileSync(
    urlFile,
    `dataDir: ${JSON.stringify(dataDir)}\nstore: { url: ${JSON.stringify(`sqlite:${elsewhere}`)} }\n`,
  );
  const viaUrl = await runMaos(['migrate', '--status', '--json', '--config', urlFile]);
  assert.equal(viaUrl.code, 0, viaUrl.stderr);
  assert.equal((JSON.parse(viaUrl.stdout) as StatusJson).database, elsewhere);
  assert.equal(
    existsSync(join(dir, 'elsewhere')),
    false,
    'migrate --status created the directory of store.url',
  );

  // Once migrated, the file exists and the status says so.
  assert.equal((await runMaos(['migrate', '--config', file])).code, 0);
  const after = JSON.parse(
    (await runMaos(['migrate', '--status', '--json', '--config', file])).stdout,
  ) as StatusJson;
  assert.equal(after.exists, true);
  assert.deepEqual(after.applied, before.pending);
  assert.equal(after.current, true);
});

test('migrate --status reads an existing database with its WAL and leaves both unchanged', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-migrate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const live = join(dir, 'live');
  const file = join(dir, 'maos.yaml');
  writeFileSync(file, `dataDir: ${JSON.stringify(live)}\n`);
  assert.equal((await runMaos(['migrate', '--config', file])).code, 0);

  // The state a killed server leaves: commits in maos.db-wal not yet copied into maos.db.
  const writer = new SqliteDatabase(join(live, 'maos.db'));
  writer.pragma('wal_autocheckpoint = 0');
  writer.prepare("insert into kysely_migration (name, timestamp) values ('9999_from_the_future', 'x')").run();
  const crashed = join(dir, 'crashed');
  mkdirSync(crashed);
  for (const name of ['maos.db', 'maos.db-wal']) copyFileSync(join(live, name), join(crashed, name));
  writer.close();
  const crashedFile = join(dir, 'crashed.yaml');
  writeFileSync(crashedFile, `dataDir: ${JSON.stringify(crashed)}\n`);
  const before = ['maos.db', 'maos.db-wal'].map((name) => readFileSync(join(crashed, name)));

  const status = await runMaos(['migrate', '--status', '--json', '--config', crashedFile]);
  assert.equal(status.code, 0, status.stderr);
  const json = JSON.parse(status.stdout) as StatusJson & { unknown: string[] };
  assert.deepEqual(json.unknown, ['9999_from_the_future'], 'the commit in the WAL is read');
  assert.equal(json.current, false);
  // The text summary says what the unknown migration means, not "0 pending".
  const text = await runMaos(['migrate', '--status', '--config', crashedFile]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /unknown {3}9999_from_the_future \(newer than this build\)/);
  assert.match(text.stdout, /newer than this build: 1 unknown migration; this build refuses to run on it/);
  assert.doesNotMatch(text.stdout, /^0 pending$/m);
  const after = ['maos.db', 'maos.db-wal'].map((name) => readFileSync(join(crashed, name)));
  assert.ok(before[0]?.equals(after[0] ?? Buffer.alloc(0)), 'maos.db unchanged');
  assert.ok(before[1]?.equals(after[1] ?? Buffer.alloc(0)), 'maos.db-wal unchanged (not checkpointed)');
});

test('several migrate runs at once on a new SQLite database apply each migration once, none undone', async (t) => {
  // Each run lists what is pending, then applies it one migration at a time, each waiting for the
  // write lock. A run that waited while another applied the same ones used to "migrate to" a
  // migration already behind the database: Kysely migrated down to it, undoing (dropping) what the
  // other run had just applied, and then up again; a run in between met a half-undone schema.
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-migrate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'maos.yaml');
  writeFileSync(file, `dataDir: ${JSON.stringify(join(dir, 'data'))}\n`);
  const runs = await Promise.all(
    Array.from({ length: 4 }, () => runMaos(['migrate', '--json', '--config', file])),
  );
  const applied: string[] = [];
  for (const run of runs) {
    assert.equal(run.code, 0, run.stderr);
    applied.push(...(JSON.parse(run.stdout) as { applied: string[] }).applied);
  }
  const status = JSON.parse(
    (await runMaos(['migrate', '--status', '--json', '--config', file])).stdout,
  ) as StatusJson;
  assert.equal(status.current, true);
  assert.deepEqual(applied.sort(), status.applied, 'every migration applied by exactly one run, none undone');
});

test('a file that is not a SQLite database is named as such, not an internal error', async (t) => {
  // SQLite opens a file lazily: a read-only open of a text file succeeded and the first query failed
  // with SQLITE_NOTADB, which the commands reported as `INTERNAL: file is not a database`.
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-migrate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const notADatabase = join(dir, 'notes.db');
  writeFileSync(notADatabase, 'dataDir: somewhere\nthis is a text file, not a database\n'.repeat(50));
  const bytes = readFileSync(notADatabase);
  const file = join(dir, 'maos.yaml');
  writeFileSync(
    file,
    `dataDir: ${JSON.stringify(join(dir, 'data'))}\nstore: { url: ${JSON.stringify(`sqlite:${notADatabase}`)} }\n`,
  );
  const status = await runMaos(['migrate', '--status', '--config', file]);
  assert.equal(status.code, 7, status.stderr);
  assert.match(status.stderr, /STORE_UNAVAILABLE/);
  assert.match(status.stderr, /not a database/);
  assert.ok(status.stderr.includes(notADatabase), status.stderr);
  assert.doesNotMatch(status.stderr, /INTERNAL/);

  // The same file as the target of a store copy's dry run, from a sound source.
  const source = join(dir, 'source.yaml');
  writeFileSync(source, `dataDir: ${JSON.stringify(join(dir, 'source'))}\n`);
  assert.equal((await runMaos(['migrate', '--config', source])).code, 0);
  const dryRun = await runMaos([
    'store',
    'copy',
    '--dry-run',
    '--to',
    `sqlite:${notADatabase}`,
    '--config',
    source,
  ]);
  assert.equal(dryRun.code, 7, dryRun.stderr);
  assert.match(dryRun.stderr, /STORE_UNAVAILABLE/);
  assert.match(dryRun.stderr, /not a database/);
  assert.doesNotMatch(dryRun.stderr, /INTERNAL/);
  assert.ok(readFileSync(notADatabase).equals(bytes), 'the file is left as it was');
});
