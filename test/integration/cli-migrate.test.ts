// `maos migrate --status` changes nothing: on a database that does not exist yet it reports every
// migration pending without creating the data directory or the SQLite file.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
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
