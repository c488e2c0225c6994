// The observer and actor.client_id of audit records on the real server, SQLite and PostgreSQL
// (PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts): a request's record
// names the API key as its client and this process as its observer, GET /v1/audit answers them as
// its served document declares, and a record stored before they existed lists them as null and
// still proves against the signed checkpoint (`maos audit prove`, SQLite).
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { test } from 'node:test';
import type { AuditCheckpointDto, AuditRecordDto } from '../../src/http/routes/audit.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import {
  buildAuditRecord,
  computeChainHash,
  GENESIS_HASH,
  indexedColumnsOf,
} from '../../src/security/audit/audit-record.ts';
import { readDatabaseEntries } from '../../src/security/audit/audit-source.ts';
import { canonicalize } from '../../src/security/audit/canonical-json.ts';
import { parseVerifierKey } from '../../src/security/audit/checkpoint.ts';
import { nodePseudonym } from '../../src/security/audit/observer-node.ts';
import { verifyAuditEntries } from '../../src/security/audit/verify.ts';
import { loadAuditSigner } from '../../src/security/create-security.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { VERSION } from '../../src/version.ts';
import { runMaos } from '../fixtures/cli.ts';
import {
  CONFORMANCE_STORES,
  createConformanceStore,
  expectStatus,
  fetchOpenApiDocument,
} from '../fixtures/openapi-conformance.ts';
import { createOpenApiRecorder } from '../fixtures/openapi-recorder.ts';
import { startTestServer } from '../fixtures/server.ts';

for (const store of CONFORMANCE_STORES) {
  test(`audit records name their observer and client; older ones without them still prove (${store})`, {
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
    const log = server.app.security.auditLog;

    // A record as an earlier version stored it, linked to the chain's head: no client_id, no observer.
    const head = await db
      .selectFrom('audit_log')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    const oldSeq = head ? Number(head.seq) + 1 : 0;
    const prevHash = head?.hash ?? GENESIS_HASH;
    const { observer: _observer, ...written } = buildAuditRecord(
      {
        action: 'sessions:create',
        actor: {
          type: 'service',
          id: 'key:old',
          tenant: 'acme',
          ip: null,
          user_agent: null,
          auth_method: 'apikey',
        },
        target: { type: 'sessions', id: null, tenant: 'acme' },
        outcome: 'success',
      },
      {
        seq: oldSeq,
        id: '0190a000-0000-7000-8000-0000000000aa',
        time: '2026-01-01T00:00:00.000Z',
        observer: { service: 'maos', version: VERSION, node: 'maos-0' },
      },
    );
    const { client_id: _client, ...oldActor } = written.actor;
    const oldText = canonicalize({ ...written, actor: oldActor });
    await db
      .insertInto('audit_log')
      .values({
        seq: oldSeq,
        id: written.id,
        time: written.time,
        ...indexedColumnsOf(written),
        event: oldText,
        prev_hash: prevHash,
        hash: computeChainHash(prevHash, oldText),
      })
      .execute();

    const mint = async (roles: string[]) =>
      createApiKey(db, { tenantId: 'acme', name: `k-${roles[0]}`, roles, createdBy: 'test' });
    const auditor = await mint(['auditor']);
    const viewer = await mint(['viewer']);
    const api = createOpenApiRecorder(server.url, await fetchOpenApiDocument(server.url), {
      authorization: `Bearer ${auditor.key}`,
    });
    // A denial is audited with the caller's principal.
    expectStatus(
      await api.call('GET', '/v1/audit', { headers: { authorization: `Bearer ${viewer.key}` } }),
      403,
      'PERMISSION_DENIED',
    );
    const page = await api.call('GET', '/v1/audit?limit=100');
    expectStatus(page, 200);
    assert.deepEqual(api.violations, [], 'GET /v1/audit answers as its document declares');
    const items = (page.body as { items: AuditRecordDto[] }).items;
    const denial = items.find((record) => record.action === 'audit:read' && record.outcome === 'failure');
    assert.ok(denial, JSON.stringify(items));
    assert.equal(denial.actor.id, `key:${viewer.info.id}`);
    assert.equal(denial.actor.client_id, viewer.info.id, 'an API key is its own client');
    // The default names the node by a pseudonym (test/integration/audit-observer-node.test.ts).
    assert.deepEqual(denial.observer, {
      service: 'maos',
      version: VERSION,
      node: nodePseudonym(hostname(), loadAuditSigner(server.app.config).privateKey),
    });
    const old = items.find((record) => record.seq === oldSeq);
    assert.deepEqual(
      [old?.actor.client_id, old?.observer],
      [null, null],
      'an older record lists them as null',
    );

    // The old record still verifies in the chain and against a signed checkpoint.
    const checkpoint = await log.writeCheckpoint();
    assert.ok(checkpoint);
    const served = await api.call('GET', '/v1/audit/checkpoint');
    const verifierKey = (served.body as AuditCheckpointDto).verifierKey;
    const report = await verifyAuditEntries(readDatabaseEntries(db), {
      checkpoints: [checkpoint.note],
      verifier: parseVerifierKey(verifierKey),
    });
    assert.deepEqual([report.ok, report.problems], [true, []]);
    if (store !== 'sqlite') return;
    // And proves from outside, as listed: the old record and the new one.
    const proved = await runMaos(
      ['audit', 'prove', '--key', verifierKey, '--seq', String(oldSeq), '--seq', String(denial.seq)],
      { env: { MAOS_SERVER: server.url, MAOS_TOKEN: auditor.key } },
    );
    assert.equal(proved.code, 0, proved.stderr + proved.stdout);
    assert.match(proved.stdout, /OK: the log holds what was signed/);
  });
}
