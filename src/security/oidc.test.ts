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
