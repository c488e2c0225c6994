// `maos store copy` signs its `store:copy` audit record with the installation's key, which it may
// have to generate into the data directory. That happens before anything is copied: a key that
// cannot be written used to fail the command only after the copy was committed, leaving a filled
// target without the copy's record, which a second run then refused as "already holds data".
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { runMaos } from '../fixtures/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'maos-store-copy-signer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a signing key that cannot be written to the data directory fails the copy before the target is written', async () => {
  const database = join(dir, 'source.db');
  const made = join(dir, 'made.json');
  writeFileSync(made, JSON.stringify({ dataDir: join(dir, 'made'), store: { url: `sqlite:${database}` } }));
  // A database with a row to copy (and its audit record).
  const key = await runMaos(['keys', 'create', '--config', made, '--role', 'admin']);
  assert.equal(key.code, 0, key.stderr);
  // The database named by store.url, the data directory (where the key would go) under a file.
  const blocker = join(dir, 'not-a-folder');
  writeFileSync(blocker, 'x');
  const config = join(dir, 'copy.json');
  writeFileSync(
    config,
    JSON.stringify({ dataDir: join(blocker, 'data'), store: { url: `sqlite:${database}` } }),
  );
  const target = join(dir, 'target.db');
  const copy = await runMaos(['store', 'copy', '--config', config, '--to', `sqlite:${target}`]);
  assert.notEqual(copy.code, 0, copy.stdout);
  assert.doesNotMatch(copy.stdout, /copied\s+sessions/, 'nothing was copied');
  if (existsSync(target)) {
    const written = new Database(target, { readonly: true });
    try {
      const rows = written.prepare('select count(*) as n from api_keys').get() as { n: number };
      assert.equal(rows.n, 0, 'the target holds no copied row');
    } finally {
      written.close();
    }
  }
});
