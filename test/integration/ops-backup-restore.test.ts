// `maos backup` / `maos restore` against real SQLite files: a backup taken while another process
// keeps committing is consistent, restores into a new data dir, and restore refuses what it must.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { restoreBackup } from '../../src/cli/commands/restore.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createAuditLog } from '../../src/security/audit/audit-log.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { backupSqliteDatabase, replaceDatabaseFile } from '../../src/store/backup.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { acquireServerLock } from '../../src/store/server-lock.ts';
import { serviceAuditEvent } from '../fixtures/audit-records.ts';
import { createSelfSignedCert, skipWithoutOpenssl } from '../fixtures/tls-cert.ts';

const CLI = new URL('../../bin/maos.js', import.meta.url).pathname;
const WRITER = new URL('../fixtures/ops-sqlite-writer.ts', import.meta.url).pathname;
const AUDIT_RECORDS = 25;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], timeoutMs = 60_000, cwd?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(cwd ? { cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`maos ${args.join(' ')} timed out`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function writeConfig(dir: string, dataDir: string, port = 0): string {
  const path = join(dir, `config-${readdirSync(dir).length}.yaml`);
  writeFileSync(path, `dataDir: ${dataDir}\nport: ${port}\n`);
  return path;
}

/** Runs `use` while an HTTP server that answers like a MAOS /healthz listens on 127.0.0.1. */
async function withFakeServer(use: (port: number) => Promise<void>): Promise<void> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await use((server.address() as { port: number }).port);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

function countRows(file: string, table: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('maos backup and restore (SQLite)', { timeout: 400_000 }, () => {
  let dir: string;
  let liveConfig: string;
  let liveDb: string;
  let backupFile: string;
  let sessionsBeforeBackup = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-ops-backup-'));
    const dataDir = join(dir, 'live');
    liveConfig = writeConfig(dir, dataDir);
    const handle = createDatabase({ dataDir, store: { synchronous: 'normal', busyTimeoutMs: 5000 } });
    await migrateToLatest(handle.db);
    liveDb = handle.location;
    const audit = createAuditLog({ db: handle.db as unknown as SecurityDb, origin: 'test/audit' });
    for (let i = 0; i < AUDIT_RECORDS; i += 1) {
      await audit.append(serviceAuditEvent(i));
    }
    await audit.close();
    await handle.close();
    const raw = new Database(liveDb);
    raw.exec('create table backup_probe (id integer primary key, pair integer not null, filler blob)');
    // ~20 MB of rows, so the copy takes long enough for the writer to commit during it.
    const insert = raw.prepare('insert into backup_probe (pair, filler) values (?, ?)');
    const filler = Buffer.alloc(512, 1);
    raw.transaction(() => {
      for (let pair = 1; pair <= 20_000; pair += 1) {
        insert.run(pair, filler);
        insert.run(pair, filler);
      }
    })();
    raw.close();
    backupFile = join(dir, 'maos-backup.db');
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('backup while another process commits is consistent and complete', async () => {
    const writer: ChildProcess = spawn(process.execPath, [WRITER, liveDb], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        writer.stdout?.once('data', () => resolve());
        writer.once('exit', (code) => reject(new Error(`writer exited early (${code})`)));
      });
      // Let it commit for a while, then note what is durably there before the backup starts.
      await new Promise((resolve) => setTimeout(resolve, 300));
      sessionsBeforeBackup = countRows(liveDb, 'sessions');
      assert.ok(sessionsBeforeBackup > 0, 'the writer committed sessions before the backup');
      const result = await runCli(['backup', backupFile, '-c', liveConfig, '--json']);
      assert.equal(result.code, 0, result.stderr);
      const output = JSON.parse(result.stdout) as { path: string; bytes: number };
      assert.equal(output.path, backupFile);
      assert.ok(output.bytes > 10_000_000);
      assert.ok(
        countRows(liveDb, 'sessions') > sessionsBeforeBackup,
        'the writer kept committing during the backup',
      );
    } finally {
      writer.kill('SIGKILL');
      await new Promise((resolve) => writer.once('close', resolve));
    }
    const copy = new Database(backupFile, { readonly: true });
    try {
      assert.deepEqual(copy.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
      const torn = copy.prepare('select pair from backup_probe group by pair having count(*) != 2').all();
      assert.deepEqual(torn, [], 'every transaction is in the backup whole or not at all');
      const sessions = (copy.prepare('select count(*) as n from sessions').get() as { n: number }).n;
      const pairs = (copy.prepare('select count(*) as n from backup_probe').get() as { n: number }).n / 2;
      assert.ok(sessions >= sessionsBeforeBackup, 'sessions committed before the backup are present');
      assert.equal(pairs - 20_000, sessions, 'sessions and probe rows come from the same snapshot');
    } finally {
      copy.close();
    }
  });

  test('a backup is one self-contained file: no WAL, and restoring it writes nothing beside it', async () => {
    const shelf = join(dir, 'shelf');
    mkdirSync(shelf);
    const file = join(shelf, 'self-contained.db');
    const result = await runCli(['backup', file, '-c', liveConfig]);
    assert.equal(result.code, 0, result.stderr);
    // Header bytes 18 and 19: 1 = rollback journal, 2 = WAL (which needs a -shm file to be read).
    const header = readFileSync(file).subarray(18, 20);
    assert.deepEqual([...header], [1, 1], 'the backup is in rollback-journal mode');
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the backup is readable by its owner only');
    const restored = await runCli(['restore', file, '-c', writeConfig(dir, join(dir, 'from-shelf'))]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(readdirSync(shelf), ['self-contained.db'], 'no -wal/-shm left beside the backup');
  });

  test('a relative backup name that begins with a space is written under that name, whole and owner-only', () => {
    const shelf = join(dir, 'spaced');
    mkdirSync(shelf);
    // The SQLite driver trims the file name it copies to: the copy went to `maos.db.partial`
    // (umask mode), and ` maos.db` was left empty, reported as a finished backup.
    const result = spawnSync(process.execPath, [CLI, 'backup', ' maos.db', '-c', liveConfig], {
      cwd: shelf,
      encoding: 'utf8',
    });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(readdirSync(shelf), [' maos.db']);
    const file = join(shelf, ' maos.db');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(countRows(file, 'sessions') >= sessionsBeforeBackup);
    assert.equal(countRows(file, 'audit_log'), AUDIT_RECORDS);
    const restored = spawnSync(
      process.execPath,
      [CLI, 'restore', ' maos.db', '-c', writeConfig(dir, join(dir, 'from-spaced'))],
      { cwd: shelf, encoding: 'utf8' },
    );
    assert.equal(restored.status, 0, restored.stderr);
    assert.equal(countRows(join(dir, 'from-spaced', 'maos.db'), 'audit_log'), AUDIT_RECORDS);
  });

  test('the backup is owner-only while it is written, not only once it is done', async () => {
    const shelf = join(dir, 'partial-shelf');
    mkdirSync(shelf);
    // The copy runs in steps scheduled with setImmediate: a check queued alike sees the file between them.
    const modes = new Set<number>();
    let done = false;
    const look = () => {
      if (done) return;
      // The copy (`copy.db.partial-<pid>-<random>-<host>`), not SQLite's journal beside it.
      for (const name of readdirSync(shelf)) {
        if (/^copy\.db\.partial-\d+-[0-9a-f]{12}-.+(?<!-journal)$/.test(name)) {
          modes.add(statSync(join(shelf, name)).mode & 0o777);
        }
      }
      if (!done) setImmediate(look);
    };
    setImmediate(look);
    try {
      await backupSqliteDatabase(liveDb, join(shelf, 'copy.db'));
    } finally {
      done = true;
    }
    assert.ok(modes.size > 0, 'the partial copy was seen while it was written');
    assert.deepEqual([...modes], [0o600], 'the partial copy was readable by others while it was written');
  });

  test('a backup that finds the database locked fails and leaves no file, instead of an empty copy', async () => {
    const shelf = join(dir, 'locked-shelf');
    mkdirSync(shelf);
    const source = join(shelf, 'source.db');
    const holder = new Database(source);
    holder.exec("create table t (x); insert into t values ('row')");
    // A rollback-journal database: a writer's exclusive lock keeps every reader out.
    holder.exec('begin exclusive');
    try {
      await assert.rejects(backupSqliteDatabase(source, join(shelf, 'copy.db')), (error: Error) => {
        assert.match(
          error.message,
          /No page of .*source\.db could be copied: another connection kept it locked/,
        );
        return true;
      });
    } finally {
      holder.exec('commit');
      holder.close();
    }
    assert.deepEqual(readdirSync(shelf).sort(), ['source.db']);
  });

  test('a WAL-mode backup SQLite cannot read in place is named as such, not as damaged', async () => {
    const shelf = join(dir, 'wal-shelf');
    mkdirSync(shelf);
    const file = join(shelf, 'wal-mode.db');
    const copy = new Database(file);
    copy.pragma('journal_mode = WAL');
    copy.exec('create table t (x)');
    copy.close();
    // What a read-only backup volume does (root ignores permissions): the -wal cannot be created.
    mkdirSync(`${file}-wal`);
    const result = await runCli(['restore', file, '-c', writeConfig(dir, join(dir, 'never-wal'))]);
    assert.equal(result.code, 7, result.stderr);
    assert.match(
      result.stderr,
      /STORE_UNAVAILABLE: Cannot read .*wal-mode\.db: .*WAL mode needs a writable directory/,
    );
    assert.doesNotMatch(result.stderr, /not a sound SQLite database/);
  });

  test('backup and restore refuse a PostgreSQL store.url, each naming its own PostgreSQL tool', async () => {
    // No server is needed: the URL alone decides, before any connection.
    const config = join(dir, 'postgres.yaml');
    writeFileSync(config, 'store:\n  url: postgres://maos@127.0.0.1:1/maos\nport: 0\n');
    const backup = await runCli(['backup', join(dir, 'never.db'), '-c', config]);
    assert.equal(backup.code, 6, backup.stderr);
    assert.match(backup.stderr, /INVALID_STATE: store\.url is PostgreSQL: back it up with `pg_dump/);
    const restore = await runCli(['restore', backupFile, '-c', config]);
    assert.equal(restore.code, 6, restore.stderr);
    assert.match(restore.stderr, /INVALID_STATE: store\.url is PostgreSQL: restore it with `pg_restore/);
  });

  test('two backups to one file at once: one writes it whole, the other is refused, neither breaks the other', async () => {
    const shelf = join(dir, 'twice-shelf');
    mkdirSync(shelf);
    const target = join(shelf, 'twice.db');
    const before = { sessions: countRows(liveDb, 'sessions'), probe: countRows(liveDb, 'backup_probe') };
    // Both used `<file>.partial`: each removed the other's copy as it started, and the one that
    // finished first moved the other's unfinished copy into place (or failed on its vanished file).
    const outcomes = await Promise.allSettled([
      backupSqliteDatabase(liveDb, target),
      backupSqliteDatabase(liveDb, target),
    ]);
    const written = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const refused = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason] : []));
    assert.equal(written.length, 1, JSON.stringify(refused.map((error) => String(error))));
    assert.equal(refused.length, 1);
    assert.match(String(refused[0]), /twice\.db already exists; choose a new file name/);
    assert.equal((refused[0] as { code?: string }).code, 'CONFLICT');
    assert.deepEqual(readdirSync(shelf), ['twice.db'], 'no temporary copy left behind');
    const copy = new Database(target, { readonly: true });
    try {
      assert.deepEqual(copy.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
      assert.equal(
        (copy.prepare('select count(*) as n from backup_probe').get() as { n: number }).n,
        before.probe,
      );
    } finally {
      copy.close();
    }
    assert.deepEqual(
      { sessions: countRows(liveDb, 'sessions'), probe: countRows(liveDb, 'backup_probe') },
      before,
      'the source database is untouched',
    );
  });

  test('a backup removes the copy a killed backup of the same file left, and no other file beside it', async () => {
    const shelf = join(dir, 'killed-shelf');
    mkdirSync(shelf);
    const target = join(shelf, 'nightly.db');
    // A backup killed with -9 (its process is gone: a child that has exited) left its copy.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    const left = join(
      shelf,
      `nightly.db.partial-${gone.stdout}-0123456789ab-${hostname().replace(/[^A-Za-z0-9.-]/g, '_')}`,
    );
    writeFileSync(left, 'half a copy', { mode: 0o600 });
    // SQLite's journal beside it, and that of another killed copy whose own file is gone already.
    const journals = [`${left}-journal`, `${left.replace('0123456789ab', 'fedcba987654')}-journal`];
    for (const file of journals) writeFileSync(file, 'journal', { mode: 0o600 });
    // Not its own to remove: a running process's copy (and journal), another host's, another
    // output's, an odd name.
    const running = left.replace(`-${gone.stdout}-`, `-${process.pid}-`);
    const otherHost = left.replace(/-[^-]+$/, '-another-host.example');
    const others = [
      running,
      `${running}-journal`,
      otherHost,
      join(shelf, 'weekly.db.partial-1-0123456789ab-x'),
      join(shelf, 'nightly.db.partial'),
    ];
    for (const file of others) writeFileSync(file, 'keep');
    const result = await backupSqliteDatabase(liveDb, target);
    assert.equal(result.path, target);
    assert.ok(!existsSync(left), "the killed backup's copy is removed");
    for (const file of journals) assert.ok(!existsSync(file), `${basename(file)} is removed`);
    assert.deepEqual(
      readdirSync(shelf).sort(),
      [...others.map((file) => basename(file)), 'nightly.db'].sort(),
    );
  });

  test('backup refuses to overwrite an existing file', async () => {
    const result = await runCli(['backup', backupFile, '-c', liveConfig]);
    assert.equal(result.code, 6);
    assert.match(result.stderr, /CONFLICT: .*already exists/);
  });

  test('a backup named as a side file of the database is refused: SQLite would take it for its own', async () => {
    // Written as <db>-journal, the copy was taken for a hot rollback journal at the next open of the
    // database (by the server, or any command) and deleted.
    for (const suffix of ['-journal', '-wal', '-shm', '.server-lock-journal']) {
      const target = `${liveDb}${suffix}`;
      // A WAL database keeps no -journal; -wal and -shm exist while a connection is open.
      if (suffix !== '-journal' && existsSync(target)) continue;
      const result = await runCli(['backup', target, '-c', liveConfig]);
      assert.equal(result.code, 2, `${suffix}: ${result.stderr}`);
      assert.match(
        result.stderr,
        /^error VALIDATION_FAILED: .+ is a name SQLite uses for a file of the database/m,
      );
      assert.equal(existsSync(target), false, `${suffix} written`);
    }
  });

  test('`maos backup -` is refused (exit 2): a backup is a file, not written to stdout; `./-` names such a file', async () => {
    const cwd = join(dir, 'cwd-dash');
    mkdirSync(cwd);
    const result = await runCli(['backup', '-', '-c', liveConfig], 60_000, cwd);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error VALIDATION_FAILED: maos backup cannot write to stdout \(`-`\)/m);
    assert.equal(result.stdout, '');
    assert.deepEqual(readdirSync(cwd), [], 'nothing written in the current directory');
    const named = await runCli(['backup', './-', '-c', liveConfig], 60_000, cwd);
    assert.equal(named.code, 0, named.stderr);
    assert.deepEqual(readdirSync(cwd), ['-']);
    assert.ok(countRows(join(cwd, '-'), 'sessions') >= 0);
    const help = await runCli(['backup', '--help']);
    assert.match(
      help.stdout.replace(/\s+/g, ' '),
      /`-` is refused: the backup is a file, never written to stdout/,
    );
  });

  test('a backup name ending in a slash names a folder: refused as bad input (exit 2), whatever is there', async () => {
    const file = join(dir, 'slash-file.db');
    writeFileSync(file, 'not a backup');
    for (const target of [`${join(dir, 'no-such-folder')}/`, `${file}/`]) {
      const result = await runCli(['backup', `${target}`, '-c', liveConfig]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^error VALIDATION_FAILED: .+ ends in a slash/m);
      assert.doesNotMatch(result.stderr, /INTERNAL|ENOENT|ENOTDIR/);
    }
    assert.equal(readFileSync(file, 'utf8'), 'not a backup');
    assert.ok(!existsSync(join(dir, 'no-such-folder')));
  });

  test('a data directory the restore cannot write to is named as such (exit 7), not an INTERNAL error', async (t) => {
    // An immutable folder: not even root writes into it (as a read-only volume refuses everyone).
    const backup = join(dir, 'for-immutable.db');
    assert.equal((await runCli(['backup', backup, '-c', liveConfig])).code, 0);
    const locked = join(dir, 'immutable');
    mkdirSync(locked);
    if (spawnSync('chattr', ['+i', locked]).status !== 0) {
      t.skip('needs chattr +i (root, a file system with attributes)');
      return;
    }
    try {
      for (const dataDir of [locked, join(locked, 'data')]) {
        const result = await runCli(['restore', backup, '-c', writeConfig(dir, dataDir)]);
        assert.equal(result.code, 7, result.stderr);
        assert.match(
          result.stderr,
          /^error STORE_UNAVAILABLE: Cannot write the restored database into .*immutable(\/data)? \(EPERM\)/m,
        );
        assert.doesNotMatch(result.stderr, /INTERNAL/);
      }
    } finally {
      spawnSync('chattr', ['-i', locked]);
    }
    assert.deepEqual(readdirSync(locked), []);
  });

  test('restore into a new data dir, then refuse to overwrite it without --force', async () => {
    const dataDir = join(dir, 'restored');
    const config = writeConfig(dir, dataDir);
    const first = await runCli(['restore', backupFile, '-c', config, '--json']);
    assert.equal(first.code, 0, first.stderr);
    const report = JSON.parse(first.stdout) as {
      target: string;
      integrity: string;
      pendingMigrations: string[];
    };
    assert.equal(report.target, join(dataDir, 'maos.db'));
    assert.equal(report.integrity, 'ok');
    assert.deepEqual(report.pendingMigrations, []);
    const restoredSessions = countRows(report.target, 'sessions');
    assert.equal(restoredSessions, countRows(backupFile, 'sessions'));
    assert.ok(restoredSessions >= sessionsBeforeBackup);

    const again = await runCli(['restore', backupFile, '-c', config]);
    assert.equal(again.code, 6, 'CONFLICT exit code');
    assert.match(again.stderr, /already exists; pass --force/);

    const forced = await runCli(['restore', backupFile, '-c', config, '--force', '--json']);
    assert.equal(forced.code, 0, forced.stderr);
    const forcedReport = JSON.parse(forced.stdout) as { previous?: string };
    assert.ok(forcedReport.previous && existsSync(forcedReport.previous), 'the replaced database is kept');
    assert.equal(countRows(join(dataDir, 'maos.db'), 'sessions'), restoredSessions);
  });

  test('a restored database is owner-only when new, and keeps the mode of the one it replaces', async () => {
    const dataDir = join(dir, 'modes');
    const config = writeConfig(dir, dataDir);
    const database = join(dataDir, 'maos.db');
    assert.equal((await runCli(['restore', backupFile, '-c', config])).code, 0);
    assert.equal(statSync(database).mode & 0o777, 0o600, 'a new database is readable by its owner only');
    // The operator shares it with a backup group on purpose: the restore does not undo that.
    chmodSync(database, 0o640);
    const forced = await runCli(['restore', backupFile, '-c', config, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(statSync(database).mode & 0o777, 0o640, 'the replaced database’s mode is kept');
  });

  test('restore moves aside a -wal/-shm left without their database instead of replaying them', async () => {
    // An operator deleted maos.db of a server killed with commits still in its WAL, then restores.
    const dataDir = join(dir, 'stale-wal');
    const config = writeConfig(dir, dataDir);
    assert.equal((await runCli(['restore', backupFile, '-c', config])).code, 0);
    const live = join(dataDir, 'maos.db');
    const writer = new Database(live);
    writer.pragma('journal_mode = WAL');
    writer.pragma('wal_autocheckpoint = 0');
    writer.exec("update sessions set objective = 'from the stale WAL'");
    const stale = { wal: readFileSync(`${live}-wal`), shm: readFileSync(`${live}-shm`) };
    writer.close();
    rmSync(live);
    writeFileSync(`${live}-wal`, stale.wal);
    writeFileSync(`${live}-shm`, stale.shm);

    const result = await runCli(['restore', backupFile, '-c', config, '--json']);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as { previous?: string; strayFiles?: string[] };
    assert.equal(report.previous, undefined, 'there was no database to keep');
    assert.equal(report.strayFiles?.length, 2);
    for (const moved of report.strayFiles ?? []) assert.ok(existsSync(moved), `${moved} kept as evidence`);
    // Opened read-write, as the server opens it: nothing of the stale WAL shows up.
    const restored = new Database(live);
    try {
      restored.pragma('journal_mode = WAL');
      const replayed = restored
        .prepare("select count(*) as n from sessions where objective = 'from the stale WAL'")
        .get() as { n: number };
      assert.equal(replayed.n, 0, 'the stale WAL was replayed onto the restored database');
      assert.equal(
        countRows(backupFile, 'sessions'),
        (restored.prepare('select count(*) as n from sessions').get() as { n: number }).n,
      );
    } finally {
      restored.close();
    }
  });

  test('restore run as root gives the restored database the owner of the one it replaces', {
    skip: process.getuid?.() !== 0 && 'only root can restore for another user',
  }, async () => {
    const dataDir = join(dir, 'owned');
    const config = writeConfig(dir, dataDir);
    assert.equal((await runCli(['restore', backupFile, '-c', config])).code, 0);
    // The service user's database (here: nobody), restored by root with --force.
    const nobody = 65534;
    chownSync(dataDir, nobody, nobody);
    chownSync(join(dataDir, 'maos.db'), nobody, nobody);
    const forced = await runCli(['restore', backupFile, '-c', config, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    const restored = statSync(join(dataDir, 'maos.db'));
    assert.deepEqual([restored.uid, restored.gid], [nobody, nobody], 'the service user can open it');
  });

  test('restore --force refuses a database another process has open', async () => {
    const dataDir = join(dir, 'in-use');
    const config = writeConfig(dir, dataDir);
    const first = await runCli(['restore', backupFile, '-c', config]);
    assert.equal(first.code, 0, first.stderr);
    const holder = new Database(join(dataDir, 'maos.db'));
    // As a server does at start: WAL mode (a restored backup is in rollback-journal mode), then reads.
    holder.pragma('journal_mode = WAL');
    holder.prepare('select count(*) from sessions').get();
    try {
      const result = await runCli(['restore', backupFile, '-c', config, '--force']);
      assert.equal(result.code, 6);
      assert.match(result.stderr, /is open in another process/);
    } finally {
      holder.close();
    }
    const after = await runCli(['restore', backupFile, '-c', config, '--force']);
    assert.equal(after.code, 0, after.stderr);
  });

  test('a restore copy that finds the backup locked fails before the database is touched', async () => {
    const dataDir = join(dir, 'locked-backup');
    const config = writeConfig(dir, dataDir);
    assert.equal((await runCli(['restore', backupFile, '-c', config])).code, 0);
    const database = join(dataDir, 'maos.db');
    const before = readFileSync(database);
    const locked = join(dir, 'locked-backup.db');
    const holder = new Database(locked);
    holder.exec("create table t (x); insert into t values ('row')");
    // A rollback-journal file: a writer's exclusive lock keeps the copy from reading it.
    holder.exec('begin exclusive');
    try {
      await assert.rejects(replaceDatabaseFile(locked, database, { keepPrevious: true }), /No page of/);
    } finally {
      holder.exec('commit');
      holder.close();
    }
    assert.deepEqual(
      readdirSync(dataDir).filter((name) => name !== 'maos.db.server-lock'),
      ['maos.db'],
      'no staging copy left, nothing moved aside',
    );
    assert.deepEqual(readFileSync(database), before, 'the database is not replaced by an empty one');
  });

  test('restore --force replaces a damaged database, as maos doctor advises, and keeps it aside', async () => {
    const dataDir = join(dir, 'damaged');
    const config = writeConfig(dir, dataDir);
    assert.equal((await runCli(['restore', backupFile, '-c', config])).code, 0);
    const database = join(dataDir, 'maos.db');
    const damaged = Buffer.from(readFileSync(database));
    damaged.write('this is no longer a SQLite header', 0);
    writeFileSync(database, damaged);
    const result = await runCli(['restore', backupFile, '-c', config, '--force', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const { previous } = JSON.parse(result.stdout) as { previous?: string };
    assert.deepEqual(previous && readFileSync(previous), damaged, 'the damaged file is kept as it was');
    assert.equal(countRows(database, 'sessions'), countRows(backupFile, 'sessions'));
  });

  test('restore rejects a damaged file and a file that is not a MAOS database', async () => {
    const config = writeConfig(dir, join(dir, 'never'));
    const garbage = join(dir, 'garbage.db');
    writeFileSync(garbage, Buffer.alloc(8192, 0x5a));
    const damaged = await runCli(['restore', garbage, '-c', config]);
    assert.notEqual(damaged.code, 0);
    assert.match(damaged.stderr, /error (VALIDATION_FAILED|STORE_UNAVAILABLE)/);
    const empty = join(dir, 'empty.db');
    new Database(empty).close();
    const foreign = await runCli(['restore', empty, '-c', config]);
    assert.equal(foreign.code, 2);
    assert.match(foreign.stderr, /not a MAOS database/);
    assert.equal(existsSync(join(dir, 'never', 'maos.db')), false, 'nothing was installed');
  });

  test('restore reports a tampered audit chain and exits non-zero', async () => {
    const tampered = join(dir, 'tampered.db');
    const copy = new Database(backupFile, { readonly: true });
    await copy.backup(tampered);
    copy.close();
    const raw = new Database(tampered);
    raw.exec('drop trigger audit_log_no_update');
    raw.exec(
      "update audit_log set event = replace(event, 'svc-7', 'svc-X') where seq = (select min(seq) + 7 from audit_log)",
    );
    raw.close();
    const config = writeConfig(dir, join(dir, 'tampered-restore'));
    const result = await runCli(['restore', tampered, '-c', config, '--json']);
    assert.equal(result.code, 1, result.stderr);
    const report = JSON.parse(result.stdout) as { audit: { status: string; message: string } };
    assert.equal(report.audit.status, 'failed');
    assert.match(report.audit.message, /audit chain broken at record 7/);
  });

  test('restore refuses while a server holds the server lock of the target database, even with --force', async () => {
    const dataDir = join(dir, 'locked');
    const config = writeConfig(dir, dataDir);
    assert.equal((await runCli(['restore', backupFile, '-c', config])).code, 0);
    // What `maos serve` takes at start; nothing answers on the port (port 0), the lock alone decides.
    const lock = acquireServerLock(join(dataDir, 'maos.db'));
    try {
      const result = await runCli(['restore', backupFile, '-c', config, '--force']);
      assert.equal(result.code, 6, result.stderr);
      assert.match(result.stderr, /A MAOS server is running on .*maos\.db \(it holds the server lock\)/);
      assert.deepEqual(
        readdirSync(dataDir).filter((name) => name.includes('pre-restore')),
        [],
        'the database in use was not replaced',
      );
    } finally {
      lock.release();
    }
    const afterStop = await runCli(['restore', backupFile, '-c', config, '--force']);
    assert.equal(afterStop.code, 0, afterStop.stderr);
    // The restore held the lock only while it replaced the file: a server can take it again.
    acquireServerLock(join(dataDir, 'maos.db')).release();
  });

  test('restore into a data directory no server has run on yet holds the server lock: a server started meanwhile is refused', async () => {
    // No lock file yet (a new machine, a drill): one used to be neither created nor held, so a server
    // started during the copy ran on a database of its own, which the restore then moved aside as
    // the "previous" one (without --force) while that server went on writing to it.
    const dataDir = join(dir, 'fresh-lock');
    const config = loadConfig({ configPath: writeConfig(dir, dataDir) });
    const database = join(dataDir, 'maos.db');
    const restoring = restoreBackup(config, backupFile, { force: false });
    while (!existsSync(join(dataDir, '.maos.db.restoring'))) await new Promise(setImmediate);
    let serverLock: { release(): void } | undefined;
    try {
      assert.throws(
        () => {
          serverLock = acquireServerLock(database);
        },
        (error: { code?: string }) => error.code === 'CONFLICT',
        'a server starting while the restore copies is refused',
      );
    } finally {
      serverLock?.release();
    }
    const report = await restoring;
    assert.equal(report.previous, undefined);
    assert.equal(countRows(database, 'sessions'), countRows(backupFile, 'sessions'));
    // Held only for the restore: a server starts afterwards.
    acquireServerLock(database).release();
  });

  test('restore into a fresh data directory while another server answers on the configured port (a drill on the production host)', async () => {
    // This used to be refused: any answer on the port counted as a server of this data directory.
    // The production server there runs on another database, whose lock is not this one's.
    await withFakeServer(async (port) => {
      const dataDir = join(dir, 'drill');
      const config = writeConfig(dir, dataDir, port);
      const result = await runCli(['restore', backupFile, '-c', config, '--json']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(countRows(join(dataDir, 'maos.db'), 'sessions') > 0, true);
    });
  });

  test('restore probes the configured port only when the server lock cannot be checked', async () => {
    const dataDir = join(dir, 'unknown-lock');
    mkdirSync(dataDir);
    // A lock file that is no SQLite file: the lock cannot tell whether a server runs.
    writeFileSync(join(dataDir, 'maos.db.server-lock'), Buffer.alloc(4096, 0x5a));
    await withFakeServer(async (port) => {
      const config = writeConfig(dir, dataDir, port);
      const result = await runCli(['restore', backupFile, '-c', config, '--force']);
      assert.equal(result.code, 6);
      assert.match(
        result.stderr,
        /server answers at http:\/\/127\.0\.0\.1:\d+ and the server lock of .* cannot be checked/,
      );
      assert.equal(existsSync(join(dataDir, 'maos.db')), false);
    });
    const quiet = await runCli(['restore', backupFile, '-c', writeConfig(dir, dataDir)]);
    assert.equal(quiet.code, 0, quiet.stderr);
  });

  test('a server that serves HTTPS (tls.certFile) answers that probe too', {
    skip: skipWithoutOpenssl,
  }, async () => {
    // Probed over plain HTTP, a TLS listener gives no answer: the restore went ahead under it.
    const dataDir = join(dir, 'unknown-lock-tls');
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'maos.db.server-lock'), Buffer.alloc(4096, 0x5a));
    const certDir = join(dir, 'tls');
    mkdirSync(certDir);
    const { certFile, keyFile } = createSelfSignedCert(certDir);
    const server = createHttpsServer(
      { cert: readFileSync(certFile), key: readFileSync(keyFile) },
      (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const config = join(dir, 'config-tls.yaml');
      writeFileSync(
        config,
        `dataDir: ${dataDir}\nport: ${port}\ntls:\n  certFile: ${certFile}\n  keyFile: ${keyFile}\n`,
      );
      const result = await runCli(['restore', backupFile, '-c', config, '--force']);
      assert.equal(result.code, 6, result.stderr);
      assert.match(
        result.stderr,
        /server answers at https:\/\/127\.0\.0\.1:\d+ and the server lock of .* cannot be checked/,
      );
      assert.equal(existsSync(join(dataDir, 'maos.db')), false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
