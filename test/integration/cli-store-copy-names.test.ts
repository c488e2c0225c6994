// `maos store copy --to sqlite:<file>` never writes the copy where the configured SQLite database
// is, under another spelling, or as a file SQLite keeps beside it: a copy to `maos.db-journal` was
// written and reported, and the next open of the source took it for a hot rollback journal and
// deleted it.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'maos-store-copy-names-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a copy target naming the source database or one of its side files is refused, nothing written', async () => {
  const data = join(dir, 'data');
  const config = join(dir, 'maos.json');
  writeFileSync(config, JSON.stringify({ dataDir: data, store: { synchronous: 'normal' } }));
  const key = await runMaos(['keys', 'create', '--config', config, '--role', 'admin']);
  assert.equal(key.code, 0, key.stderr);
  const database = join(data, 'maos.db');
  const before = readFileSync(database);
  const linked = join(dir, 'linked');
  symlinkSync(data, linked);
  for (const target of [
    join(linked, 'maos.db'),
    `${database}-journal`,
    `${database}-wal`,
    `${database}-shm`,
    `${database}.server-lock`,
  ]) {
    const existed = existsSync(target);
    for (const args of [['--dry-run'], []]) {
      const copy = await runMaos(['store', 'copy', '--config', config, '--to', `sqlite:${target}`, ...args]);
      assert.equal(copy.code, 2, `${target} ${args}: ${copy.stdout}${copy.stderr}`);
      assert.match(copy.stderr, /--to names the configured database .* or a file SQLite keeps beside it/);
    }
    assert.equal(existsSync(target), existed, `${target} written`);
  }
  assert.ok(readFileSync(database).equals(before), 'the source is unchanged');
});
