// The per-day spend ledger (tenant_usage_days): a session's spend counts toward the UTC day it was
// charged, not the day the session was created; one batch's charges are summed per tenant; the
// daily token quota reads today's row; the migration fills the ledger from existing sessions by their creation day. SQLite and PostgreSQL
// (PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { configSchema } from '../../src/config/schema.ts';
import type { Usage } from '../../src/domain/types.ts';
import { advanceSessions, chargeSessionUsage, type Touched } from '../../src/engine/advance-sessions.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { createTenantQuotas } from '../../src/security/quotas.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { MIGRATIONS } from '../../src/store/migrations/index.ts';
import { newSessionRow, newTaskRow } from '../../src/store/rows.ts';
import type { Database } from '../../src/store/schema.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

const DAY1 = Date.parse('2026-03-09T00:00:00Z');
const DAY2 = DAY1 + 86_400_000;

function usage(inputTokens: number, costUsd = 0): Usage {
  return { inputTokens, outputTokens: inputTokens * 2, cacheReadTokens: 1, costUsd };
}

/** Inserts a session created at `createdAt` (with `spent` already on it) and one running task. */
async function seedSession(
  db: Kysely<Database>,
  tenant: string,
  createdAt: number,
  spent: Usage = usage(0),
): Promise<string> {
  const id = randomUUID();
  await db
    .insertInto('sessions')
    .values({
      ...newSessionRow(
        {
          id,
          tenant_id: tenant,
          objective: 'x',
          strategy: 'static',
          status: 'running',
          metadata: '{}',
          started_at: createdAt,
        },
        createdAt,
      ),
      input_tokens: spent.inputTokens,
      output_tokens: spent.outputTokens,
      cache_read_tokens: spent.cacheReadTokens,
      cost_usd: spent.costUsd,
    })
    .execute();
  await db
    .insertInto('tasks')
    .values(
      newTaskRow(
        { tenantId: tenant, sessionId: id, maxAttempts: 1, now: createdAt },
        {
          id: randomUUID(),
          kind: 'agent',
          name: 't',
          role: 'engineer',
          agent_id: null,
          instructions: 'x',
          runner: null,
          phase: 0,
          position: 0,
          status: 'running',
        },
      ),
    )
    .execute();
  return id;
}

async function ledger(db: Kysely<Database>, tenant: string) {
  const rows = await db
    .selectFrom('tenant_usage_days')
    .selectAll()
    .where('tenant_id', '=', tenant)
    .orderBy('day')
    .execute();
  return rows.map((row) => ({
    day: new Date(Number(row.day)).toISOString().slice(0, 10),
    inputTokens: Number(row.input_tokens),
    outputTokens: Number(row.output_tokens),
    cacheReadTokens: Number(row.cache_read_tokens),
    costUsd: Number(row.cost_usd),
  }));
}

