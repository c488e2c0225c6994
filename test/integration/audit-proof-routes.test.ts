// GET /v1/audit/proof/inclusion and /v1/audit/proof/consistency on the real server, SQLite and
// PostgreSQL (PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts): the
// proofs verify against the signed checkpoints GET /v1/audit/checkpoint serves (a listed record
// hashing to its leaf), sizes default to the latest checkpoint's, and bad or out-of-range
// parameters are 400 VALIDATION_FAILED naming the parameter; audit:read is required.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import type {
  AuditCheckpointDto,
  AuditConsistencyProofDto,
  AuditInclusionProofDto,
  AuditRecordDto,
} from '../../src/http/routes/audit.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { AuditEventInput } from '../../src/security/audit/audit-record.ts';
import { canonicalize } from '../../src/security/audit/canonical-json.ts';
import { type Checkpoint, openCheckpoint, parseVerifierKey } from '../../src/security/audit/checkpoint.ts';
import { hashLeaf, verifyConsistencyProof, verifyInclusionProof } from '../../src/security/audit/merkle.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { CONFORMANCE_STORES, createConformanceStore } from '../fixtures/openapi-conformance.ts';
import { requestJson, startTestServer } from '../fixtures/server.ts';

function event(i: number): AuditEventInput {
  const tenant = i % 2 === 0 ? 'acme' : 'other';
  return {
    action: 'probe.proof',
    actor: {
      type: 'service',
      id: `key-${i}`,
      tenant,
      ip: null,
      user_agent: 'probe ü',
      auth_method: 'apikey',
    },
    target: { type: 'session', id: `s-${i}`, tenant },
    outcome: 'success',
  };
}

const fromBase64 = (text: string) => Buffer.from(text, 'base64');

interface Problem {
  code: string;
  detail: string;
  details?: { path: string }[];
}

