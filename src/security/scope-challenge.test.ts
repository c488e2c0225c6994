import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatBearerChallenge } from './principal.ts';
import { hasPermission, PERMISSIONS } from './rbac.ts';
import { createScopeForPermission } from './scope-challenge.ts';

describe('the scope of a 403 challenge', () => {
  test('roles from the scope claim: the narrowest built-in role name that grants the permission', () => {
    const scopeFor = createScopeForPermission({ rolesClaim: 'scope', roleMapping: {} });
    assert.equal(scopeFor('sessions:read'), 'viewer');
    assert.equal(scopeFor('sessions:create'), 'developer');
    assert.equal(scopeFor('sessions:approve'), 'operator');
    assert.equal(scopeFor('audit:read'), 'auditor');
    assert.equal(scopeFor('keys:manage'), 'admin');
    for (const permission of PERMISSIONS) {
      const scope = scopeFor(permission);
      assert.ok(scope !== null && hasPermission([scope], permission), permission);
    }
    assert.equal(createScopeForPermission({ rolesClaim: 'scp', roleMapping: {} })('sessions:read'), 'viewer');
  });

  test('IdP names of roleMapping come before built-in names of the same breadth, never broader', () => {
    const scopeFor = createScopeForPermission({
      rolesClaim: 'scope',
      roleMapping: {
        'maos.admin': ['admin'],
        'maos.ops': ['operator'],
        'maos.ops2': ['operator'],
        'maos.audit': ['viewer', 'auditor'],
      },
    });
    assert.equal(scopeFor('sessions:approve'), 'maos.ops', 'first of the mapped names');
    // `maos.admin` grants it too, but `developer` grants less.
    assert.equal(scopeFor('sessions:create'), 'developer');
    // `maos.audit` holds viewer and auditor: as broad as auditor alone, and mapped.
    assert.equal(scopeFor('audit:read'), 'maos.audit');
    assert.equal(scopeFor('keys:manage'), 'maos.admin');
  });

  test('a built-in name the mapping redefines means what the mapping says', () => {
    const scopeFor = createScopeForPermission({ rolesClaim: 'scope', roleMapping: { viewer: ['auditor'] } });
    // `viewer` as a scope gives auditor here; auditor's permissions include sessions:read.
    assert.equal(scopeFor('audit:read'), 'viewer');
    assert.equal(scopeFor('sessions:read'), 'viewer');
  });

  test('names that are no valid scope-token are never offered', () => {
    const scopeFor = createScopeForPermission({
      rolesClaim: 'scope',
      roleMapping: {
        'ops team': ['operator'],
        'ops"x': ['operator'],
        'ops\\x': ['operator'],
        é: ['operator'],
      },
    });
    assert.equal(scopeFor('sessions:approve'), 'operator');
  });

  test('roles from any other claim: no scope, asking the IdP for one cannot change them', () => {
    for (const rolesClaim of ['roles', 'groups', 'realm_access.roles']) {
      const scopeFor = createScopeForPermission({ rolesClaim, roleMapping: { 'maos-ops': ['operator'] } });
      for (const permission of PERMISSIONS) assert.equal(scopeFor(permission), null, rolesClaim);
    }
  });
});

describe('formatBearerChallenge', () => {
  test('a scope of valid scope-tokens is quoted as it is', () => {
    assert.equal(
      formatBearerChallenge('maos', 'insufficient_scope', 'requires audit:read', { scope: 'auditor maos.x' }),
      'Bearer realm="maos", error="insufficient_scope", error_description="requires audit:read", scope="auditor maos.x"',
    );
  });

  test('an invalid scope is left out, never mended into another scope', () => {
    for (const scope of ['a"b', 'a\\b', 'a  b', ' a', 'a ', '', 'a\tb', 'ä', 'a", error="x']) {
      assert.equal(
        formatBearerChallenge('maos', 'insufficient_scope', 'd', { scope }),
        'Bearer realm="maos", error="insufficient_scope", error_description="d"',
        JSON.stringify(scope),
      );
    }
  });

  test('each attribute at most once; attribute names are tokens', () => {
    assert.equal(
      formatBearerChallenge('maos', 'invalid_token', 'd', { error: 'x', realm: 'y', 'a b': 'z', scope: 's' }),
      'Bearer realm="maos", error="invalid_token", error_description="d", scope="s"',
    );
  });
});
