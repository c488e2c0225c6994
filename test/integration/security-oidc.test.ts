// OIDC resource-server checks against a real in-process OpenID provider (panva oidc-provider).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { configSchema } from '../../src/config/schema.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import { type AuthConfig, createAuthenticator } from '../../src/security/authenticate.ts';
import { createOidcVerifier, DISCOVERY_RETRY_MS } from '../../src/security/oidc.ts';
import { formatBearerChallenge, readAuthFailure } from '../../src/security/principal.ts';
import { createTestSecurityDb, type TestSecurityDb } from '../../src/security/test-support.ts';
import { freePort } from '../fixtures/free-port.ts';
import {
  CLIENT_ID,
  OTHER_AUDIENCE,
  startTestOidcProvider,
  TEST_AUDIENCE,
  type TestOidcProvider,
} from '../fixtures/oidc-provider.ts';
import { createSelfSignedCert, skipWithoutOpenssl } from '../fixtures/tls-cert.ts';

function authConfig(issuer: string, oidc: Record<string, unknown> = {}): AuthConfig {
  return configSchema.parse({
    auth: {
      mode: 'both',
      oidc: { issuer, audience: TEST_AUDIENCE, roleMapping: { 'idp-admins': ['admin'] }, ...oidc },
    },
  }).auth;
}

function rejectsWith(code: string, reason: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof AppError, String(e));
    assert.equal(e.code, code);
    assert.match(readAuthFailure(e)?.reason ?? e.message, reason);
    return true;
  };
}

async function signWithProviderKey(
  idp: TestOidcProvider,
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
): Promise<string> {
  const jwk = idp.keys[0] as Record<string, unknown>;
  const key = await importJWK(jwk as never, 'ES256');
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid as string, ...header })
    .sign(key);
}

