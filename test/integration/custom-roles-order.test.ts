// GET /v1/roles lists a tenant's custom roles in one defined order on both stores: by name in code
// point order, whatever the database's collation (SQLite compares bytes; a PostgreSQL database
// created with a language locale would otherwise order `_` and digits its own way).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import type { LlmDb } from '../../src/agents/providers/llm-tables.ts';
import { BUILT_IN_ROLES } from '../../src/agents/roles/catalogue.ts';
import { createRoleService } from '../../src/agents/roles/role-service.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

/** Names a language collation orders otherwise than code points ('_' vs digits vs letters). */
const NAMES = ['database_admin', 'data_analyst', 'data2_analyst', 'qa_lead', 'qa2'];

for (const backend of STORE_BACKENDS) {
  describe(`custom roles order (${backend.name})`, { timeout: 60_000 }, () => {
    test('built-in roles first, then custom roles by name in code point order', async () => {
      const { handles, dispose } = await backend.open(1);
      try {
        const db = handles[0]!.db as unknown as LlmDb;
        if (backend.name === 'postgres') {
          // As in a database created with an English locale (the test server's default is C).
          await sql`alter table custom_roles alter column name type text collate "en-US-x-icu"`.execute(db);
        }
        const roles = createRoleService(db);
        for (const name of NAMES) {
          await roles.createRole('t1', 'u', {
            name,
            description: 'Checks the work of the others.',
            instructions: 'You check the work of the others and list what is missing.',
          });
        }
        const listed = (await roles.listRoles('t1')).map((role) => role.name);
        const custom = [...NAMES].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        assert.deepEqual(custom, ['data2_analyst', 'data_analyst', 'database_admin', 'qa2', 'qa_lead']);
        assert.deepEqual(listed, [...BUILT_IN_ROLES.map((role) => role.name), ...custom]);
      } finally {
        await dispose();
      }
    });
  });
}
