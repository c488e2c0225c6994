// A restore rolls the audit log back to the backup. The checkpoint files signed after the backup
// (over more records) are moved aside by `maos restore`, so `maos audit verify` on the restored
// data directory passes instead of reporting a truncated tail (and, once the server appends again,
// rewritten history) for good; the moved files stay as the evidence of the rollback.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createAuditLog } from '../../src/security/audit/audit-log.ts';
import {
  formatVerifierKey,
  generateSigningKeyPem,
  loadCheckpointSigner,
} from '../../src/security/audit/checkpoint.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { serviceAuditEvent } from '../fixtures/audit-records.ts';
import { runMaos } from '../fixtures/cli.ts';

test('restore moves the checkpoints signed after the backup aside, and the restored log verifies', {
  timeout: 120_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-restore-audit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const checkpointDir = join(dataDir, 'audit-checkpoints');
  const signer = loadCheckpointSigner('test/audit', generateSigningKeyPem());
  const config = join(dir, 'maos.json');
  writeFileSync(config, JSON.stringify({ dataDir, port: 0 }));

  /** Appends `count` records and closes the log, which signs a checkpoint over all of them. */
  async function appendRecords(count: number, from: number): Promise<void> {
    const handle = createDatabase({ dataDir, store: { synchronous: 'normal', busyTimeoutMs: 5000 } });
    await migrateToLatest(handle.db);
    const audit = createAuditLog({
      db: handle.db as unknown as SecurityDb,
      origin: 'test/audit',
      signer,
      checkpointDir,
    });
    for (let i = from; i < from + count; i += 1) {
      await audit.append(serviceAuditEvent(i));
    }
    await audit.close();
    await handle.close();
  }
  const verify = () => runMaos(['audit', 'verify', '--config', config, '--key', formatVerifierKey(signer)]);

  await appendRecords(3, 0);
  const backup = join(dir, 'backup.db');
  const backedUp = await runMaos(['backup', backup, '--config', config]);
  assert.equal(backedUp.code, 0, backedUp.stderr);
  await appendRecords(2, 3);
  assert.deepEqual(readdirSync(checkpointDir).sort(), [
    'checkpoint-000000000003.txt',
    'checkpoint-000000000005.txt',
  ]);
  assert.equal((await verify()).code, 0, 'the log verifies before the restore');

  const restored = await runMaos(['restore', backup, '--force', '--json', '--config', config]);
  assert.equal(restored.code, 0, restored.stderr);
  const report = JSON.parse(restored.stdout) as {
    audit: { status: string };
    supersededCheckpoints?: { directory: string; files: string[] };
  };
  assert.equal(report.audit.status, 'verified');
  assert.deepEqual(report.supersededCheckpoints?.files, ['checkpoint-000000000005.txt']);
  assert.ok(
    existsSync(join(report.supersededCheckpoints?.directory ?? '', 'checkpoint-000000000005.txt')),
    'kept',
  );
  assert.deepEqual(
    readdirSync(checkpointDir).filter((name) => name.endsWith('.txt')),
    ['checkpoint-000000000003.txt'],
  );

  const after = await verify();
  assert.equal(after.code, 0, `the restored log does not verify:\n${after.stdout}${after.stderr}`);
  assert.match(after.stdout, /intact/);
  // The server appends again from record 3: its checkpoints verify too.
  await appendRecords(4, 100);
  const later = await verify();
  assert.equal(later.code, 0, `${later.stdout}${later.stderr}`);
});

test('a restore drill with the production checkpoint directory leaves the production checkpoints in place', {
  timeout: 120_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-restore-drill-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Production ships its checkpoints to a directory of their own (audit.checkpointDir).
  const checkpointDir = join(dir, 'shipped-checkpoints');
  const production = join(dir, 'production');
  const signer = loadCheckpointSigner('test/audit', generateSigningKeyPem());
  const writeConfig = (name: string, dataDir: string) => {
    const path = join(dir, `${name}.json`);
    writeFileSync(path, JSON.stringify({ dataDir, port: 0, audit: { checkpointDir } }));
    return path;
  };
  const productionConfig = writeConfig('production', production);
  async function appendRecords(count: number, from: number): Promise<void> {
    const handle = createDatabase({
      dataDir: production,
      store: { synchronous: 'normal', busyTimeoutMs: 5000 },
    });
    await migrateToLatest(handle.db);
    const audit = createAuditLog({
      db: handle.db as unknown as SecurityDb,
      origin: 'test/audit',
      signer,
      checkpointDir,
    });
    for (let i = from; i < from + count; i += 1) await audit.append(serviceAuditEvent(i));
    await audit.close();
    await handle.close();
  }
  await appendRecords(3, 0);
  const backup = join(dir, 'backup.db');
  assert.equal((await runMaos(['backup', backup, '--config', productionConfig])).code, 0);
  await appendRecords(2, 3);
  const shipped = ['checkpoint-000000000003.txt', 'checkpoint-000000000005.txt'];
  assert.deepEqual(readdirSync(checkpointDir).sort(), shipped);

  // The drill: the production configuration with another data directory, run twice.
  const drillConfig = writeConfig('drill', join(dir, 'drill'));
  for (const args of [[], ['--force']]) {
    const drill = await runMaos(['restore', backup, ...args, '--json', '--config', drillConfig]);
    assert.equal(drill.code, 0, drill.stderr);
    const report = JSON.parse(drill.stdout) as {
      supersededCheckpoints?: unknown;
      unrelatedCheckpoints?: { directory: string; files: string[] };
    };
    assert.equal(report.supersededCheckpoints, undefined, drill.stdout);
    assert.deepEqual(report.unrelatedCheckpoints, {
      directory: checkpointDir,
      files: ['checkpoint-000000000005.txt'],
    });
    assert.deepEqual(readdirSync(checkpointDir).sort(), shipped, 'production checkpoints moved');
  }
  const verified = await runMaos([
    'audit',
    'verify',
    '--config',
    productionConfig,
    '--key',
    formatVerifierKey(signer),
  ]);
  assert.equal(verified.code, 0, `${verified.stdout}${verified.stderr}`);
});
