// Local commands that only read or change existing data, run on a data directory that holds no
// database (a mistyped MAOS_DATA_DIR or dataDir): exit 4 with a message naming the missing file,
// and nothing created there. `maos keys create` (the first key of a new data directory) still creates.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';

const root = mkdtempSync(join(tmpdir(), 'maos-cli-missing-'));
after(() => rmSync(root, { recursive: true, force: true }));

const kekRing = `k1:${Buffer.alloc(32, 7).toString('base64')}`;

describe('local commands on a data directory without a database', () => {
  const commands: [string, string[]][] = [
    ['keys list', ['keys', 'list']],
    ['keys revoke', ['keys', 'revoke', 'maos_abc']],
    ['audit verify', ['audit', 'verify']],
    ['audit export', ['audit', 'export']],
    ['secrets rewrap', ['secrets', 'rewrap']],
  ];
  for (const [name, args] of commands) {
    test(`${name}: exit 4 naming the missing database, nothing created`, async () => {
      const dataDir = join(root, name.replace(' ', '-'), 'mistyped');
      const result = await runMaos(args, {
        env: { MAOS_DATA_DIR: dataDir, MAOS_LOG_LEVEL: 'silent', MAOS_SECRETS__KEK_RING: kekRing },
      });
      assert.equal(result.code, 4, `${result.stdout}\n${result.stderr}`);
      assert.match(result.stderr, /^error NOT_FOUND: No database at .*mistyped\/maos\.db/m);
      assert.equal(result.stdout, '');
      assert.equal(existsSync(dataDir), false, `${dataDir} was created`);
    });
  }

  test('keys create still makes the database of a new data directory (the first key)', async () => {
    const dataDir = join(root, 'new', 'data');
    const created = await runMaos(['keys', 'create', '--role', 'admin', '--name', 'first'], {
      env: { MAOS_DATA_DIR: dataDir, MAOS_LOG_LEVEL: 'silent' },
    });
    assert.equal(created.code, 0, created.stderr);
    assert.equal(existsSync(join(dataDir, 'maos.db')), true);
    const listed = await runMaos(['keys', 'list'], {
      env: { MAOS_DATA_DIR: dataDir, MAOS_LOG_LEVEL: 'silent' },
    });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /first/);
  });
});
