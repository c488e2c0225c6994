// `maos audit verify` and `maos audit export` read MAOS's audit log only from MAOS's own schema of a
// PostgreSQL database (the first existing one of the search_path). Another schema holding an
// `audit_log` table (an older MAOS schema kept under another name, another application's) was taken
// for it: a database MAOS had not migrated failed with INTERNAL `relation "audit_log" does not
// exist` instead of being told to run `maos migrate`. Needs
// --test-global-setup=test/fixtures/postgres-global-setup.ts (or an embedded PostgreSQL).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../../src/config/load.ts';
import { openLocalSecurityDatabase } from '../../src/security/local-store.ts';
import { runMaos } from '../fixtures/cli.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';

async function query(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

describe('the audit log beside another schema’s audit_log', { timeout: 120_000 }, () => {
  let dir: string;
  let postgres: TestDatabase;
  let config: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-pg-audit-schemas-'));
    postgres = await createTestDatabase({ empty: true });
    await query(
      postgres.url,
      `create schema maos_before_restore;
       create table maos_before_restore.audit_log (seq bigint primary key, entry text not null)`,
    );
    config = join(dir, 'maos.json');
    writeFileSync(config, JSON.stringify({ dataDir: join(dir, 'data'), store: { url: postgres.url } }));
  });

  after(async () => {
    await postgres?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a database not migrated has none; once migrated, its own is read', async () => {
    const store = openLocalSecurityDatabase(loadConfig({ configPath: config }));
    try {
      assert.equal(await store.hasAuditLog(), false, 'the other schema’s audit_log is not MAOS’s');
    } finally {
      await store.close();
    }
    for (const command of [
      ['audit', 'verify'],
      ['audit', 'export'],
    ]) {
      const result = await runMaos([...command, '--config', config]);
      assert.equal(result.code, 4, `${command.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /no audit log in .*run `maos migrate` first/);
    }

    assert.equal((await runMaos(['migrate', '--config', config])).code, 0);
    const migrated = openLocalSecurityDatabase(loadConfig({ configPath: config }));
    try {
      assert.equal(await migrated.hasAuditLog(), true);
    } finally {
      await migrated.close();
    }
    const verify = await runMaos(['audit', 'verify', '--config', config]);
    assert.equal(verify.code, 0, verify.stderr);
  });
});
