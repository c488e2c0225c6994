// The HTTP security layer end to end: real Fastify server (in-process inject), real SQLite, real
// OpenID provider. Route table, role × route matrix from the permission table, tenant isolation,
// RFC 6750 challenges, rate limits, security headers, key administration and the audit trail.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { createApiKey } from '../../src/security/api-keys.ts';
import { readDatabaseCheckpoints, readDatabaseEntries } from '../../src/security/audit/audit-source.ts';
import { parseVerifierKey } from '../../src/security/audit/checkpoint.ts';
import { verifyAuditEntries } from '../../src/security/audit/verify.ts';
import type { Security } from '../../src/security/create-security.ts';
import { BUILT_IN_ROLES, hasPermission, isPermission, type Permission } from '../../src/security/rbac.ts';
import { PLAIN_HTTP_SECURITY_HEADERS } from '../../src/security/security-headers.ts';
import { createTestSecurityDb, type TestSecurityDb } from '../../src/security/test-support.ts';
import { freePort } from '../fixtures/free-port.ts';
import { startTestOidcProvider, TEST_AUDIENCE, type TestOidcProvider } from '../fixtures/oidc-provider.ts';
import { buildSecurityTestApp, type RouteInfo } from '../fixtures/security-app.ts';

const validSession = { objective: 'Ship it', agents: [{ role: 'qa', task: 'test it', runner: 'ok' }] };

async function buildApp(
  t: TestSecurityDb,
  overrides: Record<string, unknown>,
  oidcIssuer: string,
  clock: { offsetMs: number },
) {
  return buildSecurityTestApp(
    t,
    { auth: { mode: 'both', oidc: { issuer: oidcIssuer, audience: TEST_AUDIENCE } }, ...overrides },
    clock,
  );
}

function fillPath(url: string): string {
  return url.replace(/:[A-Za-z]+/g, () => randomUUID());
}

