// `maos restore` onto a data directory whose maos.db is a symbolic link to a file on another volume:
// the database is restored through the link, into the file it leads to (the replaced one kept beside
// that file), and the link stays. The restore replaced the link with a regular file, so the restored
// database lived in the data directory, not on the linked volume. A link whose folder is missing
// (the volume not mounted) is refused before anything is written.
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { backupSqliteDatabase } from '../../src/store/backup.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { runMaos } from '../fixtures/cli.ts';

/** The objectives of the sessions stored in the SQLite file at `file`. */
function objectives(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (
      db.prepare('select objective from sessions order by objective').all() as { objective: string }[]
    ).map((row) => row.objective);
  } finally {
    db.close();
  }
}

/** A migrated MAOS database in `dataDir` holding one session with `objective`; its path. */
async function databaseWith(dataDir: string, objective: string): Promise<string> {
  const handle = createDatabase({ dataDir, store: { synchronous: 'normal', busyTimeoutMs: 5000 } });
  await migrateToLatest(handle.db);
  await handle.close();
  const raw = new Database(handle.location);
  try {
    raw
      .prepare(
        `insert into sessions (id, tenant_id, objective, strategy, status, metadata, plan_version, last_seq, created_at, updated_at)
         values (?, 'default', ?, 'parallel', 'failed', '{}', 1, 0, 0, 0)`,
      )
      .run(`01a00000-0000-7000-8000-${String(objective.length).padStart(12, '0')}`, objective);
  } finally {
    raw.close();
  }
  return handle.location;
}

describe('maos restore onto a maos.db that is a symbolic link', { timeout: 120_000 }, () => {
  let dir: string;
  let backupFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-restore-link-'));
    const source = await databaseWith(join(dir, 'source'), 'from the backup');
    backupFile = join(dir, 'backup.db');
    await backupSqliteDatabase(source, backupFile);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const configFor = (dataDir: string): string => {
    const path = join(dir, `config-${readdirSync(dir).length}.yaml`);
    writeFileSync(path, `dataDir: ${dataDir}\nport: 0\n`);
    return path;
  };

  test('restores into the linked file, keeps the link, and keeps the replaced database beside that file', async () => {
    // The live database on its own volume, linked into the data directory (a relative link).
    const volume = join(dir, 'volume');
    const live = await databaseWith(volume, 'live');
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    const link = join(dataDir, 'maos.db');
    symlinkSync(join('..', 'volume', 'maos.db'), link);
    const config = configFor(dataDir);

    const result = await runMaos(['restore', backupFile, '--force', '--json', '-c', config]);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as { target: string; linkedFile?: string; previous?: string };
    assert.ok(lstatSync(link).isSymbolicLink(), 'maos.db is still a link');
    assert.equal(readlinkSync(link), join('..', 'volume', 'maos.db'), 'to the same file');
    assert.deepEqual(objectives(live), ['from the backup'], 'the linked volume holds the restored database');
    assert.equal(report.target, link);
    assert.equal(report.linkedFile, live);
    assert.ok(report.previous?.startsWith(`${live}.pre-restore-`), report.previous);
    assert.deepEqual(objectives(report.previous!), ['live'], 'the replaced database is kept on its volume');
    assert.deepEqual(
      readdirSync(dataDir).filter((name) => !name.endsWith('.server-lock')),
      ['maos.db'],
      'nothing of the database is written beside the link',
    );

    const text = await runMaos(['restore', backupFile, '--force', '-c', config]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`Restored ${link} into ${live}, which it links to`));
    assert.ok(lstatSync(link).isSymbolicLink());
  });

  test('a link to a file that is missing is restored through; one whose folder is missing is refused', async () => {
    const volume = join(dir, 'emptied');
    mkdirSync(volume);
    const dataDir = join(dir, 'data-emptied');
    mkdirSync(dataDir);
    const link = join(dataDir, 'maos.db');
    symlinkSync(join(volume, 'maos.db'), link);
    const restored = await runMaos(['restore', backupFile, '--json', '-c', configFor(dataDir)]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.deepEqual(objectives(join(volume, 'maos.db')), ['from the backup']);

    const unmounted = join(dir, 'unmounted');
    const bare = join(dir, 'data-unmounted');
    mkdirSync(bare);
    symlinkSync(join(unmounted, 'maos.db'), join(bare, 'maos.db'));
    const refused = await runMaos(['restore', backupFile, '-c', configFor(bare)]);
    assert.equal(refused.code, 7, refused.stderr);
    assert.match(
      refused.stderr,
      /is a symbolic link to .*unmounted.*does not exist \(is its volume mounted\?\)/,
    );
    assert.ok(!existsSync(unmounted), 'the link’s folder is not created');
    assert.ok(lstatSync(join(bare, 'maos.db')).isSymbolicLink(), 'the link is left as it was');
    assert.deepEqual(readdirSync(bare), ['maos.db'], 'nothing is written beside the link');
  });
});
