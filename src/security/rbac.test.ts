import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import {
  authorize,
  BUILT_IN_ROLES,
  hasPermission,
  listPermissionTable,
  PERMISSIONS,
  ROLE_PERMISSIONS,
} from './rbac.ts';

describe('rbac permission table', () => {
  test('every role × permission decision follows the single table', () => {
    for (const role of BUILT_IN_ROLES) {
      for (const permission of PERMISSIONS) {
        const expected =
          ROLE_PERMISSIONS[role].includes('admin:*') || ROLE_PERMISSIONS[role].includes(permission);
        assert.equal(hasPermission([role], permission), expected, `${role} ${permission}`);
      }
    }
  });

  test('deny by default: no roles and unknown roles grant nothing', () => {
    for (const permission of PERMISSIONS) {
      assert.equal(hasPermission([], permission), false);
      assert.equal(hasPermission(['root', 'Admin', ''], permission), false);
    }
  });

  test('expected shape of the built-in roles', () => {
    assert.equal(hasPermission(['viewer'], 'sessions:read'), true);
    assert.equal(hasPermission(['viewer'], 'sessions:create'), false);
    assert.equal(hasPermission(['operator'], 'sessions:approve'), true);
    assert.equal(hasPermission(['developer'], 'sessions:approve'), false);
    assert.equal(hasPermission(['auditor'], 'audit:read'), true);
    assert.equal(hasPermission(['auditor'], 'keys:manage'), false);
    assert.equal(hasPermission(['admin'], 'keys:manage'), true);
    assert.equal(hasPermission(['viewer', 'auditor'], 'audit:read'), true);
  });

  test('published table lists every permission with its roles', () => {
    const table = listPermissionTable();
    assert.deepEqual(
      table.map((row) => row.permission),
      [...PERMISSIONS],
    );
    for (const row of table) assert.ok(row.roles.includes('admin'), row.permission);
    assert.deepEqual(table.find((r) => r.permission === 'audit:read')?.roles, ['auditor', 'admin']);
  });
});

describe('authorize', () => {
  const subject = { tenantId: 't1', roles: ['viewer'] };

  test('tenant is checked before the permission: foreign object is NOT_FOUND', () => {
    assert.throws(
      () => authorize({ ...subject, roles: ['admin'] }, 'sessions:read', 't2'),
      (e: unknown) => e instanceof AppError && e.code === 'NOT_FOUND',
    );
    // even when the permission is missing too, the answer is 404, not 403
    assert.throws(
      () => authorize(subject, 'keys:manage', 't2'),
      (e: unknown) => e instanceof AppError && e.code === 'NOT_FOUND',
    );
  });

  test('missing permission is PERMISSION_DENIED; granted passes', () => {
    assert.throws(
      () => authorize(subject, 'sessions:create'),
      (e: unknown) => e instanceof AppError && e.code === 'PERMISSION_DENIED' && e.status === 403,
    );
    assert.doesNotThrow(() => authorize(subject, 'sessions:read', 't1'));
  });
});

describe('docs/security.md', () => {
  test('embeds the permission table exactly as the code defines it', async () => {
    const { readFileSync } = await import('node:fs');
    const { formatPermissionTableMarkdown } = await import('./rbac.ts');
    const doc = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
    const embedded = /<!-- permission-table:start -->\n([\s\S]*?)\n<!-- permission-table:end -->/.exec(
      doc,
    )?.[1];
    assert.equal(embedded, formatPermissionTableMarkdown());
  });
});
