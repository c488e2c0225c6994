// A grant of a binding that a revocation removes at the same moment answers a binding, never the
// "no result" of a row read back after it was deleted (which the API answered 500), on both stores.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { grantRole, listRoleBindingPage, revokeRole } from '../../src/security/role-bindings.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

const ROUNDS = 40;

for (const backend of STORE_BACKENDS) {
  describe(`role binding grant racing its revocation (${backend.name})`, { timeout: 60_000 }, () => {
    test('the grant answers the binding it leaves or the one it made', async () => {
      const { handles, dispose } = await backend.open(1);
      try {
        const db = handles[0]!.db as unknown as SecurityDb;
        const binding = { tenantId: 't1', principal: 'alice', role: 'viewer' as const };
        for (let round = 0; round < ROUNDS; round++) {
          await grantRole(db, { ...binding, createdBy: 'setup' });
          const [granted, revoked] = await Promise.allSettled([
            grantRole(db, { ...binding, createdBy: 'racer' }),
            revokeRole(db, binding),
          ]);
          assert.equal(
            granted.status,
            'fulfilled',
            `round ${round}: ${String((granted as { reason?: unknown }).reason)}`,
          );
          assert.equal(revoked.status, 'fulfilled');
          const answer = granted.value;
          assert.equal(answer.binding.principal, 'alice');
          assert.equal(answer.binding.role, 'viewer');
          const { items: left } = await listRoleBindingPage(db, 't1', { principal: 'alice', limit: 10 });
          // Granted after the revocation: the grant made it again (201) and it stays.
          if (left.length === 1) assert.equal(answer.created, true, `round ${round}`);
          if (left.length === 1) await revokeRole(db, binding);
        }
      } finally {
        await dispose();
      }
    });
  });
}
