// A tenant stored under an id the rule of tenant ids now refuses (` acme`, from an OIDC tenant claim
// accepted before the claim was checked at sign-in) can still be exported, erased, and have its keys
// listed and its audit records exported, by its exact id; a padded id no tenant has is refused with
// the rule's message, and no new data (a key) can be created under such an id. The padded tenant's
// rows are written straight into the store, as a server of an earlier version left them.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { loadConfig } from '../../src/config/load.ts';
import { createDatabase } from '../../src/store/db.ts';
import { TENANT_TABLES } from '../../src/store/tenant-purge.ts';
import { runMaos } from '../fixtures/cli.ts';
import { countTenantRows, seedTenantRows } from '../fixtures/tenant-rows.ts';

// biome-ignore lint/suspicious/noExplicitAny: reads tables of several areas' schemas
type AnyDb = Kysely<any>;

const PADDED = ' acme';
const dir = mkdtempSync(join(tmpdir(), 'maos-cli-irregular-tenant-'));
const config = join(dir, 'maos.json');

async function withStore<T>(fn: (db: AnyDb) => Promise<T>): Promise<T> {
  const handle = createDatabase(loadConfig({ configPath: config }));
  try {
    return await fn(handle.db as AnyDb);
  } finally {
    await handle.close();
  }
}

function assertUsage(result: { code: number | null; stderr: string }, message: RegExp): void {
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /^error USAGE: /m);
  assert.match(result.stderr, message);
}

describe('a tenant stored under a padded id', { timeout: 120_000 }, () => {
  before(async () => {
    writeFileSync(config, JSON.stringify({ dataDir: join(dir, 'data'), logLevel: 'silent' }));
    const migrated = await runMaos(['migrate', '--config', config]);
    assert.equal(migrated.code, 0, migrated.stderr);
    await withStore(async (db) => {
      await seedTenantRows(db, PADDED);
      await seedTenantRows(db, 'acme');
    });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('is exported by its exact id; a padded id no tenant has is refused, naming the rule', async () => {
    const output = join(dir, 'padded.tar');
    const exported = await runMaos(['tenants', 'export', PADDED, '--output', output, '--config', config]);
    assert.equal(exported.code, 0, exported.stderr);
    assert.ok(statSync(output).size > 0);

    const unknown = join(dir, 'unknown.tar');
    assertUsage(
      await runMaos(['tenants', 'export', 'acme ', '--output', unknown, '--config', config]),
      /the tenant "acme " must not start or end with spaces \(no tenant of exactly that id is stored\)/,
    );
    assert.equal(existsSync(unknown), false);
  });

  test('its keys are listed and its audit records exported; no key can be created under its id', async () => {
    const listed = await runMaos(['keys', 'list', '--tenant', PADDED, '--json', '--config', config]);
    assert.equal(listed.code, 0, listed.stderr);
    const listedOf = JSON.parse(listed.stdout) as { tenant: string; items: unknown[] };
    assert.equal(listedOf.tenant, PADDED);
    assert.ok(listedOf.items.length > 0, listed.stdout);

    const records = await runMaos(['audit', 'export', '--tenant', PADDED, '--config', config]);
    assert.equal(records.code, 0, records.stderr);
    assert.notEqual(records.stdout.trim(), '', 'its audit records');
    assertUsage(
      await runMaos(['audit', 'export', '--tenant', 'ac\tme', '--config', config]),
      /--tenant "ac\\x09me" must not contain control characters/,
    );

    assertUsage(
      await runMaos(['keys', 'create', '--tenant', PADDED, '--role', 'viewer', '--config', config]),
      /--tenant " acme" must not start or end with spaces/,
    );
  });

  test('is erased by its exact id, and the tenant it reads like keeps everything', async () => {
    const before = await withStore((db) => countTenantRows(db, 'acme'));
    const purged = await runMaos(['tenants', 'purge', PADDED, '--yes', '--json', '--config', config]);
    assert.equal(purged.code, 0, purged.stderr);
    assert.equal((JSON.parse(purged.stdout) as { tenant: string }).tenant, PADDED);
    const left = await withStore((db) => countTenantRows(db, PADDED));
    for (const table of TENANT_TABLES) assert.equal(left[table.name], 0, table.name);
    assert.deepEqual(await withStore((db) => countTenantRows(db, 'acme')), before);
  });
});