describe('HTTP security layer', { timeout: 120_000 }, () => {
  let t: TestSecurityDb;
  let idp: TestOidcProvider;
  let app: FastifyInstance;
  let security: Security;
  let routes: RouteInfo[];
  const clock = { offsetMs: 0 };
  const keys: Record<string, string> = {};
  let otherTenantAdmin: string;

  const call = (options: InjectOptions & { key?: string }) => {
    const { key, ...rest } = options;
    return app.inject({
      ...rest,
      headers: { ...(rest.headers ?? {}), ...(key ? { authorization: `Bearer ${key}` } : {}) },
    });
  };

  before(async () => {
    t = await createTestSecurityDb();
    idp = await startTestOidcProvider();
    ({ app, security, routes } = await buildApp(t, {}, idp.issuer, clock));
    for (const role of BUILT_IN_ROLES) {
      keys[role] = (
        await createApiKey(t.db, { tenantId: 'acme', name: role, roles: [role], createdBy: 'test' })
      ).key;
    }
    otherTenantAdmin = (
      await createApiKey(t.db, { tenantId: 'globex', name: 'a', roles: ['admin'], createdBy: 'test' })
    ).key;
  });
  after(async () => {
    await app.close();
    await security.close();
    await idp.close();
    await t.cleanup();
  });

  test('route table: every route declares a known permission or is explicitly public', () => {
    assert.ok(routes.length >= 8, `only ${routes.length} routes seen`);
    const unprotected = routes.filter(
      (r) => r.public !== true && !(typeof r.permission === 'string' && isPermission(r.permission)),
    );
    assert.deepEqual(unprotected, []);
    const publicRoutes = routes.filter((r) => r.public === true).map((r) => r.url);
    for (const url of publicRoutes)
      assert.match(
        url,
        /^\/(healthz|readyz|openapi\.json|docs|metrics|\.well-known\/oauth-protected-resource$)/,
        url,
      );
    assert.ok(routes.some((r) => r.url === '/v1/admin/keys' && r.permission === 'keys:manage'));
  });

  test('role × route matrix follows the permission table (403 exactly when not granted)', async () => {
    const guarded = routes.filter((r) => r.public !== true && r.method !== 'HEAD');
    let checked = 0;
    for (const route of guarded) {
      const permission = route.permission as Permission;
      for (const role of BUILT_IN_ROLES) {
        const response = await call({
          method: route.method as 'GET',
          url: fillPath(route.url),
          key: keys[role],
        });
        const where = `${role} ${route.method} ${route.url} → ${response.statusCode}`;
        if (hasPermission([role], permission)) {
          assert.ok(![401, 403].includes(response.statusCode), where);
        } else {
          assert.equal(response.statusCode, 403, where);
          assert.equal(response.json().code, 'PERMISSION_DENIED', where);
          assert.match(String(response.headers['www-authenticate']), /error="insufficient_scope"/);
        }
        checked += 1;
      }
    }
    assert.ok(checked >= guarded.length * BUILT_IN_ROLES.length);
  });

  test('another tenant’s objects are 404, not 403', async () => {
    const created = await call({
      method: 'POST',
      url: '/v1/sessions',
      key: keys.operator,
      payload: validSession,
    });
    assert.equal(created.statusCode, 201, created.body);
    const id = created.json().id as string;
    assert.equal(
      (await call({ method: 'GET', url: `/v1/sessions/${id}`, key: keys.viewer })).statusCode,
      200,
    );
    for (const [method, url] of [
      ['GET', `/v1/sessions/${id}`],
      ['POST', `/v1/sessions/${id}/cancel`],
      ['GET', `/v1/sessions/${id}/events`],
    ] as const) {
      const response = await call({ method, url, key: otherTenantAdmin });
      assert.equal(response.statusCode, 404, `${method} ${url}: ${response.body}`);
    }
    const acmeKeys = await call({ method: 'GET', url: '/v1/admin/keys', key: keys.admin });
    const acmeKeyId = acmeKeys.json().items[0].id as string;
    assert.equal(
      (await call({ method: 'DELETE', url: `/v1/admin/keys/${acmeKeyId}`, key: otherTenantAdmin }))
        .statusCode,
      404,
    );
  });

  test('RFC 6750 challenges: missing, malformed and invalid credentials', async () => {
    const none = await call({ method: 'GET', url: '/v1/roles', headers: { host: 'maos.test:7070' } });
    assert.equal(none.statusCode, 401);
    const metadataUrl = 'http://maos.test:7070/.well-known/oauth-protected-resource';
    assert.equal(none.headers['www-authenticate'], `Bearer realm="maos", resource_metadata="${metadataUrl}"`);
    const metadata = await call({ method: 'GET', url: '/.well-known/oauth-protected-resource' });
    assert.equal(metadata.statusCode, 200);
    assert.deepEqual(metadata.json().authorization_servers, [idp.issuer]);
    assert.equal(metadata.json().resource, TEST_AUDIENCE);
    const forgedHost = await call({ method: 'GET', url: '/v1/roles', headers: { host: 'evil", error="x' } });
    assert.equal(forgedHost.headers['www-authenticate'], 'Bearer realm="maos"');
    assert.match(String(none.headers['content-type']), /problem\+json/);

    const badKey = await call({
      method: 'GET',
      url: '/v1/roles',
      key: `${keys.viewer?.slice(0, -2)}${keys.viewer?.endsWith('xx') ? 'yy' : 'xx'}`,
    });
    assert.equal(badKey.statusCode, 401);
    assert.match(
      String(badKey.headers['www-authenticate']),
      /^Bearer realm="maos", error="invalid_token", error_description="unknown API key", resource_metadata="http:\/\/[^"]+\/\.well-known\/oauth-protected-resource"$/,
    );

    const malformed = await call({
      method: 'GET',
      url: '/v1/roles',
      headers: { authorization: 'Bearer a b c' },
    });
    assert.equal(malformed.statusCode, 400);
    assert.match(
      String(malformed.headers['www-authenticate']),
      /^Bearer realm="maos", error="invalid_request"/,
    );

    const token = await idp.getToken({ claims: { tenant_id: 'acme', roles: ['viewer'] } });
    assert.equal((await call({ method: 'GET', url: '/v1/roles', key: token })).statusCode, 200);
    const viewerCreate = await call({
      method: 'POST',
      url: '/v1/sessions',
      key: token,
      payload: validSession,
    });
    assert.equal(viewerCreate.statusCode, 403);

    const wrongAud = await idp.getToken({
      resource: 'https://other.maos.test',
      claims: { tenant_id: 'acme' },
    });
    const aud = await call({ method: 'GET', url: '/v1/roles', key: wrongAud });
    assert.equal(aud.statusCode, 401);
    assert.match(
      String(aud.headers['www-authenticate']),
      /error="invalid_token", error_description="token audience is not this API"/,
    );

    clock.offsetMs = 3600_000;
    try {
      const expired = await call({ method: 'GET', url: '/v1/roles', key: token });
      assert.equal(expired.statusCode, 401);
      assert.match(
        String(expired.headers['www-authenticate']),
        /^Bearer realm="maos", error="invalid_token", error_description="token expired", resource_metadata="/,
      );
      assert.ok(!expired.body.includes('at Object'), 'no stack trace');
    } finally {
      clock.offsetMs = 0;
    }
  });

  test('security headers on public and protected responses, no X-Powered-By', async () => {
    for (const response of [
      await call({ method: 'GET', url: '/healthz' }),
      await call({ method: 'GET', url: '/v1/roles', key: keys.viewer }),
    ]) {
      // Injected requests come over plain http (the CSP without upgrade-insecure-requests).
      for (const [name, value] of Object.entries(PLAIN_HTTP_SECURITY_HEADERS))
        assert.equal(response.headers[name], value, name);
      assert.equal(response.headers['x-powered-by'], undefined);
    }
  });

  test('key administration: created key works once shown, list hides secrets, revoke is immediate', async () => {
    const created = await call({
      method: 'POST',
      url: '/v1/admin/keys',
      key: keys.admin,
      payload: { name: 'ci', roles: ['viewer'] },
    });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.headers['cache-control'], 'no-store');
    const { key, id } = created.json() as { key: string; id: string };
    assert.equal((await call({ method: 'GET', url: '/v1/roles', key })).statusCode, 200);
    const list = await call({ method: 'GET', url: '/v1/admin/keys', key: keys.admin });
    assert.ok(!list.body.includes(key.slice(18)));
    assert.ok(!list.body.includes('"hash"'));
    assert.equal(
      (await call({ method: 'DELETE', url: `/v1/admin/keys/${id}`, key: keys.admin })).statusCode,
      200,
    );
    const revoked = await call({ method: 'GET', url: '/v1/roles', key });
    assert.equal(revoked.statusCode, 401);
    assert.match(String(revoked.headers['www-authenticate']), /API key revoked/);
    const badRole = await call({
      method: 'POST',
      url: '/v1/admin/keys',
      key: keys.admin,
      payload: { name: 'x', roles: ['root'] },
    });
    assert.equal(badRole.statusCode, 400);
  });

  test('key administration: a key id or prefix sent in upper case revokes the same key', async () => {
    // Ids and prefixes are stored in lower case (UUID, hex): the case sent must not make it a 404.
    const make = async (name: string) => {
      const made = await call({
        method: 'POST',
        url: '/v1/admin/keys',
        key: keys.admin,
        payload: { name, roles: ['viewer'] },
      });
      assert.equal(made.statusCode, 201, made.body);
      return made.json() as { key: string; id: string; prefix: string };
    };
    const byId = await make('upper-id');
    // A prefix with letters, so that its case matters (a prefix of digits only is rare).
    let byPrefix = await make('upper-prefix');
    while (!/[a-f]/.test(byPrefix.prefix)) byPrefix = await make('upper-prefix');
    for (const [made, sent] of [
      [byId, byId.id.toUpperCase()],
      [byPrefix, byPrefix.prefix.toUpperCase()],
    ] as const) {
      const revoked = await call({ method: 'DELETE', url: `/v1/admin/keys/${sent}`, key: keys.admin });
      assert.equal(revoked.statusCode, 200, revoked.body);
      assert.equal((revoked.json() as { id: string }).id, made.id);
      assert.equal((await call({ method: 'GET', url: '/v1/roles', key: made.key })).statusCode, 401);
    }
  });

  test('audit trail: state changes and denials are recorded, tenant-scoped, and the chain verifies', async () => {
    await call({ method: 'POST', url: '/v1/sessions', key: keys.viewer, payload: validSession });
    const made = await call({
      method: 'POST',
      url: '/v1/admin/keys',
      key: keys.admin,
      payload: { name: 'audited', roles: ['viewer'] },
    });
    assert.equal(made.statusCode, 201, made.body);
    const madeId = (made.json() as { id: string }).id;
    assert.equal(made.headers.location, `/v1/admin/keys/${madeId}`);
    const page = await call({ method: 'GET', url: '/v1/audit?limit=100', key: keys.auditor });
    assert.equal(page.statusCode, 200, page.body);
    const items = page.json().items as {
      action: string;
      outcome: string;
      reason: string | null;
      actor: { tenant: string; auth_method: string };
      target: { id: string | null } | null;
    }[];
    assert.ok(items.length > 0);
    assert.ok(items.every((r) => r.actor.tenant === 'acme'));
    assert.ok(items.some((r) => r.action === 'sessions:create' && r.outcome === 'success'));
    assert.ok(
      items.some(
        (r) =>
          r.action === 'sessions:create' &&
          r.outcome === 'failure' &&
          r.reason === 'missing permission sessions:create',
      ),
    );
    assert.ok(items.some((r) => r.action === 'keys:create' && r.outcome === 'success'));
    // A create names the object it made (from its Location header).
    assert.ok(
      items.some((r) => r.action === 'keys:create' && r.target?.id === madeId),
      JSON.stringify(items.filter((r) => r.action === 'keys:create')),
    );
    // login failures have no tenant: visible in the full log (CLI export), not via a tenant's API
    const all = await security.auditLog.list({ limit: 1000 });
    assert.ok(all.items.some((r) => r.actor.type === 'anonymous' && r.reason === 'token expired'));
    assert.equal((await call({ method: 'GET', url: '/v1/audit', key: keys.viewer })).statusCode, 403);
    assert.equal(
      (await call({ method: 'GET', url: '/v1/audit?cursor=zz', key: keys.auditor })).statusCode,
      400,
    );

    await security.auditLog.writeCheckpoint();
    const checkpoint = await call({ method: 'GET', url: '/v1/audit/checkpoint', key: keys.auditor });
    const { verifierKey } = checkpoint.json() as { verifierKey: string };
    const report = await verifyAuditEntries(readDatabaseEntries(t.db), {
      checkpoints: await readDatabaseCheckpoints(t.db),
      verifier: parseVerifierKey(verifierKey),
    });
    assert.equal(report.ok, true, report.problems.join('\n'));
    assert.ok(report.checkpointSize && report.checkpointSize > 0);
  });
});

