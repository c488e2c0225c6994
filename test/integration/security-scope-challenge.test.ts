// The 403 `insufficient_scope` challenge names the scope to ask the identity provider for
// (RFC 6750 §3) when MAOS reads roles from the token's scopes, and nothing when asking cannot help
// (API keys, roles from another claim). Real Fastify server, real SQLite, real OpenID provider.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { Security } from '../../src/security/create-security.ts';
import { createTestSecurityDb, type TestSecurityDb } from '../../src/security/test-support.ts';
import { startTestOidcProvider, TEST_AUDIENCE, type TestOidcProvider } from '../fixtures/oidc-provider.ts';
import { buildSecurityTestApp } from '../fixtures/security-app.ts';

const validSession = { objective: 'Ship it', agents: [{ role: 'qa', task: 'test it', runner: 'ok' }] };

describe('403 insufficient_scope challenge', { timeout: 120_000 }, () => {
  let t: TestSecurityDb;
  let idp: TestOidcProvider;
  /** Roles from the token's `scope`, through IdP scope names (rolesClaim: scope). */
  let scoped: { app: FastifyInstance; security: Security };
  /** Roles from the `roles` claim (the default). */
  let claimed: { app: FastifyInstance; security: Security };
  let viewerKey = '';

  const call = (app: FastifyInstance, options: InjectOptions & { token: string }) => {
    const { token, ...rest } = options;
    return app.inject({ ...rest, headers: { authorization: `Bearer ${token}` } });
  };

  before(async () => {
    t = await createTestSecurityDb();
    idp = await startTestOidcProvider();
    const oidc = { issuer: idp.issuer, audience: TEST_AUDIENCE, defaultTenant: 'acme' };
    scoped = await buildSecurityTestApp(t, {
      auth: {
        mode: 'both',
        oidc: {
          ...oidc,
          rolesClaim: 'scope',
          roleMapping: { 'sessions:read': ['viewer'], 'sessions:write': ['developer'] },
        },
      },
    });
    claimed = await buildSecurityTestApp(t, { auth: { mode: 'both', oidc } });
    viewerKey = (
      await createApiKey(t.db, { tenantId: 'acme', name: 'v', roles: ['viewer'], createdBy: 'test' })
    ).key;
  });
  after(async () => {
    for (const built of [scoped, claimed]) {
      await built?.app.close();
      await built?.security.close();
    }
    await idp.close();
    await t.cleanup();
  });

  test('names the IdP scope that grants the permission, and a token with it gets through', async () => {
    const readOnly = await idp.getToken({ scope: 'sessions:read' });
    const denied = await call(scoped.app, {
      method: 'POST',
      url: '/v1/sessions',
      token: readOnly,
      payload: validSession,
    });
    assert.equal(denied.statusCode, 403);
    assert.equal(denied.json().code, 'PERMISSION_DENIED');
    assert.equal(
      denied.headers['www-authenticate'],
      'Bearer realm="maos", error="insufficient_scope", error_description="requires sessions:create", scope="sessions:write"',
    );
    // What an MCP client does with it (step-up): ask the IdP for that scope too, and retry.
    const steppedUp = await idp.getToken({ scope: 'sessions:read sessions:write' });
    const created = await call(scoped.app, {
      method: 'POST',
      url: '/v1/sessions',
      token: steppedUp,
      payload: validSession,
    });
    assert.equal(created.statusCode, 201, created.body);
  });

  test('a permission no mapped name grants is asked for by the narrowest built-in role name', async () => {
    // audit:read: only `auditor` (and `admin`, which grants more) has it.
    const token = await idp.getToken({ scope: 'sessions:read sessions:write' });
    const denied = await call(scoped.app, { method: 'GET', url: '/v1/audit', token });
    assert.equal(denied.statusCode, 403);
    assert.equal(
      denied.headers['www-authenticate'],
      'Bearer realm="maos", error="insufficient_scope", error_description="requires audit:read", scope="auditor"',
    );
  });

  test('an API key gets no scope: it has none to ask for', async () => {
    const denied = await call(scoped.app, {
      method: 'POST',
      url: '/v1/sessions',
      token: viewerKey,
      payload: validSession,
    });
    assert.equal(denied.statusCode, 403);
    assert.equal(
      denied.headers['www-authenticate'],
      'Bearer realm="maos", error="insufficient_scope", error_description="requires sessions:create"',
    );
  });

  test('roles from a claim that is not the scope: no scope, since asking for one cannot help', async () => {
    const token = await idp.getToken({ claims: { roles: ['viewer'] } });
    assert.equal((await call(claimed.app, { method: 'GET', url: '/v1/roles', token })).statusCode, 200);
    const denied = await call(claimed.app, {
      method: 'POST',
      url: '/v1/sessions',
      token,
      payload: validSession,
    });
    assert.equal(denied.statusCode, 403);
    assert.equal(
      denied.headers['www-authenticate'],
      'Bearer realm="maos", error="insufficient_scope", error_description="requires sessions:create"',
    );
  });
});
