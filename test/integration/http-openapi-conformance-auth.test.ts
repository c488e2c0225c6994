// OIDC bearer tokens against the OpenAPI document, with a real OpenID provider (panva oidc-provider,
// fixtures/oidc-provider.ts) and auth mode `oidc`: the document declares that scheme alone, tokens
// are accepted by role, and every refusal (no token, a bad, expired or foreign one, a malformed
// header, an API key, a missing permission, an unreachable provider) is the documented answer with
// its RFC 6750 challenge. On SQLite and PostgreSQL; API keys: http-openapi-conformance.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { importJWK, SignJWT } from 'jose';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import {
  CLIENT_ID,
  OTHER_AUDIENCE,
  startTestOidcProvider,
  TEST_AUDIENCE,
  type TestOidcProvider,
} from '../fixtures/oidc-provider.ts';
import {
  CONFORMANCE_STORES,
  createConformanceStore,
  expectStatus,
  fetchOpenApiDocument,
} from '../fixtures/openapi-conformance.ts';
import { createOpenApiRecorder, type RecordedCall } from '../fixtures/openapi-recorder.ts';
import { startTestServer } from '../fixtures/server.ts';

/** A token signed with the provider's own key, with claims the provider would not issue (e.g. expired). */
async function signAsProvider(idp: TestOidcProvider, claims: Record<string, unknown>): Promise<string> {
  const jwk = idp.keys[0] as Record<string, unknown>;
  const key = await importJWK(jwk as never, 'ES256');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ client_id: CLIENT_ID, jti: `j-${now}`, tenant_id: 'acme', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: String(jwk.kid), typ: 'at+jwt' })
    .setIssuer(idp.issuer)
    .setAudience(TEST_AUDIENCE)
    .setSubject(CLIENT_ID)
    .setIssuedAt(now - 7200)
    .setExpirationTime(now - 3600)
    .sign(key);
}

/** The RFC 6750 `error` and `error_description` of a challenge answer. */
function challengeOf(call: RecordedCall): { error?: string; description?: string } {
  const value = call.headers.get('www-authenticate') ?? '';
  assert.match(value, /^Bearer realm="maos"/, `${call.method} ${call.path}: ${value}`);
  return {
    ...(/error="([^"]*)"/.exec(value)?.[1] ? { error: /error="([^"]*)"/.exec(value)?.[1] } : {}),
    ...(/error_description="([^"]*)"/.exec(value)?.[1]
      ? { description: /error_description="([^"]*)"/.exec(value)?.[1] }
      : {}),
  };
}

