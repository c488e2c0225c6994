// `maos keys list` and `maos keys revoke` show a key name's control characters as escapes: names are
// refused with them now, but a database may hold one stored before that rule, written through the
// API by a tenant's admin, and the operator listing keys would have sent it to the terminal.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { runMaos } from '../fixtures/cli.ts';

/**
 * Creates a viewer key named `ci` with `maos keys create` on a new data directory, then stores
 * `name` as its name straight in the database, as a name written before names were checked.
 */
async function keyWithStoredName(t: TestContext, name: string): Promise<{ config: string; prefix: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-keys-names-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const config = join(dir, 'maos.yaml');
  writeFileSync(config, `dataDir: ${JSON.stringify(dataDir)}\n`);
  const created = await runMaos([
    'keys',
    'create',
    '--role',
    'viewer',
    '--name',
    'ci',
    '--json',
    '-c',
    config,
  ]);
  assert.equal(created.code, 0, created.stderr);
  const { prefix } = JSON.parse(created.stdout) as { prefix: string };
  const db = new SqliteDatabase(join(dataDir, 'maos.db'));
  db.prepare('update api_keys set name = ? where prefix = ?').run(name, prefix);
  db.close();
  return { config, prefix };
}

test('keys list and revoke print a stored name with control characters as escapes', async (t) => {
  // A name as stored before the rule: an OSC sequence (set the terminal title) and a screen clear.
  const { config, prefix } = await keyWithStoredName(t, 'ci\u001b]0;owned\u0007\u001b[2J');
  const shown = 'ci\\x1b]0;owned\\x07\\x1b[2J';

  const listed = await runMaos(['keys', 'list', '-c', config]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok(listed.stdout.includes(shown), listed.stdout);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
  assert.doesNotMatch(listed.stdout, /[\u001b\u0007]/);

  const revoked = await runMaos(['keys', 'revoke', prefix, '-c', config]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.ok(revoked.stdout.includes(`(${shown})`), revoked.stdout);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
  assert.doesNotMatch(revoked.stdout, /[\u001b\u0007]/);
});

test('keys list and revoke keep a stored name with a line break or tab on its own row', async (t) => {
  // A line break in a name printed a second row, here one passing for an admin key still active.
  const forged = '00000000-0000-0000-0000-000000000000  0123456789ab  deploy  admin  active  -';
  const { config, prefix } = await keyWithStoredName(t, `ci\t\n${forged}`);

  const listed = await runMaos(['keys', 'list', '-c', config]);
  assert.equal(listed.code, 0, listed.stderr);
  const lines = listed.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 2, listed.stdout);
  assert.ok(lines[1]?.includes(`ci\\x09\\x0a${forged}`), listed.stdout);

  const revoked = await runMaos(['keys', 'revoke', prefix, '-c', config]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal(revoked.stdout.trimEnd().split('\n').length, 1, revoked.stdout);
  assert.ok(revoked.stdout.includes(`(ci\\x09\\x0a${forged})`), revoked.stdout);

  // The JSON list holds the name as stored: JSON is its own encoding.
  const json = await runMaos(['keys', 'list', '--json', '-c', config]);
  assert.equal(json.code, 0, json.stderr);
  const { items } = JSON.parse(json.stdout) as { items: Array<{ name: string }> };
  assert.equal(items[0]?.name, `ci\t\n${forged}`);
});
