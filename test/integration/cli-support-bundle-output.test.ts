// `maos support-bundle -o` naming a file the bundle is made from: the SQLite database (by any path
// to it, or a file SQLite keeps beside it), the config file or the log file is refused (exit 2) and
// left as it was, as `maos tenants export` and `maos audit export` refuse their database; the
// bundle replaced it, so a mistyped -o erased every session, key and audit record.
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';

test('support-bundle -o refuses the database, the config file and the log file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-support-bundle-output-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const config = join(dir, 'maos.yaml');
  const configText = `dataDir: ${JSON.stringify(dataDir)}\nauth:\n  mode: none\n`;
  writeFileSync(config, configText);
  const migrated = await runMaos(['migrate', '--config', config]);
  assert.equal(migrated.code, 0, migrated.stderr);
  const database = join(dataDir, 'maos.db');
  const sqliteHeader = () => readFileSync(database).subarray(0, 16).toString('latin1');
  assert.equal(sqliteHeader(), 'SQLite format 3\0');
  const log = join(dir, 'maos.log');
  writeFileSync(log, '{"message":"server started"}\n');
  // Another path to the data directory.
  const linked = join(dir, 'linked');
  symlinkSync(dataDir, linked);

  for (const output of [database, join(linked, 'maos.db'), `${database}-wal`]) {
    const result = await runMaos(['support-bundle', '-o', output, '--config', config]);
    assert.equal(result.code, 2, `${output}: ${result.stdout}${result.stderr}`);
    assert.match(result.stderr, /^error USAGE: --output .* is the database the bundle reads/);
    assert.equal(sqliteHeader(), 'SQLite format 3\0');
  }

  const overConfig = await runMaos(['support-bundle', '-o', config, '--config', config]);
  assert.equal(overConfig.code, 2, overConfig.stdout + overConfig.stderr);
  assert.match(overConfig.stderr, /^error USAGE: --output .* is the config file the bundle reads/);
  assert.equal(readFileSync(config, 'utf8'), configText);

  const overLog = await runMaos(['support-bundle', '-o', log, '--log-file', log, '--config', config]);
  assert.equal(overLog.code, 2, overLog.stdout + overLog.stderr);
  assert.match(overLog.stderr, /^error USAGE: --output .* is the log file the bundle reads/);
  assert.equal(readFileSync(log, 'utf8'), '{"message":"server started"}\n');

  // Any other name is written as before.
  const bundle = join(dir, 'bundle.tar.gz');
  const written = await runMaos(['support-bundle', '-o', bundle, '--config', config]);
  assert.equal(written.code, 0, written.stderr);
  assert.equal(readFileSync(bundle).subarray(0, 2).toString('hex'), '1f8b');
});

test('support-bundle -o refuses the side files of a database linked from another folder', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-support-bundle-output-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const config = join(dir, 'maos.yaml');
  writeFileSync(config, `dataDir: ${JSON.stringify(dataDir)}\nauth:\n  mode: none\n`);
  const migrated = await runMaos(['migrate', '--config', config]);
  assert.equal(migrated.code, 0, migrated.stderr);
  // The database kept on another volume, linked into the data directory: SQLite keeps its -wal,
  // -shm and -journal beside the file the link leads to.
  const volume = join(dir, 'volume');
  mkdirSync(volume);
  const stored = join(volume, 'maos.db');
  renameSync(join(dataDir, 'maos.db'), stored);
  symlinkSync(stored, join(dataDir, 'maos.db'));

  for (const output of [stored, `${stored}-wal`, `${stored}-journal`]) {
    const result = await runMaos(['support-bundle', '-o', output, '--config', config]);
    assert.equal(result.code, 2, `${output}: ${result.stdout}${result.stderr}`);
    assert.match(result.stderr, /^error USAGE: --output .* is the database the bundle reads/);
    if (output !== stored) assert.equal(existsSync(output), false, output);
  }
  assert.equal(readFileSync(stored).subarray(0, 16).toString('latin1'), 'SQLite format 3\0');
});