describe('HTTP rate limits', { timeout: 60_000 }, () => {
  test('the N+1th request is 429 with Retry-After, RateLimit headers and problem+json; it is audited', async () => {
    const t = await createTestSecurityDb();
    const { app, security } = await buildApp(
      t,
      {
        auth: { mode: 'apikey' },
        rateLimit: {
          principal: { points: 3, windowSeconds: 60 },
          anonymous: { points: 2, windowSeconds: 60 },
        },
      },
      `http://127.0.0.1:${await freePort()}`,
      { offsetMs: 0 },
    );
    try {
      const { key } = await createApiKey(t.db, {
        tenantId: 'acme',
        name: 'k',
        roles: ['viewer'],
        createdBy: 't',
      });
      const statuses: number[] = [];
      let last: Awaited<ReturnType<typeof app.inject>> | undefined;
      for (let i = 0; i < 4; i += 1) {
        last = await app.inject({
          method: 'GET',
          url: '/v1/roles',
          headers: { authorization: `Bearer ${key}` },
        });
        statuses.push(last.statusCode);
      }
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      assert.ok(last);
      assert.match(String(last.headers['retry-after']), /^[1-9]\d*$/);
      assert.match(String(last.headers['ratelimit-policy']), /"principal";q=3;w=60/);
      assert.match(String(last.headers.ratelimit), /"principal";r=0;t=\d+/);
      assert.match(String(last.headers['content-type']), /problem\+json/);
      assert.equal(last.json().code, 'RATE_LIMITED');
      // failed logins are throttled per IP
      const failures: number[] = [];
      for (let i = 0; i < 3; i += 1) {
        failures.push(
          (
            await app.inject({
              method: 'GET',
              url: '/v1/roles',
              headers: {
                authorization: 'Bearer maos_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
              },
            })
          ).statusCode,
        );
      }
      assert.deepEqual(failures, [401, 401, 429]);
      const audit = await security.auditLog.list({ limit: 100 });
      assert.ok(audit.items.some((r) => r.reason === 'rate limited'));
    } finally {
      await app.close();
      await security.close();
      await t.cleanup();
    }
  });

  test('an unreachable identity provider is 503 on every request, not charged as failed logins', async () => {
    const t = await createTestSecurityDb();
    // A port just let go: nothing listens, so discovery fails at once.
    const { app, security } = await buildApp(
      t,
      { rateLimit: { anonymous: { points: 2, windowSeconds: 60 } } },
      `http://127.0.0.1:${await freePort()}`,
      { offsetMs: 0 },
    );
    try {
      const inject = (authorization: string) =>
        app.inject({ method: 'GET', url: '/v1/roles', headers: { authorization } });
      const outage: [number, string][] = [];
      for (let i = 0; i < 4; i += 1) {
        const response = await inject('Bearer aaa.bbb.ccc');
        outage.push([response.statusCode, response.json().code]);
        // When the identity provider is asked again: at most DISCOVERY_RETRY_MS (5 s) away, in
        // whole seconds rounded up.
        assert.match(String(response.headers['retry-after']), /^[1-5]$/);
      }
      assert.deepEqual(outage, Array(4).fill([503, 'AUTH_PROVIDER_UNAVAILABLE']));
      // The outage left the per-IP counter untouched: two refused keys still get their 401.
      const failures: number[] = [];
      for (let i = 0; i < 3; i += 1) {
        failures.push((await inject(`Bearer maos_000000000000_${'A'.repeat(43)}`)).statusCode);
      }
      assert.deepEqual(failures, [401, 401, 429]);
    } finally {
      await app.close();
      await security.close();
      await t.cleanup();
    }
  });
});
