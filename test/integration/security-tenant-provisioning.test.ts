// A principal of a tenant MAOS has never seen (an API key created for a new tenant, an OIDC tenant
// claim) can work at once: its tenant row is created on first use, and tenants stay isolated.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

describe('tenants are provisioned on first authenticated use', () => {
  let server: TestServer;
  const keys: Record<string, string> = {};

  before(async () => {
    server = await startTestServer({ config: { auth: { mode: 'apikey' } } });
    const db = server.app.database.db as unknown as SecurityDb;
    for (const tenantId of ['acme', 'globex']) {
      const { key } = await createApiKey(db, {
        tenantId,
        name: 'dev',
        roles: ['developer'],
        createdBy: 'test',
      });
      keys[tenantId] = key;
    }
  });

  after(() => server.close());

  const as = (tenant: string) => ({ authorization: `Bearer ${keys[tenant]}` });

  test('a new tenant creates and runs a session, and only it can see it', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: as('acme'),
      body: {
        objective: 'first work of a new tenant',
        agents: [{ role: 'qa', task: 'check', runner: 'ok' }],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const status = async () =>
      (
        await requestJson<{ status: string }>(`${server.url}/v1/sessions/${created.body.id}`, {
          headers: as('acme'),
        })
      ).body.status;
    const deadline = Date.now() + 20_000;
    while (!['completed', 'failed'].includes(await status()) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(await status(), 'completed');
    const foreign = await requestJson(`${server.url}/v1/sessions/${created.body.id}`, {
      headers: as('globex'),
    });
    assert.equal(foreign.status, 404);
    const list = await requestJson<{ items: unknown[] }>(`${server.url}/v1/sessions`, {
      headers: as('globex'),
    });
    assert.equal(list.status, 200);
    assert.equal(list.body.items.length, 0);
  });

  test('the tenant row exists once, however many requests raced to create it', async () => {
    await Promise.all(
      Array.from({ length: 5 }, () => requestJson(`${server.url}/v1/sessions`, { headers: as('globex') })),
    );
    const rows = await server.app.database.db
      .selectFrom('tenants')
      .select('id')
      .where('id', 'in', ['acme', 'globex'])
      .execute();
    assert.deepEqual(rows.map((row) => row.id).sort(), ['acme', 'globex']);
  });
});
