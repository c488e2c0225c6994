// GET /v1/admin/role-bindings lists a tenant's bindings in one defined order on both stores: by
// principal, then role, in code point order, whatever the database's collation (SQLite compares
// bytes; a PostgreSQL database created with a language locale would fold case and accents); its
// pages follow that order, each binding on one page.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { grantRole, listRoleBindingPage } from '../../src/security/role-bindings.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

/** Principals a language collation orders otherwise than code points (case, accents, `_`). */
const PRINCIPALS = ['émile', 'alice', 'Zoe', 'ada_1', 'Bob', 'ada1', 'Émile'];

for (const backend of STORE_BACKENDS) {
  describe(`role bindings order (${backend.name})`, { timeout: 60_000 }, () => {
    test('by principal, then role, in code point order', async () => {
      const { handles, dispose } = await backend.open(1);
      try {
        const db = handles[0]!.db as unknown as SecurityDb;
        if (backend.name === 'postgres') {
          // As in a database created with an English locale (the test server's default is C).
          await sql`alter table role_bindings alter column principal_id type text collate "en-US-x-icu"`.execute(
            db,
          );
        }
        for (const principal of PRINCIPALS) {
          for (const role of ['viewer', 'admin'] as const) {
            await grantRole(db, { tenantId: 't1', principal, role, createdBy: 'setup' });
          }
        }
        const listed = (await listRoleBindingPage(db, 't1', { limit: 1000 })).items.map(
          (binding) => `${binding.principal} ${binding.role}`,
        );
        assert.deepEqual(listed, [
          'Bob admin',
          'Bob viewer',
          'Zoe admin',
          'Zoe viewer',
          'ada1 admin',
          'ada1 viewer',
          'ada_1 admin',
          'ada_1 viewer',
          'alice admin',
          'alice viewer',
          'Émile admin',
          'Émile viewer',
          'émile admin',
          'émile viewer',
        ]);
        // Page by page (the cursor compared in the same order), also one page per binding.
        for (const limit of [1, 3]) {
          const paged: string[] = [];
          let cursor: string | undefined;
          do {
            const page = await listRoleBindingPage(db, 't1', { limit, cursor });
            assert.ok(page.items.length <= limit);
            paged.push(...page.items.map((binding) => `${binding.principal} ${binding.role}`));
            cursor = page.nextCursor ?? undefined;
          } while (cursor !== undefined);
          assert.deepEqual(paged, listed, `pages of ${limit}`);
        }
      } finally {
        await dispose();
      }
    });
  });
}
