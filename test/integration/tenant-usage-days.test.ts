// The per-day spend ledger (tenant_usage_days): a session's spend counts toward the UTC day it was
// charged, not the day the session was created; one batch's charges are summed per tenant; the
// daily token quota reads today's row; the migration fills the ledger from existing sessions by their creation day; on
// PostgreSQL a finish locks the tenant's row of the day only at its end. SQLite and PostgreSQL
// (PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Kysely, sql } from 'kysely';
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
import { createTestDatabase, isLockTimeout } from '../fixtures/postgres.ts';
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

/**
 * Seeds a session whose running task `t` has succeeded and whose task `next` (pending) depends on
 * it: advancing the session readies `next`. Returns the session's and `next`'s ids.
 */
async function seedChain(db: Kysely<Database>, tenant: string, now: number) {
  const sessionId = await seedSession(db, tenant, now);
  await db.updateTable('tasks').set({ status: 'succeeded' }).where('session_id', '=', sessionId).execute();
  const first = await db
    .selectFrom('tasks')
    .select('id')
    .where('session_id', '=', sessionId)
    .executeTakeFirstOrThrow();
  const nextId = randomUUID();
  await db
    .insertInto('tasks')
    .values(
      newTaskRow(
        { tenantId: tenant, sessionId, maxAttempts: 1, now },
        {
          id: nextId,
          kind: 'agent',
          name: 'next',
          role: 'engineer',
          agent_id: null,
          instructions: 'x',
          runner: null,
          phase: 0,
          position: 1,
          status: 'pending',
        },
      ),
    )
    .execute();
  await db
    .insertInto('task_dependencies')
    .values({ task_id: nextId, depends_on_task_id: first.id, session_id: sessionId, tenant_id: tenant })
    .execute();
  return { sessionId, nextId };
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

    // Every finish of a tenant's tasks, on every replica, upserts the same row and holds its lock
    // until commit: a finish held up in its other writes must not hold it meanwhile.
    test('a finish waiting in its other writes does not hold the tenant’s row of the day', {
      skip: backend.name !== 'postgres' && 'row locks between connections: PostgreSQL only',
    }, async () => {
      await db.insertInto('tenants').values({ id: 'hooli', name: 'hooli', created_at: 0 }).execute();
      const { sessionId, nextId } = await seedChain(db, 'hooli', DAY1);
      let releaseBlocker!: () => void;
      const blocking = new Promise<void>((resolve) => {
        releaseBlocker = resolve;
      });
      let blockerLocked!: () => void;
      const locked = new Promise<void>((resolve) => {
        blockerLocked = resolve;
      });
      // Another transaction holds the dependant's row, so the finish waits when readying it.
      const blocker = db.connection().execute(async (conn) => {
        await sql`begin`.execute(conn);
        await sql`select id from tasks where id = ${nextId} for update`.execute(conn);
        blockerLocked();
        await blocking;
        await sql`rollback`.execute(conn);
      });
      await locked;
      const touched = new Map<string, Touched>([
        [sessionId, { tenantId: 'hooli', events: [], usage: usage(10) }],
      ]);
      const finish = db.transaction().execute((trx) => advanceSessions(trx, touched, DAY1 + 1000));
      // Meanwhile another replica's finish charges the same tenant and day.
      const otherReplicaCharged = await db.connection().execute(async (conn) => {
        for (let waited = 0; ; waited += 20) {
          const { rows } = await sql<{ n: number }>`
            select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
            where not l.granted and a.datname = current_database()
          `.execute(conn);
          if (rows[0]!.n > 0) break;
          if (waited > 10_000) throw new Error('the finish never waited for the dependant’s row');
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await sql`begin`.execute(conn);
        try {
          await sql`set local lock_timeout = '300ms'`.execute(conn);
          await sql`
            insert into tenant_usage_days (tenant_id, day, input_tokens, output_tokens, cache_read_tokens, cost_usd)
            values ('hooli', ${DAY1}, 1, 1, 0, 0)
            on conflict (tenant_id, day) do update set input_tokens = tenant_usage_days.input_tokens + 1
          `.execute(conn);
          await sql`commit`.execute(conn);
          return true;
        } catch (error) {
          await sql`rollback`.execute(conn);
          if (isLockTimeout(error)) return false;
          throw error;
        }
      });
      releaseBlocker();
      await blocker;
      await finish;
      assert.equal(otherReplicaCharged, true, 'the other charge waited for the held-up finish');
      assert.deepEqual(await ledger(db, 'hooli'), [
        { day: '2026-03-09', inputTokens: 11, outputTokens: 21, cacheReadTokens: 1, costUsd: 0 },
      ]);
      const next = await db
        .selectFrom('tasks')
        .select('status')
        .where('id', '=', nextId)
        .executeTakeFirstOrThrow();
      assert.equal(next.status, 'ready');
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