for (const store of CONFORMANCE_STORES) {
  test(`audit proofs over HTTP verify against the signed checkpoints (${store})`, {
    timeout: 120_000,
  }, async (t) => {
    const database = await createConformanceStore(store);
    const server = await startTestServer({
      config: { ...database.config, auth: { mode: 'apikey' }, workers: { concurrency: 0 } },
    });
    t.after(async () => {
      await server.close();
      await database.drop();
    });
    const db = server.app.database.db as unknown as SecurityDb;
    const mint = async (roles: string[]) =>
      (await createApiKey(db, { tenantId: 'acme', name: `k-${roles[0]}`, roles, createdBy: 'test' })).key;
    const auditor = { authorization: `Bearer ${await mint(['auditor'])}` };
    const viewer = { authorization: `Bearer ${await mint(['viewer'])}` };
    const get = <T>(path: string, headers: Record<string, string> = auditor) =>
      requestJson<T>(`${server.url}${path}`, { headers });
    const expectInvalid = async (path: string, parameter: string, detail?: RegExp) => {
      const answer = await get<Problem>(path);
      assert.equal(answer.status, 400, `${path}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.code, 'VALIDATION_FAILED', path);
      assert.equal(answer.body.details?.[0]?.path, `/${parameter}`, path);
      if (detail) assert.match(answer.body.detail, detail, path);
    };
    const log = server.app.security.auditLog;

    // Nothing signed yet: a size must be given, and the log holds nothing to prove.
    await expectInvalid('/v1/audit/proof/inclusion?index=0', 'size', /no checkpoint/);
    await expectInvalid('/v1/audit/proof/consistency?from=1', 'to', /no checkpoint/);
    await expectInvalid('/v1/audit/proof/inclusion?index=0&size=1', 'size', /beyond the log, which holds 0/);

    for (let i = 0; i < 3; i++) await log.append(event(i));
    const older = await log.writeCheckpoint();
    assert.ok(older);
    for (let i = 3; i < 7; i++) await log.append(event(i));
    await log.writeCheckpoint();

    const served = await get<AuditCheckpointDto>('/v1/audit/checkpoint');
    assert.equal(served.status, 200);
    const verifier = parseVerifierKey(served.body.verifierKey);
    const latest = openCheckpoint(served.body.note as string, verifier);
    const first = openCheckpoint(older.note, verifier);
    const size = latest.size;
    assert.ok(size >= 7, `the log holds the records appended (${size})`);

    // Every record: the proof for the default size (the checkpoint's) leads to the signed root.
    const listed = await get<{ items: AuditRecordDto[] }>('/v1/audit?limit=100');
    const ownLeaves = new Map(
      listed.body.items.map((record) => [record.seq, hashLeaf(Buffer.from(canonicalize(record), 'utf8'))]),
    );
    assert.ok(ownLeaves.size >= 4, 'the tenant has records of its own');
    for (let index = 0; index < size; index++) {
      const answer = await get<AuditInclusionProofDto>(`/v1/audit/proof/inclusion?index=${index}`);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.size, size);
      const leaf = fromBase64(answer.body.leafHash);
      const own = ownLeaves.get(index);
      if (own) assert.deepEqual(leaf, own, `record ${index} as listed hashes to its leaf`);
      assert.ok(verifyInclusionProof(leaf, index, size, answer.body.proof.map(fromBase64), latest.root));
      assert.deepEqual(fromBase64(answer.body.rootHash), latest.root);
    }
    // An earlier size, given.
    const early = await get<AuditInclusionProofDto>(`/v1/audit/proof/inclusion?index=1&size=${first.size}`);
    assert.equal(early.body.size, first.size);
    assert.ok(
      verifyInclusionProof(
        fromBase64(early.body.leafHash),
        1,
        first.size,
        early.body.proof.map(fromBase64),
        first.root,
      ),
    );

    const verifyConsistency = async (path: string, older: Checkpoint, newer: Checkpoint) => {
      const answer = await get<AuditConsistencyProofDto>(path);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.deepEqual([answer.body.from, answer.body.to], [older.size, newer.size]);
      assert.deepEqual(fromBase64(answer.body.fromRoot), older.root);
      assert.deepEqual(fromBase64(answer.body.toRoot), newer.root);
      assert.ok(
        verifyConsistencyProof(
          older.size,
          newer.size,
          answer.body.proof.map(fromBase64),
          older.root,
          newer.root,
        ),
      );
    };
    await verifyConsistency(`/v1/audit/proof/consistency?from=${first.size}`, first, latest);
    await verifyConsistency(`/v1/audit/proof/consistency?from=${first.size}&to=${size}`, first, latest);
    await verifyConsistency(`/v1/audit/proof/consistency?from=${size}`, latest, latest);

    // Bad parameters, each named.
    await expectInvalid(
      `/v1/audit/proof/inclusion?index=${size}`,
      'index',
      new RegExp(`less than size \\(${size}\\)`),
    );
    await expectInvalid('/v1/audit/proof/inclusion?index=0&size=1000', 'size', /beyond the log/);
    await expectInvalid('/v1/audit/proof/inclusion?index=-1', 'index');
    await expectInvalid('/v1/audit/proof/inclusion?index=1.5', 'index');
    await expectInvalid('/v1/audit/proof/inclusion?index=0x1', 'index');
    await expectInvalid('/v1/audit/proof/inclusion', 'index');
    await expectInvalid('/v1/audit/proof/consistency?from=0', 'from', /at least 1/);
    await expectInvalid(
      `/v1/audit/proof/consistency?from=${first.size + 1}&to=${first.size}`,
      'from',
      /not be greater than to/,
    );
    await expectInvalid('/v1/audit/proof/consistency?from=1&to=1000', 'to', /beyond the log/);
    await expectInvalid('/v1/audit/proof/consistency', 'from');
    const unknown = await get<Problem>('/v1/audit/proof/consistency?from=1&since=2');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.code, 'VALIDATION_FAILED');

    // audit:read only.
    for (const path of ['/v1/audit/proof/inclusion?index=0', '/v1/audit/proof/consistency?from=1']) {
      assert.equal((await get<Problem>(path, viewer)).body.code, 'PERMISSION_DENIED', path);
      assert.equal((await get<Problem>(path, {})).status, 401, path);
    }
  });
}

// PostgreSQL only: a lock on audit_subtrees, taken from another connection, holds a proof inside its
// computation (it reads the stored block roots) for as long as the test needs, which SQLite, answering
// synchronously, cannot do.
test('one tenant’s auditors hold at most one place in the proof queue: 429 for its next, the other tenant is answered', {
  timeout: 120_000,
}, async (t) => {
  const database = await createConformanceStore('postgres');
  const server = await startTestServer({
    config: { ...database.config, auth: { mode: 'apikey' }, workers: { concurrency: 0 } },
  });
  const locker = new pg.Client({ connectionString: (database.config.store as { url: string }).url });
  t.after(async () => {
    await locker.end().catch(() => undefined);
    await server.close();
    await database.drop();
  });
  const db = server.app.database.db as unknown as SecurityDb;
  await db
    .insertInto('tenants' as never)
    .values({ id: 'other', name: 'other', created_at: 0 } as never)
    .onConflict((conflict) => conflict.doNothing())
    .execute();
  const auditorOf = async (tenantId: string) => ({
    authorization: `Bearer ${(await createApiKey(db, { tenantId, name: `k-${tenantId}`, roles: ['auditor'], createdBy: 'test' })).key}`,
  });
  const acme = await auditorOf('acme');
  const other = await auditorOf('other');
  const log = server.app.security.auditLog;
  // More than a block: a proof reads stored block roots.
  for (let i = 0; i < 1100; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => log.append(event(i + j))));
  }
  const ask = <T>(headers: Record<string, string>, index: number) =>
    requestJson<T>(`${server.url}/v1/audit/proof/inclusion?index=${index}&size=1100`, { headers });

  await locker.connect();
  await locker.query('begin');
  await locker.query('lock table audit_subtrees in access exclusive mode');
  const first = ask<AuditInclusionProofDto>(acme, 1);
  // Until acme's proof waits for the lock: it holds its tenant's place (and the one computed).
  for (;;) {
    const { rows } = await locker.query<{ n: number }>(
      `select count(*)::int as n from pg_locks where relation = 'audit_subtrees'::regclass and not granted`,
    );
    if ((rows[0]?.n ?? 0) > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const refused = await ask<Problem>(acme, 2);
  assert.equal(refused.status, 429, JSON.stringify(refused.body));
  assert.equal(refused.body.code, 'RESOURCE_LIMIT_EXCEEDED');
  assert.match(
    refused.body.detail,
    /^Your tenant has an audit proof being computed or waiting on this server/,
  );
  assert.equal(refused.headers.get('retry-after'), '1');
  // The other tenant's auditor is taken: its proof waits its turn behind acme's.
  const second = ask<AuditInclusionProofDto>(other, 3);
  // Time for it to reach the queue (nothing outside shows that it has) while acme's is held.
  await new Promise((resolve) => setTimeout(resolve, 300));
  await locker.query('commit');
  const answers = await Promise.all([first, second]);
  assert.deepEqual(
    answers.map((answer) => [answer.status, answer.body.index]),
    [
      [200, 1],
      [200, 3],
    ],
  );
  // Answered: acme's auditors may ask again.
  assert.equal((await ask<AuditInclusionProofDto>(acme, 2)).status, 200);
});
