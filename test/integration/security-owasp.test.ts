// OWASP API Security Top 10 (2023): at least one test per item against the real security layer.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { AppError } from '../../src/errors/app-error.ts';
import type { FakeSessionService } from '../../src/http/fake-session-service.test-support.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { Security } from '../../src/security/create-security.ts';
import { createOidcVerifier } from '../../src/security/oidc.ts';
import { PLAIN_HTTP_SECURITY_HEADERS } from '../../src/security/security-headers.ts';
import { assertPublicUrl, fetchPublicUrl } from '../../src/security/ssrf-guard.ts';
import { createTestSecurityDb, type TestSecurityDb } from '../../src/security/test-support.ts';
import { buildSecurityTestApp, type RouteInfo } from '../fixtures/security-app.ts';

const validSession = { objective: 'Ship it', agents: [{ role: 'qa', task: 'test it', runner: 'ok' }] };

describe('OWASP API Security Top 10 (2023)', { timeout: 120_000 }, () => {
  let t: TestSecurityDb;
  let app: FastifyInstance;
  let security: Security;
  let service: FakeSessionService;
  let routes: RouteInfo[];
  const key: Record<string, string> = {};

  const call = (options: InjectOptions & { as?: string }) => {
    const { as, ...rest } = options;
    return app.inject({
      ...rest,
      headers: { ...(rest.headers ?? {}), ...(as ? { authorization: `Bearer ${key[as]}` } : {}) },
    });
  };

  before(async () => {
    t = await createTestSecurityDb();
    ({ app, security, service, routes } = await buildSecurityTestApp(t, {
      auth: { mode: 'apikey' },
      http: { bodyLimitBytes: 4096, maxPageSize: 5 },
      rateLimit: { principal: { points: 40, windowSeconds: 60 } },
      cors: { allowedOrigins: ['https://console.example'] },
    }));
    for (const [name, tenant, role] of [
      ['viewer', 'acme', 'viewer'],
      ['operator', 'acme', 'operator'],
      ['admin', 'acme', 'admin'],
      ['flood', 'acme', 'operator'],
      ['intruder', 'globex', 'admin'],
    ] as const) {
      key[name] = (
        await createApiKey(t.db, { tenantId: tenant, name, roles: [role], createdBy: 'test' })
      ).key;
    }
  });
  after(async () => {
    await app.close();
    await security.close();
    await t.cleanup();
  });

  test('API1 Broken Object Level Authorization: another tenant’s session id is 404 on every route', async () => {
    const created = await call({
      method: 'POST',
      url: '/v1/sessions',
      as: 'operator',
      payload: validSession,
    });
    assert.equal(created.statusCode, 201, created.body);
    const id = created.json().id as string;
    const byId = routes.filter(
      (r) => r.url.includes(':id') && r.url.startsWith('/v1/sessions') && r.method !== 'HEAD',
    );
    assert.ok(byId.length >= 3);
    for (const route of byId) {
      const response = await call({
        method: route.method as 'GET',
        url: route.url.replace(':id', id),
        as: 'intruder',
      });
      assert.equal(response.statusCode, 404, `${route.method} ${route.url}`);
    }
  });

  test('API2 Broken Authentication: forged, truncated and unknown credentials are refused; keys stored hashed', async () => {
    for (const credential of [
      'maos_abc',
      `${key.viewer?.slice(0, -1)}${key.viewer?.endsWith('A') ? 'B' : 'A'}`,
      'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
    ]) {
      const response = await call({
        method: 'GET',
        url: '/v1/roles',
        headers: { authorization: `Bearer ${credential}` },
      });
      assert.equal(response.statusCode, 401, credential);
    }
    const rows = await t.db.selectFrom('api_keys').select(['hash', 'prefix']).execute();
    assert.ok(rows.length >= Object.keys(key).length, 'every key of the test has a row');
    for (const row of rows) assert.match(row.hash, /^[0-9a-f]{64}$/);
    for (const value of Object.values(key)) {
      assert.ok(!rows.some((row) => row.hash.includes(value.slice(18))), 'no plaintext secret stored');
    }
  });

  test('API3 Broken Object Property Level Authorization: extra properties (tenant, owner, roles) are rejected', async () => {
    const session = await call({
      method: 'POST',
      url: '/v1/sessions',
      as: 'operator',
      payload: { ...validSession, tenantId: 'globex', owner_id: 'x' },
    });
    assert.equal(session.statusCode, 400);
    const keyBody = await call({
      method: 'POST',
      url: '/v1/admin/keys',
      as: 'admin',
      payload: { name: 'k', roles: ['viewer'], tenantId: 'globex' },
    });
    assert.equal(keyBody.statusCode, 400);
    const list = await call({ method: 'GET', url: '/v1/admin/keys', as: 'admin' });
    for (const item of list.json().items as Record<string, unknown>[]) {
      assert.deepEqual(Object.keys(item).sort(), [
        'createdAt',
        'createdBy',
        'expiresAt',
        'id',
        'lastUsedAt',
        'name',
        'prefix',
        'revokedAt',
        'roles',
      ]);
    }
  });

  test('API4 Unrestricted Resource Consumption: body size 413, page size capped, rate limit 429', async () => {
    const big = await call({
      method: 'POST',
      url: '/v1/sessions',
      as: 'operator',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ ...validSession, objective: 'x'.repeat(10_000) }),
    });
    assert.equal(big.statusCode, 413);
    for (let i = 0; i < 7; i += 1)
      await call({ method: 'POST', url: '/v1/sessions', as: 'operator', payload: validSession });
    const page = await call({ method: 'GET', url: '/v1/sessions?limit=100000', as: 'viewer' });
    assert.equal(page.statusCode, 200);
    assert.ok((page.json().items as unknown[]).length <= 5);
    let status = 0;
    for (let i = 0; i < 45 && status !== 429; i += 1)
      status = (await call({ method: 'GET', url: '/v1/roles', as: 'flood' })).statusCode;
    assert.equal(status, 429);
  });

  test('API5 Broken Function Level Authorization: admin functions refuse non-admin roles', async () => {
    for (const role of ['viewer', 'operator']) {
      assert.equal(
        (
          await call({
            method: 'POST',
            url: '/v1/admin/keys',
            as: role,
            payload: { name: 'x', roles: ['admin'] },
          })
        ).statusCode,
        403,
      );
      assert.equal((await call({ method: 'GET', url: '/v1/audit', as: role })).statusCode, 403);
    }
    assert.equal(
      (await call({ method: 'POST', url: '/v1/sessions', as: 'viewer', payload: validSession })).statusCode,
      403,
    );
  });

  test('API6 Unrestricted Access to Sensitive Business Flows: session submission is idempotent and counted', async () => {
    const headers = { 'idempotency-key': 'owasp-api6' };
    const first = await call({
      method: 'POST',
      url: '/v1/sessions',
      as: 'admin',
      headers,
      payload: validSession,
    });
    const again = await call({
      method: 'POST',
      url: '/v1/sessions',
      as: 'admin',
      headers,
      payload: validSession,
    });
    assert.equal(first.statusCode, 201);
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().id, first.json().id);
    assert.match(String(again.headers.ratelimit), /"principal";r=\d+/);
  });

  test('API7 Server Side Request Forgery: internal destinations and redirects to them are blocked', async () => {
    await assert.rejects(assertPublicUrl('http://169.254.169.254/latest/meta-data/'), AppError);
    await assert.rejects(assertPublicUrl('http://[::ffff:127.0.0.1]:7070/'), AppError);
    const server = createServer((_req, res) => {
      res.writeHead(307, { location: 'http://10.0.0.1/admin' });
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      await assert.rejects(fetchPublicUrl(url, {}, { allowedHosts: ['127.0.0.1'] }), /internal network/);
    } finally {
      server.close();
    }
  });

  test('API8 Security Misconfiguration: headers set, no stack traces, no permissive CORS', async () => {
    service.failNextCallWith(new Error('db password=hunter2 at /srv/secret/path'));
    const failed = await call({
      method: 'GET',
      url: '/v1/sessions',
      as: 'viewer',
      headers: { origin: 'https://evil.example' },
    });
    assert.equal(failed.statusCode, 500);
    assert.ok(
      !failed.body.includes('hunter2') &&
        !failed.body.includes('/srv/secret') &&
        !failed.body.includes(' at '),
    );
    assert.equal(failed.headers['access-control-allow-origin'], undefined);
    // Injected requests come over plain http (the CSP without upgrade-insecure-requests).
    for (const [name, value] of Object.entries(PLAIN_HTTP_SECURITY_HEADERS))
      assert.equal(failed.headers[name], value, name);

    // CORS allow-list: only the configured origin gets CORS headers, on preflights and responses
    const preflight = (origin: string) =>
      call({
        method: 'OPTIONS',
        url: '/v1/sessions',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization',
        },
      });
    const allowed = await preflight('https://console.example');
    assert.equal(allowed.statusCode, 204);
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://console.example');
    assert.match(String(allowed.headers['access-control-allow-headers']), /authorization/);
    const evil = await preflight('https://evil.example');
    assert.equal(evil.headers['access-control-allow-origin'], undefined);
    // A browser MCP client sends and reads the MCP session headers on /mcp
    const mcpPreflight = await call({
      method: 'OPTIONS',
      url: '/mcp',
      headers: {
        origin: 'https://console.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,mcp-protocol-version,mcp-session-id',
      },
    });
    const allowedHeaders = String(mcpPreflight.headers['access-control-allow-headers']).split(/,\s*/);
    for (const name of ['authorization', 'content-type', 'mcp-protocol-version', 'mcp-session-id'])
      assert.ok(allowedHeaders.includes(name), `${name} in ${allowedHeaders.join(', ')}`);
    const fromConsole = await call({
      method: 'GET',
      url: '/v1/roles',
      as: 'viewer',
      headers: { origin: 'https://console.example' },
    });
    assert.equal(fromConsole.headers['access-control-allow-origin'], 'https://console.example');
    const exposed = String(fromConsole.headers['access-control-expose-headers']).split(/,\s*/);
    for (const name of ['ratelimit', 'www-authenticate', 'mcp-session-id', 'maos-audit'])
      assert.ok(exposed.includes(name), `${name} in ${exposed.join(', ')}`);
    assert.match(String(fromConsole.headers.vary), /Origin/);
    const fromEvil = await call({
      method: 'GET',
      url: '/v1/roles',
      as: 'viewer',
      headers: { origin: 'https://evil.example' },
    });
    assert.equal(fromEvil.headers['access-control-allow-origin'], undefined);
  });

  test('API9 Improper Inventory Management: every /v1 route is in the OpenAPI document and declares its access', async () => {
    const doc = (await call({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, unknown>>;
    };
    for (const route of routes.filter((r) => r.url.startsWith('/v1') && r.method !== 'HEAD')) {
      const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
      assert.ok(
        doc.paths[path]?.[route.method.toLowerCase()],
        `${route.method} ${path} missing from OpenAPI`,
      );
      assert.ok(
        typeof route.permission === 'string' || route.public === true,
        `${route.url} declares no access`,
      );
    }
  });

  test('API10 Unsafe Consumption of APIs: an identity provider whose discovery document lies is not trusted', async () => {
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ issuer: 'https://attacker.example', jwks_uri: 'https://attacker.example/jwks' }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const verifier = createOidcVerifier({
        issuer,
        audience: 'api',
        algorithms: ['ES256'],
        clockToleranceSeconds: 30,
        typ: 'strict',
        requiredClaims: ['sub'],
        principalClaim: 'sub',
        tenantClaim: 'tenant_id',
        rolesClaim: 'roles',
        roleMapping: {},
        jwksCooldownMs: 30_000,
        jwksCacheMaxAgeMs: 600_000,
        httpTimeoutMs: 2000,
      });
      await assert.rejects(
        verifier.verify('a.b.c'),
        (e: unknown) => e instanceof AppError && e.code === 'AUTH_PROVIDER_UNAVAILABLE',
      );
    } finally {
      server.close();
    }
  });
});