for (const backend of STORE_BACKENDS) {
  describe(`tenant usage days: ${backend.name}`, { timeout: 60_000 }, () => {
    let store: Awaited<ReturnType<typeof backend.open>>;
    let db: Kysely<Database>;
    before(async () => {
      store = await backend.open(1);
      db = store.handles[0]!.db;
      await db
        .insertInto('tenants')
        .values(['acme', 'globex'].map((id) => ({ id, name: id, created_at: 0 })))
        .execute();
    });
    after(async () => {
      await store?.dispose();
    });

    test('spend after midnight counts toward the day it was charged, summed per tenant', async () => {
      const first = await seedSession(db, 'acme', DAY2 - 60_000);
      const second = await seedSession(db, 'acme', DAY1 + 3600_000);
      const other = await seedSession(db, 'globex', DAY2 - 1);
      // Charged before midnight, then a finish batch of three sessions (two tenants) after it.
      await db.transaction().execute((trx) => chargeSessionUsage(trx, first, usage(5, 0.25), DAY2 - 1000));
      const touched = new Map<string, Touched>([
        [first, { tenantId: 'acme', events: [], usage: usage(10, 0.5) }],
        [second, { tenantId: 'acme', events: [], usage: usage(20, 1) }],
        [other, { tenantId: 'globex', events: [], usage: usage(7) }],
      ]);
      await db.transaction().execute((trx) => advanceSessions(trx, touched, DAY2 + 1000));
      // A run settled outside its finish (stopped run, reaper, cancel) after midnight.
      await db.transaction().execute((trx) => chargeSessionUsage(trx, first, usage(1), DAY2 + 5000));
      assert.deepEqual(await ledger(db, 'acme'), [
        { day: '2026-03-09', inputTokens: 5, outputTokens: 10, cacheReadTokens: 1, costUsd: 0.25 },
        { day: '2026-03-10', inputTokens: 31, outputTokens: 62, cacheReadTokens: 3, costUsd: 1.5 },
      ]);
      assert.deepEqual(await ledger(db, 'globex'), [
        { day: '2026-03-10', inputTokens: 7, outputTokens: 14, cacheReadTokens: 1, costUsd: 0 },
      ]);
      // The sessions' own totals are charged as before.
      const row = await db
        .selectFrom('sessions')
        .select('input_tokens')
        .where('id', '=', first)
        .executeTakeFirstOrThrow();
      assert.equal(Number(row.input_tokens), 16);
    });

    test('the daily quota counts what was charged today, whatever day the session was created', async () => {
      await db.insertInto('tenants').values({ id: 'initech', name: 'initech', created_at: 0 }).execute();
      const quotas = createTenantQuotas(
        db,
        { maxConcurrentSessionsPerTenant: 0, maxDailyTokensPerTenant: 90 },
        () => new Date(DAY2 + 60_000),
      );
      const overnight = await seedSession(db, 'initech', DAY2 - 60_000);
      await db.transaction().execute((trx) => chargeSessionUsage(trx, overnight, usage(100), DAY2 - 1));
      await quotas.assertSessionAllowed('initech');
      await db.transaction().execute((trx) => chargeSessionUsage(trx, overnight, usage(30), DAY2 + 1));
      // Checked inside a transaction too, as the session insert's admission does.
      await assert.rejects(
        db.transaction().execute((trx) => quotas.assertSessionAllowed('initech', trx)),
        (e: unknown) =>
          e instanceof AppError && e.code === 'QUOTA_EXCEEDED' && /used 90 tokens today/.test(e.message),
      );
    });
  });
}

/** An empty database of `backend`, migrated up to (not including) 0013, and a way to drop it. */
async function openBeforeLedger(name: 'sqlite' | 'postgres') {
  let dispose: () => Promise<void>;
  let config: ReturnType<typeof configSchema.parse>;
  if (name === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'maos-usage-days-'));
    config = configSchema.parse({ dataDir: dir });
    dispose = async () => rmSync(dir, { recursive: true, force: true });
  } else {
    const database = await createTestDatabase({ empty: true });
    config = configSchema.parse({ dataDir: tmpdir(), store: { url: database.url } });
    dispose = () => database.drop();
  }
  const handle = createDatabase(config);
  await migrateToLatest(
    handle.db,
    MIGRATIONS.filter((entry) => entry.name < '0013'),
  );
  return {
    db: handle.db,
    async close() {
      await handle.close();
      await dispose();
    },
  };
}

for (const backend of STORE_BACKENDS) {
  test(`the migration fills the ledger from existing sessions by their creation day: ${backend.name}`, async () => {
    const store = await openBeforeLedger(backend.name);
    try {
      const { db } = store;
      await db
        .insertInto('tenants')
        .values(['acme', 'globex'].map((id) => ({ id, name: id, created_at: 0 })))
        .execute();
      await seedSession(db, 'acme', DAY1 + 1, usage(3, 0.5));
      await seedSession(db, 'acme', DAY2 - 1, usage(4, 0.25));
      await seedSession(db, 'acme', DAY2, usage(100));
      await seedSession(db, 'globex', DAY1, {
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        costUsd: 0,
      });
      await migrateToLatest(db);
      assert.deepEqual(await ledger(db, 'acme'), [
        { day: '2026-03-09', inputTokens: 7, outputTokens: 14, cacheReadTokens: 2, costUsd: 0.75 },
        { day: '2026-03-10', inputTokens: 100, outputTokens: 200, cacheReadTokens: 1, costUsd: 0 },
      ]);
      assert.deepEqual(await ledger(db, 'globex'), []);
    } finally {
      await store.close();
    }
  });
}
