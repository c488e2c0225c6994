// GET /v1/usage?groupBy=role lists its role groups in one defined order on both stores: by role name
// in code point order, whatever the database's collation (a PostgreSQL database created with a
// language locale orders `_` and digits otherwise than SQLite's bytes).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { readUsageReport } from '../../src/engine/usage-report.ts';
import { newSessionRow, newTaskRow } from '../../src/store/rows.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

const ROLES = ['database_admin', 'data_analyst', 'data2_analyst', 'qa_lead', 'qa2'];
const AT = Date.parse('2026-10-01T00:00:00Z');

for (const backend of STORE_BACKENDS) {
  describe(`usage role groups order (${backend.name})`, { timeout: 60_000 }, () => {
    test('role groups come in code point order of their names', async () => {
      const { handles, dispose } = await backend.open(1);
      try {
        const db = handles[0]!.db;
        if (backend.name === 'postgres') {
          // As in a database created with an English locale (the test server's default is C).
          await sql`alter table tasks alter column role type text collate "en-US-x-icu"`.execute(db);
        }
        await db.insertInto('tenants').values({ id: 'acme', name: 'acme', created_at: 0 }).execute();
        const sessionId = randomUUID();
        await db
          .insertInto('sessions')
          .values(
            newSessionRow(
              {
                id: sessionId,
                tenant_id: 'acme',
                objective: 'order probe',
                strategy: 'static',
                status: 'succeeded',
                metadata: '{}',
                started_at: AT,
              },
              AT,
            ),
          )
          .execute();
        for (const [position, role] of ROLES.entries()) {
          await db
            .insertInto('tasks')
            .values(
              newTaskRow(
                { tenantId: 'acme', sessionId, maxAttempts: 1, now: AT },
                {
                  id: randomUUID(),
                  kind: 'agent',
                  name: `t${position}`,
                  role,
                  agent_id: null,
                  instructions: 'x',
                  runner: null,
                  phase: 0,
                  position,
                  status: 'succeeded',
                },
              ),
            )
            .execute();
        }
        const report = await readUsageReport(db, {
          tenantId: 'acme',
          fromMs: AT,
          toMs: AT + 86_400_000,
          groupBy: 'role',
        });
        assert.deepEqual(
          report.groups?.map((group) => group.key),
          ['data2_analyst', 'data_analyst', 'database_admin', 'qa2', 'qa_lead'],
        );
      } finally {
        await dispose();
      }
    });
  });
}
