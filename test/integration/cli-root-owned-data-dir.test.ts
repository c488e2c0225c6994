// Run as root on a data directory that belongs to the service user, the commands that write there
// refuse, naming the owner to run as, before they write anything: `maos migrate` and `maos serve` on
// a new database (it would be root's, and the service user's server could not open it), and
// `serve`, `mcp`, `migrate`, `keys` and `secrets` on an existing one too (the server lock, run
// records, keys and checkpoints they write would be root's). MAOS_ALLOW_ROOT=1 lifts the refusal.
// The commands that only read (`backup`, `audit`, `doctor`) and `restore` (which hands its files to
// the owner) work, and leave no file to root.
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { cannotRunCheckoutAs, nodeAs } from '../fixtures/run-as-user.ts';

const BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));
// The service user of these tests; any uid other than root's will do.
const SERVICE_UID = 1000;

function runAs(
  uid: number,
  args: string[],
  env: Record<string, string> = {},
  timeout = 60_000,
): SpawnSyncReturns<string> {
  const asUser = nodeAs(uid, [BIN, ...args]);
  return spawnSync(asUser.file, asUser.args, {
    ...asUser.options,
    encoding: 'utf8',
    timeout,
    input: '',
    env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), ...env },
  });
}

/** Every file and directory under `dir` (relative paths, sorted) with its owner's uid. */
function owners(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .sort()
    .map((name) => `${name} ${statSync(join(dir, name)).uid}`);
}

/** Hands `dir` and everything under it to `uid`, as a service that made them would own them. */
function chownTree(dir: string, uid: number): void {
  chownSync(dir, uid, uid);
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' }))
    chownSync(join(dir, name), uid, uid);
}

describe('a new database under a data directory owned by another user, run as root', {
  skip: process.platform === 'linux' && process.getuid?.() === 0 ? false : 'needs Linux and root',
}, () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-root-owner-'));
    // The service user must reach the data directories inside.
    chmodSync(dir, 0o755);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** A data directory owned by the service user, and a config file naming it. */
  function serviceDataDir(name: string): { dataDir: string; config: string } {
    const dataDir = join(dir, name);
    mkdirSync(dataDir, { mode: 0o750 });
    chownSync(dataDir, SERVICE_UID, SERVICE_UID);
    const config = join(dir, `${name}.json`);
    writeFileSync(config, JSON.stringify({ dataDir, port: 0, auth: { mode: 'none' }, logLevel: 'warn' }));
    chmodSync(config, 0o644);
    return { dataDir, config };
  }

  test('maos migrate refuses, names the owner to run as, and creates nothing', () => {
    const { dataDir, config } = serviceDataDir('migrate');
    const result = runAs(0, ['migrate', '--config', config]);
    assert.equal(result.status, 7, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `DATA_DIR_OWNER_MISMATCH: Refusing to create ${dataDir}/maos\\.db as root: ${dataDir} belongs to uid ${SERVICE_UID}`,
      ),
    );
    assert.match(result.stderr, new RegExp(`sudo -u '#${SERVICE_UID}' maos`));
    assert.deepEqual(readdirSync(dataDir), []);
  });

  test('maos serve refuses before it writes a database, a key or a checkpoint', () => {
    const { dataDir, config } = serviceDataDir('serve');
    const result = runAs(0, ['serve', '--config', config]);
    assert.equal(result.status, 7, result.stderr);
    assert.match(result.stderr, /DATA_DIR_OWNER_MISMATCH: Refusing to create .*maos\.db as root/);
    assert.deepEqual(readdirSync(dataDir), []);
  });

  test('a missing data directory whose nearest parent belongs to another user is not created', () => {
    const { dataDir } = serviceDataDir('parent');
    const config = join(dir, 'nested.json');
    writeFileSync(config, JSON.stringify({ dataDir: join(dataDir, 'a', 'b') }));
    const result = runAs(0, ['migrate', '--config', config]);
    assert.equal(result.status, 7, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`DATA_DIR_OWNER_MISMATCH: .* ${dataDir} belongs to uid ${SERVICE_UID}`),
    );
    assert.equal(existsSync(join(dataDir, 'a')), false);
  });

  test('as the directory owner it works; as root on that existing database it is refused', {
    skip: cannotRunCheckoutAs(SERVICE_UID),
  }, () => {
    const { dataDir, config } = serviceDataDir('owner');
    const asOwner = runAs(SERVICE_UID, ['migrate', '--config', config]);
    assert.equal(asOwner.status, 0, asOwner.stderr);
    const database = statSync(join(dataDir, 'maos.db'));
    assert.deepEqual([database.uid, database.mode & 0o777], [SERVICE_UID, 0o600]);
    const asRoot = runAs(0, ['migrate', '--config', config]);
    assert.equal(asRoot.status, 7, asRoot.stderr);
    assert.match(asRoot.stderr, /DATA_DIR_OWNER_MISMATCH: Refusing to open .*maos\.db as root/);
  });

  test('a data directory owned by root is root’s to use', () => {
    const dataDir = join(dir, 'root-owned');
    const config = join(dir, 'root-owned.json');
    writeFileSync(config, JSON.stringify({ dataDir }));
    const result = runAs(0, ['migrate', '--config', config]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(statSync(join(dataDir, 'maos.db')).uid, 0);
  });
});

