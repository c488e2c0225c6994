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
  });
});
