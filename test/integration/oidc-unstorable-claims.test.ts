// A token whose subject or tenant claim holds U+0000 or an unpaired surrogate is invalid_token: the
// store keeps such text as U+FFFD (store/storable-text.ts), which would make `acme\u0000` and
// `acme\uFFFD` one tenant. Against a real in-process OpenID provider.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { importJWK, SignJWT } from 'jose';
import { configSchema } from '../../src/config/schema.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { createOidcVerifier } from '../../src/security/oidc.ts';
import { readAuthFailure } from '../../src/security/principal.ts';
import { startTestOidcProvider, TEST_AUDIENCE, type TestOidcProvider } from '../fixtures/oidc-provider.ts';

function verifier(issuer: string) {
  const { auth } = configSchema.parse({ auth: { mode: 'oidc', oidc: { issuer, audience: TEST_AUDIENCE } } });
  return createOidcVerifier(auth.oidc);
}

function rejectsWith(reason: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof AppError, String(e));
    assert.equal(e.code, 'INVALID_TOKEN');
    assert.match(readAuthFailure(e)?.reason ?? e.message, reason);
    return true;
  };
}

describe('OIDC claims the store could not keep', { timeout: 60_000 }, () => {
  let idp: TestOidcProvider;
  before(async () => {
    idp = await startTestOidcProvider();
  });
  after(async () => idp?.close());

  test('a tenant claim with NUL or an unpaired surrogate is invalid_token', async () => {
    const verify = verifier(idp.issuer);
    for (const tenant of ['acme\u0000', 'acme\uD800']) {
      const token = await idp.getToken({ claims: { tenant_id: tenant } });
      await assert.rejects(verify.verify(token), rejectsWith(/tenant_id claim holds U\+0000/));
    }
    const fine = await idp.getToken({ claims: { tenant_id: 'acme\uFFFD' } });
    assert.equal((await verify.verify(fine)).tenantId, 'acme\uFFFD');
  });

  test('a subject with NUL is invalid_token', async () => {
    const jwk = idp.keys[0] as Record<string, unknown>;
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({
      iss: idp.issuer,
      aud: TEST_AUDIENCE,
      sub: 'user\u0000',
      client_id: 'c',
      iat: now,
      exp: now + 60,
      jti: 'j-nul',
      tenant_id: 'acme',
    })
      .setProtectedHeader({ alg: 'ES256', kid: jwk.kid as string, typ: 'at+jwt' })
      .sign(await importJWK(jwk as never, 'ES256'));
    await assert.rejects(verifier(idp.issuer).verify(token), rejectsWith(/sub claim holds U\+0000/));
  });
});
