import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { authConfigSchema } from '../config/security-schema.ts';
import { mapClaims } from './oidc.ts';

const config = authConfigSchema.parse({ mode: 'oidc' }).oidc;
const claims = { sub: 'user-1', tenant_id: 'acme' };

describe('the client of an OIDC principal', () => {
  test('is the token’s client_id, else its azp (Keycloak, Entra ID), else none', () => {
    assert.equal(mapClaims({ ...claims, client_id: 'cli', azp: 'console' }, config).clientId, 'cli');
    const azp = mapClaims({ ...claims, azp: 'maos-console' }, config);
    assert.deepEqual([azp.clientId, azp.type], ['maos-console', 'user']);
    assert.equal(mapClaims(claims, config).clientId, null);
    // Only a client_id equal to the subject makes a service (a client-credentials token).
    assert.equal(mapClaims({ ...claims, client_id: 'user-1' }, config).type, 'service');
    assert.equal(mapClaims({ ...claims, azp: 'user-1' }, config).type, 'user');
  });
});

describe('a principal or tenant claim that is no text', () => {
  const reasonOf = (payload: Record<string, unknown>): string => {
    try {
      mapClaims(payload, config);
    } catch (error) {
      assert.equal((error as { code?: unknown }).code, 'INVALID_TOKEN');
      return (error as Error).message;
    }
    return assert.fail('expected INVALID_TOKEN');
  };

  test('is refused saying the token has the claim, of the wrong type, not that it has none', () => {
    assert.equal(reasonOf({ tenant_id: 'acme' }), 'token has no sub claim');
    assert.equal(reasonOf({ sub: 42, tenant_id: 'acme' }), 'token sub claim is a number, not a string');
    assert.equal(reasonOf({ sub: ['u'], tenant_id: 'acme' }), 'token sub claim is a list, not a string');
    assert.equal(
      reasonOf({ sub: { id: 'u' }, tenant_id: 'acme' }),
      'token sub claim is an object, not a string',
    );
    assert.equal(reasonOf({ sub: null, tenant_id: 'acme' }), 'token sub claim is null, not a string');
    assert.equal(reasonOf({ sub: '', tenant_id: 'acme' }), 'token sub claim is empty');
    assert.equal(reasonOf({ sub: 'u', tenant_id: 7 }), 'token tenant_id claim is a number, not a string');
    assert.equal(reasonOf({ sub: 'u', tenant_id: '' }), 'token tenant_id claim is empty');
    // A null tenant claim without a defaultTenant to stand in for it: said so, as a null sub is.
    assert.equal(reasonOf({ sub: 'u', tenant_id: null }), 'token tenant_id claim is null, not a string');
  });
});

describe('a claim name with dots', () => {
  const withClaims = authConfigSchema.parse({
    mode: 'oidc',
    oidc: { tenantClaim: 'org.tenant', rolesClaim: 'realm_access.roles' },
  }).oidc;

  test('is read as one claim, or as a path, whichever the token has', () => {
    const flat = mapClaims({ sub: 'u', 'org.tenant': 'acme', 'realm_access.roles': ['viewer'] }, withClaims);
    assert.deepEqual([flat.tenantId, flat.roles], ['acme', ['viewer']]);
    const nested = mapClaims(
      { sub: 'u', org: { tenant: 'acme' }, realm_access: { roles: ['viewer'] } },
      withClaims,
    );
    assert.deepEqual([nested.tenantId, nested.roles], ['acme', ['viewer']]);
  });

  test('is refused when the token has both the claim of that name and the path: which one is meant is unclear', () => {
    // Read whole name first, a claim `realm_access.roles` beside Keycloak's realm_access.roles
    // replaced the roles the operator configured (and a claim `org.tenant` the tenant).
    for (const payload of [
      {
        sub: 'u',
        org: { tenant: 'acme' },
        realm_access: { roles: ['viewer'] },
        'realm_access.roles': ['admin'],
      },
      { sub: 'u', org: { tenant: 'acme' }, 'org.tenant': 'other' },
    ]) {
      assert.throws(
        () => mapClaims(payload, withClaims),
        (error: unknown) =>
          (error as { code?: unknown }).code === 'INVALID_TOKEN' &&
          /^token has both a claim named "(realm_access\.roles|org\.tenant)" and that path into/.test(
            (error as Error).message,
          ),
      );
    }
  });
});
