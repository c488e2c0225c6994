// A tenant purged (store/tenant-purge.ts) while a server runs, on SQLite and PostgreSQL: a user of
// that tenant who still gets in (an OIDC token its identity provider still issues) starts afresh on
// the tenant row the purge kept, or on a new one if the row was deleted all the same (by hand, or by
// an older version's purge): its next session is created (201). The same holds for the tenant of
// auth mode none, and role bindings stored without a tenant row (a tenant purged by a version that
// deleted the row, or granted ahead) apply on its first request, which creates the row.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { purgeTenant } from '../../src/store/tenant-purge.ts';
import {
  CLIENT_ID,
  startTestOidcProvider,
  TEST_AUDIENCE,
  type TestOidcProvider,
} from '../fixtures/oidc-provider.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

const SESSION = {
  objective: 'Say hello',
  agents: [{ name: 'hello', role: 'engineer', task: 'say hello', runner: 'ok' }],
};

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`a tenant purged under a running server (${backend})`, { timeout: 120_000 }, () => {
    let idp: TestOidcProvider;
    let server: TestServer;
    let database: TestDatabase | undefined;

    before(async () => {
      idp = await startTestOidcProvider();
      database = backend === 'postgres' ? await createTestDatabase() : undefined;
      server = await startTestServer({
        config: {
          auth: { mode: 'oidc', oidc: { issuer: idp.issuer, audience: TEST_AUDIENCE } },
          // Sessions stay pending: nothing runs that could write for the tenant meanwhile.
          workers: { concurrency: 0 },
          ...(database ? { store: { url: database.url } } : {}),
        },
      });
    });
    after(async () => {
      await server?.close();
      await database?.drop();
      await idp?.close();
    });

    const submit = async (token: string) =>
      requestJson<{ id: string; code?: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: SESSION,
      });

    test('the next request of the purged tenant creates its session', async () => {
      const token = await idp.getToken({ claims: { tenant_id: 'acme', roles: ['operator'] } });
      // The server serves the tenant (its row created on the first request), the tenant has no
      // unfinished session left (the purge would refuse), then the purge erases it but its row.
      const me = await requestJson<{ tenant: string }>(`${server.url}/v1/me`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(me.status, 200, JSON.stringify(me.body));
      const deleted = await purgeTenant(server.app.database.db, 'acme');
      assert.equal(deleted.tenants, undefined, 'the tenant row is kept');
      // A row gone all the same (deleted by hand, or by an older version's purge) is created again:
      // the server keeps no memory of the tenants it has seen.
      await server.app.database.db.deleteFrom('tenants').where('id', '=', 'acme').execute();

      const created = await submit(token);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const again = await submit(token);
      assert.equal(again.status, 201, JSON.stringify(again.body));
      const tenants = await server.app.database.db
        .selectFrom('tenants')
        .select('id')
        .where('id', '=', 'acme')
        .execute();
      assert.equal(tenants.length, 1);
    });

    test('role bindings stored before the tenant row hold from its first request', async () => {
      // A binding has no foreign key to the tenant (granted ahead, or left by an older purge).
      await (server.app.database.db as unknown as SecurityDb)
        .insertInto('role_bindings')
        .values({
          tenant_id: 'initech',
          principal_id: CLIENT_ID,
          role: 'operator',
          created_at: new Date().toISOString(),
          created_by: 'test',
        })
        .execute();
      const token = await idp.getToken({ claims: { tenant_id: 'initech' } });
      const created = await submit(token);
      assert.equal(created.status, 201, JSON.stringify(created.body));
    });
  });
}

describe('the tenant of auth mode none purged under a running server', { timeout: 60_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ config: { workers: { concurrency: 0 } } });
  });
  after(async () => {
    await server?.close();
  });

  test('the next request creates its session', async () => {
    assert.equal((await requestJson(`${server.url}/v1/me`)).status, 200);
    const renamed = { tenant: false };
    assert.equal((await purgeTenant(server.app.database.db, 'default', { renamed })).tenants, undefined);
    // Its migration named it `Default`: the purge leaves nothing but the id.
    assert.equal(renamed.tenant, true);
    // Deleted all the same (by hand): the next request creates it again.
    await server.app.database.db.deleteFrom('tenants').where('id', '=', 'default').execute();
    const created = await requestJson(`${server.url}/v1/sessions`, { method: 'POST', body: SESSION });
    assert.equal(created.status, 201, JSON.stringify(created.body));
  });
});
