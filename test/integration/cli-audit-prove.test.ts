// `maos audit prove` against a real server (SQLite): a record of the tenant, by seq, by id or saved to a
// file, is proved to be in the latest signed checkpoint, and a saved older checkpoint to be its
// start (exit 0, the checkpoint saved for next time); after a raw SQL edit or a cut tail the same
// commands exit 1 naming what they found. Usage: a key is required, a record (by seq or id) not the
// tenant's or not signed yet is refused, an id that is not a UUID too.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sql } from 'kysely';
import type { AuditCheckpointDto, AuditRecordDto } from '../../src/http/routes/audit.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { AuditEventInput } from '../../src/security/audit/audit-record.ts';
import {
  formatVerifierKey,
  generateSigningKeyPem,
  loadCheckpointSigner,
} from '../../src/security/audit/checkpoint.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { runMaos } from '../fixtures/cli.ts';
import { requestJson, startTestServer } from '../fixtures/server.ts';

function event(i: number): AuditEventInput {
  const tenant = i % 2 === 0 ? 'acme' : 'other';
  return {
    action: 'probe.prove',
    actor: { type: 'service', id: `key-${i}`, tenant, ip: null, user_agent: null, auth_method: 'apikey' },
    target: { type: 'session', id: `s-${i}`, tenant },
    outcome: 'success',
  };
}

interface ProveJson {
  ok: boolean;
  checkpoint: { size: number };
  checks: { check: string; ok: boolean; problem: string | null }[];
}