describe('an existing database of another user, run as root', {
  skip: process.platform === 'linux' && process.getuid?.() === 0 ? false : 'needs Linux and root',
}, () => {
  let dir: string;
  // A KEK ring for `maos secrets rewrap` (any 32 bytes).
  const kekRing = `k1:${Buffer.alloc(32, 7).toString('base64')}`;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-root-existing-'));
    chmodSync(dir, 0o755);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A data directory as the service user's server leaves it: migrated, with an API key (so keys and
   * an audit checkpoint exist), everything handed to the service user. Returns it and its config.
   */
  function serviceDatabase(name: string): { dataDir: string; config: string } {
    const dataDir = join(dir, name);
    const config = join(dir, `${name}.json`);
    writeFileSync(
      config,
      JSON.stringify({ dataDir, port: 0, auth: { mode: 'none' }, logLevel: 'warn', secrets: { kekRing } }),
    );
    for (const args of [['migrate'], ['keys', 'create', '--role', 'admin']]) {
      const made = runAs(0, [...args, '--config', config]);
      assert.equal(made.status, 0, made.stderr);
    }
    chownTree(dataDir, SERVICE_UID);
    return { dataDir, config };
  }

  const refusal = (path: string) =>
    new RegExp(
      `DATA_DIR_OWNER_MISMATCH: Refusing to open ${path} as root: ${path} belongs to uid ${SERVICE_UID}.*sudo -u '#${SERVICE_UID}' maos`,
    );

  test('maos serve refuses, names the owner, and writes no server lock, key or run record', () => {
    const { dataDir, config } = serviceDatabase('serve');
    const before = owners(dataDir);
    // Not refused, it would serve until killed: the timeout then fails the test.
    const result = runAs(0, ['serve', '--config', config], {}, 30_000);
    assert.equal(result.status, 7, result.stderr);
    assert.match(result.stderr, refusal(join(dataDir, 'maos.db')));
    assert.deepEqual(owners(dataDir), before);
  });

  test('maos mcp (embedded) refuses as serve does', () => {
    const { dataDir, config } = serviceDatabase('mcp');
    const before = owners(dataDir);
    const result = runAs(0, ['mcp', '--config', config], {}, 30_000);
    assert.equal(result.status, 7, result.stderr);
    assert.match(result.stderr, refusal(join(dataDir, 'maos.db')));
    assert.deepEqual(owners(dataDir), before);
  });

  test('maos keys and maos secrets refuse before writing a key, a record or a checkpoint', () => {
    const { dataDir, config } = serviceDatabase('keys');
    const before = owners(dataDir);
    for (const args of [
      ['keys', 'create', '--role', 'admin'],
      ['keys', 'revoke', 'mk_nothing'],
      ['secrets', 'rewrap'],
    ]) {
      const result = runAs(0, [...args, '--config', config]);
      assert.equal(result.status, 7, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, refusal(join(dataDir, 'maos.db')), args.join(' '));
    }
    assert.deepEqual(owners(dataDir), before);
  });

  test('maos migrate refuses; with MAOS_ALLOW_ROOT=1 it runs, leaving every file to the owner', () => {
    const { dataDir, config } = serviceDatabase('migrate');
    const before = owners(dataDir);
    const refused = runAs(0, ['migrate', '--config', config]);
    assert.equal(refused.status, 7, refused.stderr);
    assert.match(refused.stderr, refusal(join(dataDir, 'maos.db')));
    assert.match(refused.stderr, /MAOS_ALLOW_ROOT=1/);
    const allowed = runAs(0, ['migrate', '--config', config], { MAOS_ALLOW_ROOT: '1' });
    assert.equal(allowed.status, 0, allowed.stderr);
    // SQLite gives the -wal/-shm it creates as root the database file's owner.
    assert.deepEqual(owners(dataDir), before);
  });

  test('a data directory of another user is refused when the database lives elsewhere (as with PostgreSQL)', () => {
    const { dataDir } = serviceDatabase('elsewhere');
    const rootDir = join(dir, 'root-database');
    mkdirSync(rootDir);
    const config = join(dir, 'elsewhere-db.json');
    writeFileSync(
      config,
      JSON.stringify({
        dataDir,
        port: 0,
        auth: { mode: 'none' },
        store: { url: `sqlite:${rootDir}/maos.db` },
      }),
    );
    const result = runAs(0, ['serve', '--config', config], {}, 30_000);
    assert.equal(result.status, 7, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `DATA_DIR_OWNER_MISMATCH: Refusing to use ${dataDir} as root: ${dataDir} belongs to uid ${SERVICE_UID}`,
      ),
    );
    assert.deepEqual(readdirSync(rootDir), []);
  });

  test('the commands that only read (backup, audit, doctor, migrate --status) work and leave nothing to root', () => {
    const { dataDir, config } = serviceDatabase('readers');
    const before = owners(dataDir);
    const copies = mkdtempSync(join(dir, 'copies-'));
    for (const args of [
      ['backup', join(copies, 'backup.db')],
      ['audit', 'verify'],
      ['audit', 'export', '--output', join(copies, 'audit.jsonl')],
      ['migrate', '--status'],
    ]) {
      const result = runAs(0, [...args, '--config', config]);
      assert.equal(result.status, 0, `${args.join(' ')}: ${result.stderr}`);
    }
    const doctor = runAs(0, ['doctor', '--config', config, '--json']);
    assert.doesNotMatch(doctor.stdout + doctor.stderr, /Refusing/);
    assert.match(doctor.stdout, /"name":\s*"database",\s*"status":\s*"pass"/);
    assert.deepEqual(owners(dataDir), before);
  });

  test('maos audit verify without a key of the installation does not generate one as root', () => {
    const { dataDir, config } = serviceDatabase('no-key');
    // As after an upgrade from a build without audit keys: the log is there, no key beside it.
    rmSync(join(dataDir, 'keys'), { recursive: true });
    const before = owners(dataDir);
    // Verifying only reads: it checks the chain and says the checkpoints went unchecked.
    const result = runAs(0, ['audit', 'verify', '--config', config]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /this installation has no audit key/);
    assert.deepEqual(owners(dataDir), before);
  });

  test('maos restore hands what it writes (the database, set-aside checkpoints) to the owner', () => {
    const { dataDir, config } = serviceDatabase('restore');
    const backup = join(mkdtempSync(join(dir, 'backup-')), 'backup.db');
    assert.equal(runAs(0, ['backup', backup, '--config', config]).status, 0);
    // A checkpoint the database signed over more records than the backup holds: the restore sets it aside.
    const checkpoint = join(dataDir, 'audit-checkpoints', 'checkpoint-999.txt');
    writeFileSync(checkpoint, 'signed after the backup\n');
    chownSync(checkpoint, SERVICE_UID, SERVICE_UID);
    const database = new Database(join(dataDir, 'maos.db'));
    database
      .prepare('insert into audit_checkpoints (size, root, note, created_at) values (?, ?, ?, ?)')
      .run(999, 'root', 'signed after the backup\n', new Date().toISOString());
    database.close();
    const result = runAs(0, ['restore', backup, '--force', '--config', config, '--json']);
    assert.equal(result.status, 0, result.stderr);
    assert.ok(JSON.parse(result.stdout).supersededCheckpoints, result.stdout);
    const rootOwned = owners(dataDir).filter((entry) => !entry.endsWith(` ${SERVICE_UID}`));
    assert.deepEqual(rootOwned, []);
  });
});
