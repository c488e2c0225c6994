// A PostgreSQL that refuses the connection (a wrong password, a missing database) is reported alike
// by every local command that opens the store, as `maos migrate` reports it: STORE_UNAVAILABLE with
// the SQLSTATE, exit 7, never an internal error.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestDatabase, withDatabase } from '../fixtures/postgres.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function withPassword(url: string, password: string): string {
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
}

describe('local commands on a PostgreSQL that refuses the connection', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  let dir: string;
  before(async () => {
    database = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'maos-pg-refused-'));
  });
  after(async () => {
    await database?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cases = [
    { name: 'a wrong password', url: () => withPassword(database.url, 'wrong-password'), code: '28P01' },
    { name: 'a missing database', url: () => withDatabase(database.url, 'maos_missing_db'), code: '3D000' },
  ];
  for (const { name, url, code } of cases) {
    test(`${name}: STORE_UNAVAILABLE (${code}), exit 7, in every command`, () => {
      const dataDir = join(dir, code);
      const config = join(dir, `${code}.json`);
      writeFileSync(
        config,
        JSON.stringify({ dataDir, logLevel: 'warn', store: { url: url(), startupWaitMs: 0 } }),
      );
      const commands = [
        ['migrate', '--status'],
        ['store', 'copy', '--to', `sqlite:${join(dir, `${code}-copy.db`)}`],
        ['tenants', 'export', 'default', '--output', join(dir, `${code}.tar`)],
      ];
      for (const command of commands) {
        const run = spawnSync(process.execPath, ['bin/maos.js', ...command, '--config', config], {
          cwd: ROOT,
          env: { PATH: process.env.PATH, HOME: dir },
          encoding: 'utf8',
        });
        const output = `${run.stdout}${run.stderr}`;
        assert.doesNotMatch(output, /INTERNAL/, `${command.join(' ')}: ${output}`);
        assert.match(
          output,
          new RegExp(`error STORE_UNAVAILABLE: The database refused the connection: .* \\(${code}\\)`),
          `${command.join(' ')}: ${output}`,
        );
        assert.equal(run.status, 7, `${command.join(' ')}: ${output}`);
      }
    });
  }
});
