// Run as root on a data directory that belongs to the service user, `maos migrate` and `maos serve`
// refuse to create a new database: it would be root's, and the service user's server could not open
// it. Run as that user, or on an existing database, they work and leave no root-owned file behind.
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
import { cannotRunCheckoutAs } from '../fixtures/run-as-user.ts';

const BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));
// The service user of these tests; any uid other than root's will do.
const SERVICE_UID = 1000;

function runAs(uid: number, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN, ...args], {
    uid,
    gid: uid,
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '', HOME: tmpdir() },
  });
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
        `STORE_UNAVAILABLE: Refusing to create ${dataDir}/maos\\.db as root: ${dataDir} belongs to uid ${SERVICE_UID}`,
      ),
    );
    assert.match(result.stderr, new RegExp(`sudo -u '#${SERVICE_UID}' maos`));
    assert.deepEqual(readdirSync(dataDir), []);
  });

  test('maos serve refuses before it writes a database, a key or a checkpoint', () => {
    const { dataDir, config } = serviceDataDir('serve');
    const result = runAs(0, ['serve', '--config', config]);
    assert.equal(result.status, 7, result.stderr);
    assert.match(result.stderr, /STORE_UNAVAILABLE: Refusing to create .*maos\.db as root/);
    assert.deepEqual(readdirSync(dataDir), []);
  });

  test('a missing data directory whose nearest parent belongs to another user is not created', () => {
    const { dataDir } = serviceDataDir('parent');
    const config = join(dir, 'nested.json');
    writeFileSync(config, JSON.stringify({ dataDir: join(dataDir, 'a', 'b') }));
    const result = runAs(0, ['migrate', '--config', config]);
    assert.equal(result.status, 7, result.stderr);
    assert.match(result.stderr, new RegExp(`${dataDir} belongs to uid ${SERVICE_UID}`));
    assert.equal(existsSync(join(dataDir, 'a')), false);
  });

  test('as the directory owner it works; as root on the existing database too, leaving no file to root', {
    skip: cannotRunCheckoutAs(SERVICE_UID),
  }, () => {
    const { dataDir, config } = serviceDataDir('owner');
    const asOwner = runAs(SERVICE_UID, ['migrate', '--config', config]);
    assert.equal(asOwner.status, 0, asOwner.stderr);
    const database = statSync(join(dataDir, 'maos.db'));
    assert.deepEqual([database.uid, database.mode & 0o777], [SERVICE_UID, 0o600]);
    // The database exists now: root may open it (SQLite gives its -wal/-shm the file's owner).
    const asRoot = runAs(0, ['migrate', '--config', config]);
    assert.equal(asRoot.status, 0, asRoot.stderr);
    for (const name of readdirSync(dataDir)) {
      assert.equal(statSync(join(dataDir, name)).uid, SERVICE_UID, `${name} belongs to the service user`);
    }
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
