// A tenant claim padded with spaces (` acme`) or holding a control character (a tab, a bidirectional
// override) is refused at sign-in with 401 invalid_token, audited with the reason, and no tenant row
// is created: such an id was a tenant of its own that reads like `acme`, which `maos tenants purge`
// and `maos tenants export` then refused to be given. Against a real in-process OpenID provider.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Security } from '../../src/security/create-security.ts';
import type { TenantTables } from '../../src/security/tenant-provisioning.ts';
import { createTestSecurityDb, type TestSecurityDb } from '../../src/security/test-support.ts';
import { startTestOidcProvider, TEST_AUDIENCE, type TestOidcProvider } from '../fixtures/oidc-provider.ts';
import { buildSecurityTestApp } from '../fixtures/security-app.ts';

describe('the tenant claim of an OIDC token', { timeout: 60_000 }, () => {
  let t: TestSecurityDb;
  let idp: TestOidcProvider;
  let app: FastifyInstance;
  let security: Security;

  before(async () => {
    t = await createTestSecurityDb();
    idp = await startTestOidcProvider();
    ({ app, security } = await buildSecurityTestApp(t, {
      auth: { mode: 'oidc', oidc: { issuer: idp.issuer, audience: TEST_AUDIENCE } },
    }));
  });
  after(async () => {
    await app?.close();
    await idp?.close();
    await t?.cleanup();
  });

  const tenantRows = async (id: string) =>
    (
      await (t.db as unknown as Kysely<TenantTables>)
        .selectFrom('tenants')
        .select('id')
        .where('id', '=', id)
        .execute()
    ).length;

  test('padded or with a control character: 401 invalid_token naming the rule, audited, no tenant made', async () => {
    for (const [tenant, rule] of [
      [' acme', 'must not start or end with spaces'],
      ['acme ', 'must not start or end with spaces'],
      ['\u00a0acme', 'must not start or end with spaces'],
      ['ac\tme', 'must not contain control characters'],
      ['acme\u202e', 'must not contain control characters'],
      ['acme\u009b', 'must not contain control characters'],
    ] as const) {
      const where = JSON.stringify(tenant);
      const token = await idp.getToken({ claims: { tenant_id: tenant } });
      const response = await app.inject({
        method: 'GET',
        url: '/v1/roles',
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(response.statusCode, 401, where);
      assert.match(String(response.headers['content-type']), /problem\+json/, where);
      assert.equal(response.json().code, 'INVALID_TOKEN', where);
      assert.match(
        String(response.headers['www-authenticate']),
        new RegExp(`error="invalid_token", error_description="token tenant_id claim ${rule}`),
        where,
      );
      assert.equal(await tenantRows(tenant), 0, `${where}: no tenant row`);
    }
    const audit = await security.auditLog.list({ limit: 100 });
    const reasons = audit.items
      .filter((r) => r.actor.type === 'anonymous' && r.outcome === 'failure')
      .map((r) => r.reason);
    assert.equal(
      reasons.filter((r) => r === 'token tenant_id claim must not start or end with spaces').length,
      3,
      JSON.stringify(reasons),
    );
    assert.equal(
      reasons.filter((r) => r?.startsWith('token tenant_id claim must not contain control characters'))
        .length,
      3,
      JSON.stringify(reasons),
    );
  });

  test('a tenant claim that meets the rule signs in, and its tenant is created', async () => {
    for (const tenant of ['acme', 'Acme Corp', 'ac\u00a0me']) {
      const token = await idp.getToken({ claims: { tenant_id: tenant, roles: ['viewer'] } });
      const response = await app.inject({
        method: 'GET',
        url: '/v1/roles',
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(await tenantRows(tenant), 1, tenant);
    }
  });
});
