// Migration 0023_session_requested_budget on both stores: a session stored before it cannot tell its
// own budget from its tenant's, so it gets its effective budget as its own (its retries stay as
// strict as before the upgrade); a session without a budget keeps none.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { configSchema } from '../../src/config/schema.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { MIGRATIONS } from '../../src/store/migrations/index.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';

const NOW = Date.UTC(2026, 0, 1);
const BEFORE = MIGRATIONS.findIndex((m) => m.name === '0023_session_requested_budget');

/** A database of `backend` with every migration before 0023 applied. */
async function openBefore(
  backend: 'sqlite' | 'postgres',
): Promise<{ handle: DatabaseHandle; dispose(): Promise<void> }> {
  if (backend === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'maos-migration-0023-'));
    const handle = createDatabase(configSchema.parse({ dataDir: dir }));
    await migrateToLatest(handle.db, MIGRATIONS.slice(0, BEFORE));
    return { handle, dispose: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const database = await createTestDatabase({ empty: true });
  const handle = createDatabase(configSchema.parse({ dataDir: tmpdir(), store: { url: database.url } }));
  await migrateToLatest(handle.db, MIGRATIONS.slice(0, BEFORE));
  return { handle, dispose: () => database.drop() };
}

// biome-ignore lint/suspicious/noExplicitAny: rows of an older schema than the current types
async function seedSession(db: Kysely<any>, id: string, budget: string | null): Promise<void> {
  await db
    .insertInto('sessions')
    .values({
      id,
      tenant_id: 'default',
      objective: 'stored before 0023',
      strategy: 'parallel',
      status: 'failed',
      metadata: '{}',
      plan_version: 1,
      last_seq: 0,
      created_at: NOW,
      updated_at: NOW,
    })
    .execute();
  await db
    .insertInto('session_settings')
    .values({ session_id: id, tenant_id: 'default', approval: 'required', budget, created_at: NOW })
    .execute();
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`migration 0023 on ${backend}`, () => {
    test('a budget stored before it becomes the session’s own; none stays none', async () => {
      const { handle, dispose } = await openBefore(backend);
      try {
        const budgeted = '01a23000-0000-7000-8000-000000000001';
        const unbudgeted = '01a23000-0000-7000-8000-000000000002';
        await seedSession(handle.db, budgeted, '{"maxTokens":1000}');
        await seedSession(handle.db, unbudgeted, null);
        await migrateToLatest(handle.db);
        const rows = await handle.db
          .selectFrom('session_settings')
          .select(['session_id', 'budget', 'requested_budget'])
          .orderBy('session_id')
          .execute();
        assert.deepEqual(rows, [
          { session_id: budgeted, budget: '{"maxTokens":1000}', requested_budget: '{"maxTokens":1000}' },
          { session_id: unbudgeted, budget: null, requested_budget: null },
        ]);
      } finally {
        await handle.close();
        await dispose();
      }
    });
  });
}