describe('OIDC access tokens from a real provider', { timeout: 60_000 }, () => {
  let idp: TestOidcProvider;
  let t: TestSecurityDb;
  before(async () => {
    idp = await startTestOidcProvider();
    t = await createTestSecurityDb();
  });
  after(async () => {
    await idp.close();
    await t.cleanup();
  });

  test('a valid token is accepted and mapped to tenant and roles (claims + mapping + bindings)', async () => {
    await t.db
      .insertInto('role_bindings')
      .values({
        tenant_id: 'acme',
        principal_id: CLIENT_ID,
        role: 'auditor',
        created_at: 'x',
        created_by: 'test',
      })
      .execute();
    const auth = createAuthenticator({ auth: authConfig(idp.issuer), db: t.db });
    const token = await idp.getToken({
      claims: { tenant_id: 'acme', roles: ['operator', 'idp-admins', 'unknown'] },
    });
    const principal = await auth.authenticate({ authorization: `Bearer ${token}` });
    assert.equal(principal.id, CLIENT_ID);
    assert.equal(principal.tenantId, 'acme');
    assert.equal(principal.authMethod, 'oidc');
    assert.equal(principal.type, 'service');
    assert.deepEqual([...principal.roles].sort(), ['admin', 'auditor', 'operator']);
  });

  test('IdP role names that are Object.prototype members map to no role (not a 500)', async () => {
    const auth = createAuthenticator({ auth: authConfig(idp.issuer), db: t.db });
    const token = await idp.getToken({
      claims: { tenant_id: 'globex', roles: ['constructor', '__proto__', 'toString', 'viewer'] },
    });
    const principal = await auth.authenticate({ authorization: `Bearer ${token}` });
    assert.deepEqual(principal.roles, ['viewer']);
  });

  test('claim names with dots (Auth0 namespaced claims, a URL) are read as one claim, dotted paths still nest', async () => {
    // The configuration docs/security.md gives for Auth0: the tenant and roles in claims named by a URL.
    const auth = createAuthenticator({
      auth: authConfig(idp.issuer, {
        tenantClaim: 'https://maos.example.com/tenant',
        rolesClaim: 'https://maos.example.com/roles',
      }),
      db: t.db,
    });
    const token = await idp.getToken({
      claims: {
        'https://maos.example.com/tenant': 'initech',
        'https://maos.example.com/roles': ['operator', 'idp-admins'],
      },
    });
    const principal = await auth.authenticate({ authorization: `Bearer ${token}` });
    assert.equal(principal.tenantId, 'initech');
    assert.deepEqual([...principal.roles].sort(), ['admin', 'operator']);
    // A path into nested claims (Keycloak's realm_access.roles) is still followed.
    const nested = createAuthenticator({
      auth: authConfig(idp.issuer, { tenantClaim: 'org.tenant', rolesClaim: 'realm_access.roles' }),
      db: t.db,
    });
    const nestedToken = await idp.getToken({
      claims: { org: { tenant: 'initech' }, realm_access: { roles: ['viewer'] } },
    });
    const nestedPrincipal = await nested.authenticate({ authorization: `Bearer ${nestedToken}` });
    assert.equal(nestedPrincipal.tenantId, 'initech');
    assert.deepEqual(nestedPrincipal.roles, ['viewer']);
  });

  test('a token without a tenant is refused unless a default tenant is configured', async () => {
    const token = await idp.getToken();
    const strict = createOidcVerifier(authConfig(idp.issuer).oidc);
    await assert.rejects(strict.verify(token), rejectsWith('INVALID_TOKEN', /no tenant/));
    const lenient = createOidcVerifier(authConfig(idp.issuer, { defaultTenant: 'main' }).oidc);
    assert.equal((await lenient.verify(token)).tenantId, 'main');
  });

  test('expired token (clock moved past exp + tolerance) is invalid_token', async () => {
    const token = await idp.getToken({ claims: { tenant_id: 'acme' } });
    const exp = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()).exp as number;
    const at = (seconds: number) =>
      createOidcVerifier(authConfig(idp.issuer).oidc, { now: () => new Date((exp + seconds) * 1000) });
    // clock skew within the 30 s tolerance is accepted, beyond it refused
    assert.equal((await at(20).verify(token)).tenantId, 'acme');
    await assert.rejects(at(45).verify(token), rejectsWith('INVALID_TOKEN', /expired/));
  });

  test('a token without exp is refused, also when requiredClaims leaves exp out (it would never expire)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: idp.issuer,
      aud: TEST_AUDIENCE,
      sub: 'forever',
      client_id: 'app',
      iat: now,
      jti: 'no-exp',
      tenant_id: 'acme',
    };
    const noExp = await signWithProviderKey(idp, { typ: 'at+jwt' }, claims);
    for (const config of [authConfig(idp.issuer), authConfig(idp.issuer, { requiredClaims: ['sub'] })]) {
      await assert.rejects(
        createOidcVerifier(config.oidc).verify(noExp),
        rejectsWith('INVALID_TOKEN', /claim exp is missing or invalid/),
      );
    }
    // control: the same token with an exp is accepted
    const withExp = await signWithProviderKey(idp, { typ: 'at+jwt' }, { ...claims, exp: now + 60 });
    assert.equal((await createOidcVerifier(authConfig(idp.issuer).oidc).verify(withExp)).id, 'forever');
  });

  test('a token issued in the future (iat beyond the clock tolerance) is invalid_token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: idp.issuer,
      aud: TEST_AUDIENCE,
      sub: 'early',
      client_id: 'app',
      exp: now + 7200,
      jti: 'future-iat',
      tenant_id: 'acme',
    };
    const verifier = createOidcVerifier(authConfig(idp.issuer).oidc);
    const future = await signWithProviderKey(idp, { typ: 'at+jwt' }, { ...claims, iat: now + 3600 });
    await assert.rejects(verifier.verify(future), rejectsWith('INVALID_TOKEN', /not yet valid/));
    // within the 30 s tolerance it is accepted
    const skewed = await signWithProviderKey(idp, { typ: 'at+jwt' }, { ...claims, iat: now + 10 });
    assert.equal((await verifier.verify(skewed)).id, 'early');
  });

  test('token for another audience is invalid_token', async () => {
    const token = await idp.getToken({ resource: OTHER_AUDIENCE, claims: { tenant_id: 'acme' } });
    const verifier = createOidcVerifier(authConfig(idp.issuer).oidc);
    await assert.rejects(verifier.verify(token), rejectsWith('INVALID_TOKEN', /audience/));
  });

  test('token from another issuer (same key) is invalid_token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await signWithProviderKey(
      idp,
      { typ: 'at+jwt' },
      {
        iss: 'https://evil.example',
        aud: TEST_AUDIENCE,
        sub: 'x',
        client_id: 'x',
        iat: now,
        exp: now + 60,
        jti: 'j1',
        tenant_id: 'acme',
      },
    );
    const verifier = createOidcVerifier(authConfig(idp.issuer).oidc);
    await assert.rejects(verifier.verify(token), rejectsWith('INVALID_TOKEN', /issuer/));
  });

  test('tampered signature and tampered payload are invalid_token', async () => {
    const token = await idp.getToken({ claims: { tenant_id: 'acme' } });
    const [h, p, s] = token.split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    sig[10] = (sig[10] as number) ^ 0xff;
    const verifier = createOidcVerifier(authConfig(idp.issuer).oidc);
    await assert.rejects(
      verifier.verify(`${h}.${p}.${sig.toString('base64url')}`),
      rejectsWith('INVALID_TOKEN', /signature/),
    );
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.tenant_id = 'other-tenant';
    const forged = Buffer.from(JSON.stringify(claims)).toString('base64url');
    await assert.rejects(verifier.verify(`${h}.${forged}.${s}`), rejectsWith('INVALID_TOKEN', /signature/));
  });

  test('alg none is refused', async () => {
    const token = await idp.getToken({ claims: { tenant_id: 'acme' } });
    const payload = token.split('.')[1] as string;
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
    const verifier = createOidcVerifier(authConfig(idp.issuer).oidc);
    await assert.rejects(
      verifier.verify(`${header}.${payload}.`),
      rejectsWith('INVALID_TOKEN', /algorithm|malformed/),
    );
  });

  test('an ID token is not an access token: refused by typ (strict) and by claims (lenient)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const idToken = await signWithProviderKey(
      idp,
      { typ: 'JWT' },
      {
        iss: idp.issuer,
        aud: CLIENT_ID,
        azp: CLIENT_ID,
        sub: 'user-1',
        iat: now,
        exp: now + 600,
        jti: 'id1',
        tenant_id: 'acme',
      },
    );
    await assert.rejects(
      createOidcVerifier(authConfig(idp.issuer).oidc).verify(idToken),
      rejectsWith('INVALID_TOKEN', /typ|access token/),
    );
    await assert.rejects(
      createOidcVerifier(authConfig(idp.issuer, { typ: 'lenient' }).oidc).verify(idToken),
      rejectsWith('INVALID_TOKEN', /audience|client_id/),
    );
    // lenient mode accepts a Keycloak-style access token with typ JWT
    const kcStyle = await signWithProviderKey(
      idp,
      { typ: 'JWT' },
      {
        iss: idp.issuer,
        aud: TEST_AUDIENCE,
        sub: 'u2',
        client_id: 'app',
        iat: now,
        exp: now + 600,
        jti: 'a2',
        tenant_id: 'acme',
      },
    );
    assert.equal(
      (await createOidcVerifier(authConfig(idp.issuer, { typ: 'lenient' }).oidc).verify(kcStyle)).id,
      'u2',
    );
  });

  test('key rotation: a new kid is verified at once, also within jwksCooldownMs of the last fetch; made-up kids fetch once per cooldown', async () => {
    // The default cooldown (30 s), on a clock that moves only when the test moves it; the JWKS
    // requests the verifier sends are counted.
    const start = Date.now();
    const clock = { offsetMs: 0 };
    let jwksFetches = 0;
    const counting: typeof fetch = (input, init) => {
      if (String(input instanceof Request ? input.url : input).endsWith('/jwks')) jwksFetches += 1;
      return fetch(input, init);
    };
    const verifier = createOidcVerifier(authConfig(idp.issuer).oidc, {
      now: () => new Date(start + clock.offsetMs),
      fetch: counting,
    });
    const kidOf = (token: string): unknown =>
      JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).kid;
    await verifier.verify(await idp.getToken({ claims: { tenant_id: 'acme' } }));
    assert.equal(jwksFetches, 1);

    // The IdP rotates 2 s after that fetch: the new key's token is verified at once.
    clock.offsetMs = 2000;
    const newKey = await idp.rotateKey();
    const rotated = await idp.getToken({ claims: { tenant_id: 'acme' } });
    assert.equal(kidOf(rotated), newKey.kid);
    assert.equal((await verifier.verify(rotated)).tenantId, 'acme');
    assert.equal(jwksFetches, 2);

    // Tokens naming a kid the IdP never published: one fetch finds nothing, and no other is sent
    // for the cooldown, however many come (sent together or one after the other).
    clock.offsetMs = 4000;
    const now = Math.floor((start + clock.offsetMs) / 1000);
    const madeUp = await signWithProviderKey(
      idp,
      { typ: 'at+jwt', kid: 'never-published' },
      {
        iss: idp.issuer,
        aud: TEST_AUDIENCE,
        sub: 'u',
        client_id: CLIENT_ID,
        iat: now,
        exp: now + 600,
        jti: 'j',
      },
    );
    const unknownKey = rejectsWith('INVALID_TOKEN', /signing key is unknown/);
    await Promise.all(Array.from({ length: 5 }, () => assert.rejects(verifier.verify(madeUp), unknownKey)));
    for (let i = 0; i < 5; i += 1) await assert.rejects(verifier.verify(madeUp), unknownKey);
    assert.equal(jwksFetches, 3);

    // A rotation within that cooldown waits for its end: the protection against made-up kids.
    clock.offsetMs = 10_000;
    const newest = await idp.rotateKey();
    const later = await idp.getToken({ claims: { tenant_id: 'acme' } });
    assert.equal(kidOf(later), newest.kid);
    await assert.rejects(verifier.verify(later), unknownKey);
    assert.equal(jwksFetches, 3);
    clock.offsetMs = 4000 + 30_001;
    assert.equal((await verifier.verify(later)).tenantId, 'acme');
    assert.equal(jwksFetches, 4);
    // Still known: no fetch.
    assert.equal((await verifier.verify(rotated)).tenantId, 'acme');
    assert.equal(jwksFetches, 4);
  });

  test("a subject in MAOS's own principal namespaces (key:, cli:, local-mcp…) is refused, not merged", async () => {
    // An API key with a role binding: its principal is key:<id>, in tenant acme.
    const { key, info } = await createApiKey(t.db, {
      tenantId: 'acme',
      name: 'ci',
      roles: ['viewer'],
      createdBy: 'test',
    });
    await t.db
      .insertInto('role_bindings')
      .values({
        tenant_id: 'acme',
        principal_id: `key:${info.id}`,
        role: 'admin',
        created_at: 'x',
        created_by: 'test',
      })
      .execute();
    const auth = createAuthenticator({ auth: authConfig(idp.issuer), db: t.db });
    const keyPrincipal = await auth.authenticate({ 'x-api-key': key });
    assert.equal(keyPrincipal.id, `key:${info.id}`);
    assert.ok(keyPrincipal.roles.includes('admin'));
    // The IdP issues a token whose sub is that principal id: refused before any binding is read.
    for (const subject of [
      `key:${info.id}`,
      `KEY:${info.id}`,
      // Full-width letters and colon: the same id in an audit record's reader's eyes.
      `ｋｅｙ：${info.id}`,
      'cli:root',
      'local-mcp',
      'local',
      'anonymous',
    ]) {
      const token = await idp.getToken({ subject, claims: { tenant_id: 'acme' } });
      await assert.rejects(
        auth.authenticate({ authorization: `Bearer ${token}` }),
        rejectsWith('INVALID_TOKEN', /sub claim uses the reserved principal name/),
        subject,
      );
    }
    // The same through a configured principal claim.
    const viaClaim = createAuthenticator({
      auth: authConfig(idp.issuer, { principalClaim: 'uid' }),
      db: t.db,
    });
    const token = await idp.getToken({ claims: { tenant_id: 'acme', uid: `key:${info.id}` } });
    await assert.rejects(
      viaClaim.authenticate({ authorization: `Bearer ${token}` }),
      rejectsWith('INVALID_TOKEN', /uid claim uses the reserved principal name "key:"/),
    );
    // Ordinary subjects, even ones that merely contain a reserved word, keep their ids.
    for (const subject of ['alice', 'monkey:1', 'local-user', 'f:9b1c:key:x']) {
      const ok = await idp.getToken({ subject, claims: { tenant_id: 'acme' } });
      assert.equal((await auth.authenticate({ authorization: `Bearer ${ok}` })).id, subject);
    }
  });

  test('malformed and missing credentials get the RFC 6750 classification', async () => {
    const auth = createAuthenticator({ auth: authConfig(idp.issuer), db: t.db });
    await assert.rejects(auth.authenticate({}), (e: unknown) => {
      assert.ok(e instanceof AppError);
      assert.equal(e.status, 401);
      assert.equal(readAuthFailure(e)?.bearerError, null);
      return true;
    });
    await assert.rejects(
      auth.authenticate({ authorization: 'Basic dXNlcjpwYXNz' }),
      rejectsWith('UNAUTHENTICATED', /Bearer/),
    );
    await assert.rejects(
      auth.authenticate({ authorization: 'Bearer a b' }),
      rejectsWith('VALIDATION_FAILED', /malformed/),
    );
    await assert.rejects(
      auth.authenticate({ authorization: 'Bearer ä' }),
      rejectsWith('VALIDATION_FAILED', /malformed/),
    );
    await assert.rejects(
      auth.authenticate({ authorization: 'Bearer x', 'x-api-key': 'maos_x' }),
      rejectsWith('VALIDATION_FAILED', /more than one/),
    );
    await assert.rejects(
      auth.authenticate({ authorization: 'Bearer not.a.jwt' }),
      rejectsWith('INVALID_TOKEN', /malformed/),
    );
    assert.equal(
      formatBearerChallenge('maos', 'invalid_token', 'token "expired"\\'),
      'Bearer realm="maos", error="invalid_token", error_description="token expired"',
    );
  });

  test('a failing discovery is asked again at most every DISCOVERY_RETRY_MS, however many tokens come', async () => {
    let requests = 0;
    const failing = createServer((_request, response) => {
      requests += 1;
      response.statusCode = 500;
      response.end('down');
    });
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(failing.address() as AddressInfo).port}`;
    // A clock that moves only when the test moves it: the Retry-After of each 503 is exact.
    const start = Date.now();
    const clock = { offsetMs: 0 };
    const verifier = createOidcVerifier(authConfig(issuer).oidc, {
      now: () => new Date(start + clock.offsetMs),
    });
    const unavailable = (retryAfterSeconds: number) => (e: unknown) =>
      e instanceof AppError &&
      e.code === 'AUTH_PROVIDER_UNAVAILABLE' &&
      e.retryAfterSeconds === retryAfterSeconds;
    try {
      // Each 503 says when the IdP is asked again: 5 s after the failure, rounded up.
      for (let i = 0; i < 20; i += 1) await assert.rejects(verifier.verify('a.b.c'), unavailable(5));
      assert.equal(requests, 1);
      clock.offsetMs = 2500;
      await assert.rejects(verifier.verify('a.b.c'), unavailable(3));
      clock.offsetMs = DISCOVERY_RETRY_MS - 1;
      await assert.rejects(verifier.verify('a.b.c'), unavailable(1));
      assert.equal(requests, 1);
      clock.offsetMs = DISCOVERY_RETRY_MS + 1;
      await assert.rejects(verifier.verify('a.b.c'), unavailable(5));
      await assert.rejects(verifier.verify('a.b.c'), unavailable(5));
      assert.equal(requests, 2);
    } finally {
      failing.close();
    }
  });

  test('a failing key set is asked again at most every DISCOVERY_RETRY_MS; cached keys still verify meanwhile', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const state = { jwksUp: true, jwksRequests: 0 };
    const idpServer = createServer((request, response) => {
      response.setHeader('content-type', 'application/json');
      if (request.url === '/.well-known/openid-configuration') {
        response.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
        return;
      }
      state.jwksRequests += 1;
      if (!state.jwksUp) response.statusCode = 500;
      response.end(state.jwksUp ? JSON.stringify({ keys: [jwk] }) : '{}');
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}`;
    const now = Math.floor(Date.now() / 1000);
    const sign = (kid: string) =>
      new SignJWT({
        iss: issuer,
        aud: TEST_AUDIENCE,
        sub: 'u',
        client_id: 'c',
        iat: now,
        exp: now + 3600,
        jti: 'j',
        tenant_id: 'acme',
      })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
        .sign(privateKey);
    // A clock that moves only when the test moves it: the Retry-After of each 503 is exact.
    const start = Date.now();
    const clock = { offsetMs: 0 };
    const verifier = createOidcVerifier(authConfig(issuer, { jwksCooldownMs: 0 }).oidc, {
      now: () => new Date(start + clock.offsetMs),
    });
    const unavailable = (retryAfterSeconds: number) => (e: unknown) =>
      e instanceof AppError &&
      e.code === 'AUTH_PROVIDER_UNAVAILABLE' &&
      e.retryAfterSeconds === retryAfterSeconds;
    try {
      const known = await sign('k1');
      const unknown = await sign('k2');
      assert.equal((await verifier.verify(known)).tenantId, 'acme');
      assert.equal(state.jwksRequests, 1);
      state.jwksUp = false;
      // An unknown kid makes the key set be fetched again: it fails once, then is not asked again
      // for DISCOVERY_RETRY_MS, however many tokens come; each 503 says when it is asked again.
      for (let i = 0; i < 10; i += 1) await assert.rejects(verifier.verify(unknown), unavailable(5));
      assert.equal(state.jwksRequests, 2);
      clock.offsetMs = 1200;
      await assert.rejects(verifier.verify(unknown), unavailable(4));
      // Meanwhile a token signed with a key it still holds is verified with it.
      assert.equal((await verifier.verify(known)).tenantId, 'acme');
      assert.equal(state.jwksRequests, 2);
      clock.offsetMs = DISCOVERY_RETRY_MS + 1;
      await assert.rejects(verifier.verify(unknown), unavailable(5));
      assert.equal(state.jwksRequests, 3);
    } finally {
      idpServer.close();
    }
  });

  test('a discovery naming a key set on a port fetch refuses says so, not that the keys cannot be fetched', async () => {
    const idpServer = createServer((_request, response) => {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ issuer, jwks_uri: 'http://127.0.0.1:6000/jwks' }));
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}`;
    try {
      await assert.rejects(
        createOidcVerifier(authConfig(issuer).oidc).verify('a.b.c'),
        (e: unknown) =>
          e instanceof AppError &&
          e.code === 'AUTH_PROVIDER_UNAVAILABLE' &&
          /jwks_uri http:\/\/127\.0\.0\.1:6000: port 6000 is one the HTTP client/.test(e.message),
      );
    } finally {
      idpServer.close();
    }
  });

  test('a discovery document that is null or names no URL as jwks_uri is 503 AUTH_PROVIDER_UNAVAILABLE, not a 500', async () => {
    let document: (issuer: string) => unknown = () => null;
    const idpServer = createServer((_request, response) => {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify(document(issuer)));
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}`;
    try {
      for (const [body, message] of [
        [() => null, /does not match auth\.oidc\.issuer/],
        [(at: string) => ({ issuer: at, jwks_uri: '/jwks' }), /jwks_uri is not a URL/],
        [(at: string) => ({ issuer: at, jwks_uri: 'not a url' }), /jwks_uri is not a URL/],
      ] as const) {
        document = body;
        await assert.rejects(
          createOidcVerifier(authConfig(issuer).oidc).verify('a.b.c'),
          (e: unknown) =>
            e instanceof AppError && e.code === 'AUTH_PROVIDER_UNAVAILABLE' && message.test(e.message),
        );
      }
    } finally {
      idpServer.close();
    }
  });

  test('an https issuer whose discovery names a plain-http jwks_uri is refused: its signing keys would travel unprotected', {
    skip: skipWithoutOpenssl,
  }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-oidc-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const { certFile, keyFile } = createSelfSignedCert(dir);
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    // The key set on plain HTTP: anyone on the path could hand MAOS a key of their own.
    const keys = createServer((_request, response) => {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => keys.listen(0, '127.0.0.1', resolve));
    t.after(() => keys.close());
    const keysPort = (keys.address() as AddressInfo).port;
    let jwksUri = `http://127.0.0.1:${keysPort}/jwks`;
    const idpServer = createHttpsServer(
      { cert: readFileSync(certFile), key: readFileSync(keyFile) },
      (request, response) => {
        response.setHeader('content-type', 'application/json');
        if (request.url === '/jwks') response.end(JSON.stringify({ keys: [jwk] }));
        else response.end(JSON.stringify({ issuer, jwks_uri: jwksUri }));
      },
    );
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    t.after(() => idpServer.close());
    const issuer = `https://127.0.0.1:${(idpServer.address() as AddressInfo).port}`;
    // This IdP's certificate is trusted for these fetches (discovery and keys), as a CA's would be.
    const agent = new Agent({ connect: { ca: readFileSync(certFile) } });
    t.after(() => agent.close());
    const trusting: typeof fetch = (input, init) =>
      undiciFetch(input as never, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>;
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({
      iss: issuer,
      aud: TEST_AUDIENCE,
      sub: 'u',
      client_id: 'c',
      iat: now,
      exp: now + 600,
      jti: 'j',
      tenant_id: 'acme',
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
      .sign(privateKey);
    await assert.rejects(
      createOidcVerifier(authConfig(issuer).oidc, { fetch: trusting }).verify(token),
      (e: unknown) =>
        e instanceof AppError &&
        e.code === 'AUTH_PROVIDER_UNAVAILABLE' &&
        /jwks_uri http:\/\/127\.0\.0\.1:\d+ is not https:\/\/ while the issuer is/.test(e.message),
    );
    // The same keys over HTTPS verify the token.
    jwksUri = `${issuer}/jwks`;
    const verified = await createOidcVerifier(authConfig(issuer).oidc, { fetch: trusting }).verify(token);
    assert.equal(verified.tenantId, 'acme');
  });

  test('an unreachable provider is 503 AUTH_PROVIDER_UNAVAILABLE, not a token error', async () => {
    // A port just let go: nothing answers there.
    const issuer = `http://127.0.0.1:${await freePort()}/`;
    const verifier = createOidcVerifier(authConfig(issuer, { httpTimeoutMs: 2000 }).oidc);
    await assert.rejects(
      verifier.verify('a.b.c'),
      (e: unknown) => e instanceof AppError && e.code === 'AUTH_PROVIDER_UNAVAILABLE',
    );
  });
});
