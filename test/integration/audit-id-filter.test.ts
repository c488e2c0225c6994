// GET /v1/audit?id=: the caller's tenant's record with that id (one item, or none for another
// tenant's record or an unknown id), the id in any case, other filters still applied, a value that
// is not a UUID 400 VALIDATION_FAILED naming `id`; on SQLite and PostgreSQL (PostgreSQL needs
// --test-global-setup=test/fixtures/postgres-global-setup.ts), the unique index on `id` serving it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompiledQuery } from 'kysely';
import type { AuditRecordDto } from '../../src/http/routes/audit.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { AuditEventInput } from '../../src/security/audit/audit-record.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { CONFORMANCE_STORES, createConformanceStore } from '../fixtures/openapi-conformance.ts';
import { requestJson, startTestServer } from '../fixtures/server.ts';

function event(tenant: string, i: number): AuditEventInput {
  return {
    action: 'probe.id',
    actor: { type: 'service', id: `key-${i}`, tenant, ip: null, user_agent: null, auth_method: 'apikey' },
    target: { type: 'session', id: `s-${i}`, tenant },
    outcome: 'success',
    request_id: `req-${i}`,
  };
}

interface Page {
  items: AuditRecordDto[];
  nextCursor: string | null;
}

interface Problem {
  code: string;
  detail: string;
  details?: { path: string }[];
}

for (const store of CONFORMANCE_STORES) {
  test(`GET /v1/audit?id= finds one record of the tenant (${store})`, { timeout: 120_000 }, async (t) => {
    const database = await createConformanceStore(store);
    const server = await startTestServer({
      config: { ...database.config, auth: { mode: 'apikey' }, workers: { concurrency: 0 } },
    });
    t.after(async () => {
      await server.close();
      await database.drop();
    });
    const db = server.app.database.db as unknown as SecurityDb;
    const key = async (tenantId: string) =>
      (await createApiKey(db, { tenantId, name: 'auditor', roles: ['auditor'], createdBy: 'test' })).key;
    const acme = { authorization: `Bearer ${await key('acme')}` };
    const get = <T>(path: string, headers: Record<string, string> = acme) =>
      requestJson<T>(`${server.url}${path}`, { headers });

    const log = server.app.security.auditLog;
    const own = [];
    for (let i = 0; i < 4; i++) own.push(await log.append(event('acme', i)));
    const foreign = await log.append(event('other', 9));
    const wanted = own[2]!;

    const listed = await get<Page>('/v1/audit?action=probe.id&limit=100');
    const asListed = listed.body.items.find((record) => record.id === wanted.id);
    assert.ok(asListed);
    const found = await get<Page>(`/v1/audit?id=${wanted.id}`);
    assert.equal(found.status, 200, JSON.stringify(found.body));
    assert.deepEqual(found.body, { items: [asListed], nextCursor: null });
    assert.deepEqual((await get<Page>(`/v1/audit?id=${wanted.id.toUpperCase()}`)).body.items, [asListed]);
    // Other filters and the order still apply.
    assert.deepEqual(
      (await get<Page>(`/v1/audit?id=${wanted.id}&action=probe.id&order=desc&limit=1`)).body.items,
      [asListed],
    );
    assert.deepEqual((await get<Page>(`/v1/audit?id=${wanted.id}&outcome=failure`)).body.items, []);

    // Another tenant's record is not the caller's to see, as an unknown id; that tenant sees it.
    for (const id of [foreign.id, '01900000-0000-7000-8000-000000000000']) {
      const none = await get<Page>(`/v1/audit?id=${id}`);
      assert.equal(none.status, 200);
      assert.deepEqual(none.body, { items: [], nextCursor: null }, id);
    }
    const other = { authorization: `Bearer ${await key('other')}` };
    assert.deepEqual(
      (await get<Page>(`/v1/audit?id=${foreign.id}`, other)).body.items.map((record) => record.seq),
      [foreign.seq],
    );

    for (const bad of ['nope', String(wanted.seq), `${wanted.id}0`, '']) {
      const answer = await get<Problem>(`/v1/audit?id=${encodeURIComponent(bad)}`);
      assert.equal(answer.status, 400, `${bad}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.code, 'VALIDATION_FAILED', bad);
      assert.equal(answer.body.details?.[0]?.path, '/id', bad);
    }

    if (store === 'sqlite') {
      // The statement list() runs for `?id=`: the unique index on id, not a walk of the tenant's.
      const compiled = db
        .selectFrom('audit_log')
        .select(['seq', 'event'])
        .orderBy('seq', 'asc')
        .where('tenant_id', '=', 'acme')
        .where('id', '=', wanted.id)
        .limit(2)
        .compile();
      const plan = await db.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]),
      );
      const details = plan.rows.map((row) => row.detail).join('\n');
      assert.match(details, /USING INDEX sqlite_autoindex_audit_log_\d \(id=\?\)/);
    }
  });
}