test('maos audit prove: records and a saved checkpoint against the latest, and what tampering shows', {
  timeout: 120_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-audit-prove-'));
  const server = await startTestServer({ config: { auth: { mode: 'apikey' }, workers: { concurrency: 0 } } });
  t.after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const db = server.app.database.db as unknown as SecurityDb;
  const token = (
    await createApiKey(db, { tenantId: 'acme', name: 'auditor', roles: ['auditor'], createdBy: 'test' })
  ).key;
  const log = server.app.security.auditLog;
  for (let i = 0; i < 4; i++) await log.append(event(i));
  const older = await log.writeCheckpoint();
  assert.ok(older);
  const olderFile = join(dir, 'older.txt');
  writeFileSync(olderFile, older.note);
  for (let i = 4; i < 9; i++) await log.append(event(i));
  await log.writeCheckpoint();

  const headers = { authorization: `Bearer ${token}` };
  const checkpoint = (await requestJson<AuditCheckpointDto>(`${server.url}/v1/audit/checkpoint`, { headers }))
    .body;
  const key = checkpoint.verifierKey;
  const records = (
    await requestJson<{ items: AuditRecordDto[] }>(`${server.url}/v1/audit?limit=100`, { headers })
  ).body.items;
  const own = records.filter((record) => record.seq < checkpoint.size).map((record) => record.seq);
  assert.ok(own.length >= 4, 'records of the tenant');
  const savedRecord = join(dir, 'record.json');
  writeFileSync(savedRecord, JSON.stringify(records[1]));

  const env = { MAOS_SERVER: server.url, MAOS_TOKEN: token };
  const prove = (...args: string[]) => runMaos(['audit', 'prove', ...args], { env });
  const latestFile = join(dir, 'latest.txt');

  const proved = await prove(
    '--key',
    key,
    '--seq',
    String(own[0]),
    '--seq',
    String(own[2]),
    '--record',
    savedRecord,
    '--since',
    olderFile,
    '--save-checkpoint',
    latestFile,
  );
  assert.equal(proved.code, 0, proved.stderr + proved.stdout);
  assert.match(proved.stdout, /OK: the log holds what was signed/);
  assert.match(proved.stdout, new RegExp(`ok +since ${older.size} records`));
  assert.equal(readFileSync(latestFile, 'utf8'), checkpoint.note);
  const json = await prove('--key', key, '--seq', String(own[1]), '--since', latestFile, '--json');
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as ProveJson;
  assert.equal(report.ok, true);
  assert.equal(report.checkpoint.size, checkpoint.size);
  assert.deepEqual(
    report.checks.map((check) => check.ok),
    [true, true],
  );

  // By id, as listed or exported (any case): the same record, the same proof.
  const byId = records.find((record) => record.seq === own[2]) as AuditRecordDto;
  const provedById = await prove('--key', key, '--id', byId.id.toUpperCase(), '--json');
  assert.equal(provedById.code, 0, provedById.stderr);
  assert.deepEqual((JSON.parse(provedById.stdout) as ProveJson).checks, [
    { check: `record ${byId.seq}`, ok: true, problem: null },
  ]);

  // Usage and refusals.
  const noKey = await prove('--seq', String(own[0]));
  assert.equal(noKey.code, 2, noKey.stderr);
  assert.match(noKey.stderr, /--key or --key-file is required/);
  assert.equal((await prove('--key', key)).code, 2);
  // Two keys named: one of them was silently not used.
  const keyFile = join(dir, 'verifier.txt');
  writeFileSync(keyFile, key);
  for (const [flag, file] of [
    ['--key', '--key-file'],
    ['--since-key', '--since-key-file'],
  ] as const) {
    const both = await prove('--key', key, '--seq', String(own[0]), flag, key, file, keyFile);
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, new RegExp(`^error USAGE: ${flag} and ${file} cannot be combined`, 'm'));
  }
  const sinceKeyAlone = await prove('--key', key, '--seq', String(own[0]), '--since-key', key);
  assert.equal(sinceKeyAlone.code, 2, sinceKeyAlone.stderr);
  assert.match(
    sinceKeyAlone.stderr,
    /^error USAGE: --since-key is the key of the --since checkpoint: give --since too/m,
  );
  const foreign = await prove('--key', key, '--seq', '1');
  assert.equal(foreign.code, 4, foreign.stderr);
  assert.match(foreign.stderr, /no record with seq 1 among your tenant's audit records/);
  const foreignId = (await log.list({ tenantId: 'other', limit: 1 })).items[0]?.id as string;
  for (const id of [foreignId, '01900000-0000-7000-8000-000000000000']) {
    const unknown = await prove('--key', key, '--id', id);
    assert.equal(unknown.code, 4, unknown.stderr);
    assert.match(unknown.stderr, new RegExp(`no record with id ${id} among your tenant's audit records`));
  }
  // A saved record with a negative seq: the file is not a record (exit 2), not a log that fails its
  // proof (exit 1, "the log does not hold what was signed").
  const negative = join(dir, 'negative.json');
  writeFileSync(negative, JSON.stringify({ ...records[1], seq: -1 }));
  const notARecord = await prove('--key', key, '--record', negative);
  assert.equal(notARecord.code, 2, notARecord.stderr + notARecord.stdout);
  assert.match(notARecord.stderr, /--record .+negative\.json is not an audit record/);
  // A saved record that gives a member twice: JSON.parse keeps the last value (the stored one), a
  // reader of the file may take the first; which record it holds cannot be told, so no proof of it.
  const twice = join(dir, 'twice.json');
  const savedText = JSON.stringify(records[1]);
  assert.ok(savedText.includes('"action":"'));
  writeFileSync(twice, savedText.replace('"action":"', '"action":"keys:revoke","action":"'));
  const twiceProved = await prove('--key', key, '--record', twice);
  assert.equal(twiceProved.code, 1, twiceProved.stderr + twiceProved.stdout);
  assert.match(
    twiceProved.stdout,
    new RegExp(`FAILED +record ${records[1]?.seq}: the saved record gives "action" twice in one object`),
  );
  const badId = await prove('--key', key, '--id', String(own[0]));
  assert.equal(badId.code, 2, badId.stderr);
  assert.match(badId.stderr, /--id "\d+" is not a record id \(a UUID\)/);
  // A --save-checkpoint that cannot be written: a usage error before the server is asked, not an
  // INTERNAL error (exit 7) once the proofs have passed.
  for (const target of [join(dir, 'missing', 'latest.txt'), dir]) {
    const unwritable = await prove('--key', key, '--seq', String(own[0]), '--save-checkpoint', target);
    assert.equal(unwritable.code, 2, unwritable.stderr);
    assert.match(unwritable.stderr, /^error USAGE: cannot write --save-checkpoint .+ \((ENOENT|EISDIR)/m);
  }
  await log.append(event(10));
  const newest = Math.max(
    ...(
      await requestJson<{ items: AuditRecordDto[] }>(`${server.url}/v1/audit?order=desc&limit=1`, { headers })
    ).body.items.map((r) => r.seq),
  );
  const unsigned = await prove('--key', key, '--seq', String(newest));
  assert.equal(unsigned.code, 6, unsigned.stderr);
  assert.match(unsigned.stderr, /newer than the latest checkpoint/);
  const otherKey = formatVerifierKey(loadCheckpointSigner('maos.local/audit', generateSigningKeyPem()));
  const wrongKey = await prove('--key', otherKey, '--seq', String(own[0]));
  assert.equal(wrongKey.code, 1, wrongKey.stderr);
  assert.match(wrongKey.stderr, /does not verify with key/);

  // A record edited in the database: its proof, and the saved checkpoint's, no longer hold.
  const edited = own[1] as number;
  await sql`DROP TRIGGER audit_log_no_update`.execute(db);
  await sql`UPDATE audit_log SET event = replace(event, 'probe.prove', 'probe.other') WHERE seq = ${edited}`.execute(
    db,
  );
  const afterEdit = await prove(
    '--key',
    key,
    '--seq',
    String(edited),
    '--record',
    savedRecord,
    '--since',
    olderFile,
  );
  assert.equal(afterEdit.code, 1, afterEdit.stderr + afterEdit.stdout);
  assert.match(
    afterEdit.stdout,
    new RegExp(`FAILED +record ${edited}: record ${edited} differs from the record the log holds`),
  );
  assert.match(afterEdit.stdout, /FAILED: the log does not hold what was signed/);
  assert.match(afterEdit.stdout, new RegExp(`FAILED +since ${older.size} records`));

  // A cut tail: the server still shows its checkpoint, but cannot prove its size.
  await sql`DROP TRIGGER audit_log_no_delete`.execute(db);
  await sql`DELETE FROM audit_log WHERE seq >= ${older.size + 1}`.execute(db);
  const cut = await prove('--key', key, '--since', olderFile, '--json');
  assert.equal(cut.code, 1, cut.stderr);
  const cutReport = JSON.parse(cut.stdout) as ProveJson;
  assert.match(String(cutReport.checks[0]?.problem), /the server cannot prove it: .*beyond the log/);
});

test('maos audit prove --since across a signing key change: the saved checkpoint verifies with --since-key', {
  timeout: 120_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-audit-prove-rotation-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const config = (pem: string) => ({
    auth: { mode: 'apikey' },
    workers: { concurrency: 0 },
    audit: { signingKey: pem },
  });
  // Signed with the first key, saved by the auditor.
  const first = await startTestServer({ config: config(generateSigningKeyPem()), dataDir });
  const db = first.app.database.db as unknown as SecurityDb;
  const token = (
    await createApiKey(db, { tenantId: 'acme', name: 'auditor', roles: ['auditor'], createdBy: 'test' })
  ).key;
  const headers = { authorization: `Bearer ${token}` };
  for (let i = 0; i < 4; i++) await first.app.security.auditLog.append(event(i));
  assert.ok(await first.app.security.auditLog.writeCheckpoint());
  const before = (await requestJson<AuditCheckpointDto>(`${first.url}/v1/audit/checkpoint`, { headers }))
    .body;
  const olderFile = join(dir, 'seen.txt');
  writeFileSync(olderFile, before.note as string);
  await first.close();

  // The key is changed; the log goes on and the new key signs it.
  const second = await startTestServer({ config: config(generateSigningKeyPem()), dataDir });
  t.after(() => second.close());
  for (let i = 4; i < 9; i++) await second.app.security.auditLog.append(event(i));
  assert.ok(await second.app.security.auditLog.writeCheckpoint());
  const after = (await requestJson<AuditCheckpointDto>(`${second.url}/v1/audit/checkpoint`, { headers }))
    .body;
  assert.notEqual(after.verifierKey, before.verifierKey);

  const prove = (...args: string[]) =>
    runMaos(['audit', 'prove', '--key', after.verifierKey, '--since', olderFile, ...args], {
      env: { MAOS_SERVER: second.url, MAOS_TOKEN: token },
    });
  const withoutOldKey = await prove();
  assert.equal(withoutOldKey.code, 1, withoutOldKey.stderr);
  assert.match(withoutOldKey.stderr, /--since .* does not verify with key .*: .*--since-key/);
  const proved = await prove('--since-key', before.verifierKey);
  assert.equal(proved.code, 0, proved.stderr + proved.stdout);
  assert.match(proved.stdout, /ok +since 4 records/);
  const keyFile = join(dir, 'old-key.txt');
  writeFileSync(keyFile, `${before.verifierKey}\n`);
  assert.equal((await prove('--since-key-file', keyFile)).code, 0);
  // Only the saved checkpoint takes the old key: the latest must verify with --key.
  const swapped = await runMaos(
    ['audit', 'prove', '--key', before.verifierKey, '--since', olderFile, '--since-key', before.verifierKey],
    { env: { MAOS_SERVER: second.url, MAOS_TOKEN: token } },
  );
  assert.equal(swapped.code, 1, swapped.stderr);
  assert.match(swapped.stderr, /the latest checkpoint of the server does not verify/);
});
