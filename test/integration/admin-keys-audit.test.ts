// The audit records of API-key changes over HTTP name the key by its id, whichever way the request
// named it: a revocation by prefix (in any case) is found under the same target id as the key's
// creation, as the CLI's records are; a revocation of an unknown key names what was asked.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AuditRecordDto } from '../../src/http/routes/audit.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

describe('audit records of API-key changes', () => {
  let server: TestServer;
  let headers: Record<string, string>;
  before(async () => {
    server = await startTestServer({ config: { auth: { mode: 'apikey' }, workers: { concurrency: 0 } } });
    const db = server.app.database.db as unknown as SecurityDb;
    const admin = await createApiKey(db, {
      tenantId: 'acme',
      name: 'admin',
      roles: ['admin'],
      createdBy: 'test',
    });
    headers = { authorization: `Bearer ${admin.key}` };
  });
  after(async () => server?.close());

  const recordOf = async (requestId: string | null, action = 'keys:revoke') => {
    const page = await requestJson<{ items: AuditRecordDto[] }>(
      `${server.url}/v1/audit?action=${action}&order=desc&limit=10`,
      { headers },
    );
    const record = page.body.items.find((item) => item.request_id === requestId);
    assert.ok(record, `a record of request ${requestId}`);
    return record;
  };

  test('a revocation by prefix is recorded under the key id, as its creation is', async () => {
    const created = await requestJson<{ id: string; prefix: string }>(`${server.url}/v1/admin/keys`, {
      method: 'POST',
      headers,
      body: { name: 'ci', roles: ['viewer'] },
    });
    assert.equal(created.status, 201);
    assert.equal(
      (await recordOf(created.headers.get('x-request-id'), 'keys:create')).target?.id,
      created.body.id,
    );

    for (const named of [created.body.prefix.toUpperCase(), created.body.prefix]) {
      const revoked = await requestJson(`${server.url}/v1/admin/keys/${named}`, {
        method: 'DELETE',
        headers,
      });
      assert.equal(revoked.status, 200);
      const record = await recordOf(revoked.headers.get('x-request-id'));
      assert.deepEqual(record.target, { type: 'keys', id: created.body.id, tenant: 'acme' });
    }
  });

  test('a revocation of an unknown key names what was asked', async () => {
    const refused = await requestJson(`${server.url}/v1/admin/keys/ABCDEF012345`, {
      method: 'DELETE',
      headers,
    });
    assert.equal(refused.status, 404);
    const record = await recordOf(refused.headers.get('x-request-id'));
    assert.equal(record.outcome, 'failure');
    assert.equal(record.target?.id, 'abcdef012345');
  });
});