for (const store of CONFORMANCE_STORES) {
  test(`OIDC tokens and their refusals match the OpenAPI document (${store})`, {
    timeout: 60_000,
  }, async (t) => {
    const idp = await startTestOidcProvider();
    const database = await createConformanceStore(store);
    const server = await startTestServer({
      config: {
        ...database.config,
        auth: {
          mode: 'oidc',
          // No cooldown: a token signed with a new key makes the server fetch the keys at once.
          oidc: { issuer: idp.issuer, audience: TEST_AUDIENCE, jwksCooldownMs: 0 },
        },
      },
    });
    t.after(async () => {
      await server.close();
      await database.drop();
      await idp.close();
    });
    const doc = await fetchOpenApiDocument(server.url);
    // Mode `oidc` declares its one scheme, and every API operation requires it.
    assert.deepEqual(Object.keys(doc.components?.securitySchemes ?? {}), ['oidcBearer']);
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!path.startsWith('/v1/')) continue;
      for (const [method, operation] of Object.entries(item)) {
        const security = (operation as { security?: unknown }).security;
        assert.deepEqual(security, [{ oidcBearer: [] }], `${method} ${path}`);
      }
    }
    // The 503 of the API names each cause, the identity provider among them.
    const listing = doc.paths['/v1/sessions']?.get?.responses?.['503']?.description ?? '';
    assert.match(listing, /identity provider/);
    const admin = await idp.getToken({ claims: { tenant_id: 'acme', roles: ['admin'] } });
    const viewer = await idp.getToken({ claims: { tenant_id: 'acme', roles: ['viewer'] } });
    const api = createOpenApiRecorder(server.url, doc, { authorization: `Bearer ${admin}` });
    const as = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

    // Accepted tokens, by role.
    expectStatus(await api.call('GET', '/v1/roles'), 200);
    const submit = { objective: 'Signed in', agents: [{ role: 'engineer', task: 'Build', runner: 'ok' }] };
    expectStatus(await api.call('POST', '/v1/sessions', { body: submit }), 201);
    expectStatus(await api.call('GET', '/v1/sessions', as(viewer)), 200);
    expectStatus(await api.call('GET', '/v1/admin/keys'), 200);

    // 403: a valid token without the permission, with the insufficient_scope challenge.
    const denied = await api.call('POST', '/v1/sessions', { ...as(viewer), body: submit });
    expectStatus(denied, 403, 'PERMISSION_DENIED');
    assert.deepEqual(challengeOf(denied), {
      error: 'insufficient_scope',
      description: 'requires sessions:create',
    });
    expectStatus(await api.call('GET', '/v1/audit', as(viewer)), 403, 'PERMISSION_DENIED');

    // 401: no token (a bare challenge naming the protected-resource metadata), or a refused one.
    const missing = await api.call('GET', '/v1/sessions', { headers: { authorization: '' } });
    expectStatus(missing, 401, 'UNAUTHENTICATED');
    assert.deepEqual(challengeOf(missing), {});
    assert.match(
      missing.headers.get('www-authenticate') ?? '',
      /resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource"$/,
    );
    const signature = admin.slice(admin.lastIndexOf('.') + 1);
    const flipped = `${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    const tampered = `${admin.slice(0, admin.lastIndexOf('.') + 1)}${flipped}`;
    const wrongAudience = await idp.getToken({ resource: OTHER_AUDIENCE, claims: { tenant_id: 'acme' } });
    const { key: apiKey } = await createApiKey(server.app.database.db as unknown as SecurityDb, {
      tenantId: 'acme',
      name: 'k',
      roles: ['admin'],
      createdBy: 't',
    });
    const refused: Array<[string, string]> = [
      [await signAsProvider(idp, { roles: ['admin'] }), 'token expired'],
      [tampered, 'token signature is invalid'],
      [wrongAudience, 'token audience is not this API'],
      ['not.a.jwt', 'token is malformed'],
      [apiKey, 'API keys are not accepted'],
    ];
    for (const [token, description] of refused) {
      const call = await api.call('GET', '/v1/roles', as(token));
      expectStatus(call, 401, 'INVALID_TOKEN');
      assert.deepEqual(challengeOf(call), { error: 'invalid_token', description });
      assert.equal((call.body as { detail?: string }).detail, description);
    }
    // The API-key header is no scheme of this document either.
    const keyHeader = await api.call('GET', '/v1/roles', {
      headers: { authorization: '', 'x-api-key': apiKey },
    });
    expectStatus(keyHeader, 401, 'INVALID_TOKEN');
    assert.deepEqual(challengeOf(keyHeader), {
      error: 'invalid_token',
      description: 'API keys are not accepted',
    });
    // The SSE stream refuses the same way, before any stream opens.
    const stream = { headers: { ...as(tampered).headers, accept: 'text/event-stream' }, stream: true };
    const events = '/v1/sessions/0190a0a0-0000-7000-8000-000000000abc/events';
    expectStatus(await api.call('GET', events, stream), 401, 'INVALID_TOKEN');

    // 400: a malformed Authorization header, with the invalid_request challenge.
    const malformed = await api.call('GET', '/v1/roles', {
      headers: { authorization: 'Bearer a b c' },
      ruleBeyondSchema: 'the Bearer syntax of RFC 6750',
    });
    expectStatus(malformed, 400, 'VALIDATION_FAILED');
    assert.equal(challengeOf(malformed).error, 'invalid_request');

    // 503: a token signed with a new key while the provider cannot be reached to publish it.
    await idp.rotateKey();
    const rotated = await idp.getToken({ claims: { tenant_id: 'acme', roles: ['admin'] } });
    await idp.close();
    const unreachable = await api.call('GET', '/v1/roles', as(rotated));
    expectStatus(unreachable, 503, 'AUTH_PROVIDER_UNAVAILABLE');
    expectStatus(await api.call('GET', '/v1/roles'), 200);

    assert.deepEqual(api.violations, [], 'the answers match the document');
  });
}
