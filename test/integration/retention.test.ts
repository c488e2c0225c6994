// Retention job contract on SQLite and PostgreSQL: finished sessions' old events, outputs, messages,
// artifacts, idempotency keys and old LLM response cache entries are deleted in bounded batches; running sessions, recent sessions
// and the audit log are kept; two replicas running passes at once delete every row exactly once;
// on PostgreSQL a pass is single-flight through the retention advisory lock.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Kysely, sql } from 'kysely';
import { createLogger } from '../../src/observability/logger.ts';
import { METRIC_LABELS } from '../../src/observability/metric-labels.ts';
import { LOCK_KEYS } from '../../src/store/advisory-lock.ts';
import type { DatabaseHandle } from '../../src/store/db.ts';
import { runRetentionPass, startRetentionJob } from '../../src/store/retention.ts';
import {
  buildRetentionTargets,
  RETENTION_TABLES,
  type RetentionTable,
} from '../../src/store/retention-targets.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

// biome-ignore lint/suspicious/noExplicitAny: seeds tables of several areas' schemas
type AnyDb = Kysely<any>;

const DAY = 86_400_000;
const NOW = Date.now();
const TENANT = 'default';
const retention = {
  intervalSeconds: 3600,
  batchSize: 25,
  eventsDays: 90,
  outputsDays: 30,
  messagesDays: 90,
  idempotencyKeysDays: 7,
  responseCacheDays: 30,
};

interface SeedSession {
  id: string;
  status: string;
  finishedDaysAgo: number | null;
  lifecycleEvents: number;
  outputEvents: number;
  messages: number;
  artifacts: number;
  keyDaysAgo?: number;
}

async function seedSession(db: AnyDb, s: SeedSession): Promise<void> {
  const finishedAt = s.finishedDaysAgo === null ? null : NOW - s.finishedDaysAgo * DAY;
  const created = NOW - 400 * DAY;
  await db
    .insertInto('sessions')
    .values({
      id: s.id,
      tenant_id: TENANT,
      objective: 'retention',
      strategy: 'parallel',
      status: s.status,
      last_seq: s.lifecycleEvents + s.outputEvents,
      created_at: created,
      updated_at: created,
      finished_at: finishedAt,
    })
    .execute();
  const events = [];
  for (let seq = 1; seq <= s.lifecycleEvents + s.outputEvents; seq++) {
    const type = seq <= s.lifecycleEvents ? 'task.status' : 'task.output';
    events.push({ session_id: s.id, seq, tenant_id: TENANT, type, data: '{}', created_at: created });
  }
  if (events.length > 0) await db.insertInto('events').values(events).execute();
  for (let i = 0; i < s.messages; i++) {
    await db
      .insertInto('messages')
      .values({ id: `${s.id}-m${i}`, tenant_id: TENANT, session_id: s.id, body: 'hi', created_at: created })
      .execute();
  }
  for (let i = 0; i < s.artifacts; i++) {
    await db
      .insertInto('artifacts')
      .values({
        id: `${s.id}-a${i}`,
        tenant_id: TENANT,
        session_id: s.id,
        name: 'out.txt',
        media_type: 'text/plain',
        content: 'x',
        sha256: '0'.repeat(64),
        created_at: created,
      })
      .execute();
  }
  if (s.keyDaysAgo !== undefined) {
    await db
      .insertInto('idempotency_keys')
      .values({
        tenant_id: TENANT,
        key: `key-${s.id}`,
        request_hash: 'h',
        session_id: s.id,
        created_at: NOW - s.keyDaysAgo * DAY,
      })
      .execute();
  }
}

const BULK = 12;
/** The fixture: who keeps what is asserted in `expectRemaining`. */
async function seedAll(db: AnyDb): Promise<void> {
  await seedSession(db, {
    id: 'running-old',
    status: 'running',
    finishedDaysAgo: null,
    lifecycleEvents: 3,
    outputEvents: 4,
    messages: 2,
    artifacts: 1,
    keyDaysAgo: 100,
  });
  await seedSession(db, {
    id: 'done-recent',
    status: 'completed',
    finishedDaysAgo: 1,
    lifecycleEvents: 3,
    outputEvents: 2,
    messages: 1,
    artifacts: 1,
    keyDaysAgo: 1,
  });
  // Outputs and key expired; lifecycle events and messages not yet.
  await seedSession(db, {
    id: 'done-45d',
    status: 'failed',
    finishedDaysAgo: 45,
    lifecycleEvents: 3,
    outputEvents: 5,
    messages: 2,
    artifacts: 2,
    keyDaysAgo: 45,
  });
  for (let i = 0; i < BULK; i++) {
    await seedSession(db, {
      id: `done-old-${String(i).padStart(2, '0')}`,
      status: i % 2 === 0 ? 'completed' : 'cancelled',
      finishedDaysAgo: 120,
      lifecycleEvents: 4,
      outputEvents: 6,
      messages: 3,
      artifacts: 1,
      keyDaysAgo: 120,
    });
  }
  // LLM response cache entries: a TTL from when they were stored, whoever's they are.
  for (const [key, daysAgo] of [
    ['fresh', 2],
    ['stale-1', 31],
    ['stale-2', 400],
  ] as const) {
    await db
      .insertInto('llm_response_cache')
      .values({
        tenant_id: TENANT,
        key,
        provider: 'p',
        model: 'm',
        response: '{}',
        hits: 0,
        created_at: NOW - daysAgo * DAY,
        last_hit_at: null,
      })
      .execute();
  }
  // The audit log is a hash chain: retention never deletes from it, however old.
  await db
    .insertInto('audit_log')
    .values({
      seq: 1,
      id: 'audit-1',
      time: '2020-01-01T00:00:00.000Z',
      tenant_id: null,
      action: 'old.action',
      outcome: 'success',
      event: '{}',
      prev_hash: '0'.repeat(64),
      hash: '1'.repeat(64),
    })
    .execute();
}

/** Rows the seed deletes: outputs of done-45d and every done-old; all events, messages, artifacts, keys of done-old. */
const EXPECTED_DELETED: Record<string, number> = {
  events: 5 + BULK * 10,
  artifacts: 2 + BULK,
  messages: BULK * 3,
  idempotency_keys: 1 + BULK,
  llm_response_cache: 2,
};

async function countBy(db: AnyDb, table: string): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom(table)
    .select(['session_id', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy('session_id')
    .execute();
  return Object.fromEntries(rows.map((row) => [row.session_id as string, Number(row.n)]));
}

async function expectRemaining(db: AnyDb): Promise<void> {
  assert.deepEqual(await countBy(db, 'events'), { 'running-old': 7, 'done-recent': 5, 'done-45d': 3 });
  const outputs45 = await db
    .selectFrom('events')
    .select('type')
    .where('session_id', '=', 'done-45d')
    .where('type', '=', 'task.output')
    .execute();
  assert.equal(outputs45.length, 0);
  assert.deepEqual(await countBy(db, 'messages'), { 'running-old': 2, 'done-recent': 1, 'done-45d': 2 });
  assert.deepEqual(await countBy(db, 'artifacts'), { 'running-old': 1, 'done-recent': 1 });
  assert.deepEqual(await countBy(db, 'idempotency_keys'), { 'running-old': 1, 'done-recent': 1 });
  const cache = await db.selectFrom('llm_response_cache').select('key').execute();
  assert.deepEqual(
    cache.map((row) => row.key),
    ['fresh'],
  );
  // Sessions themselves and the audit log stay.
  const sessions = await db.selectFrom('sessions').select('id').execute();
  assert.equal(sessions.length, 3 + BULK);
  const audit = await db.selectFrom('audit_log').select('id').execute();
  assert.deepEqual(
    audit.map((row) => row.id),
    ['audit-1'],
  );
}

function sum(into: Record<string, number>, from: Partial<Record<RetentionTable, number>>): void {
  for (const [table, n] of Object.entries(from)) into[table] = (into[table] ?? 0) + (n ?? 0);
}

for (const backend of STORE_BACKENDS) {
  describe(`retention: ${backend.name}`, { timeout: 120_000 }, () => {
    let handles: DatabaseHandle[];
    let dispose: () => Promise<void>;
    before(async () => {
      const opened = await backend.open(2);
      handles = opened.handles;
      dispose = opened.dispose;
    });
    after(async () => {
      await dispose?.();
    });

    test('two replicas pass at once: old rows of finished sessions deleted once, the rest kept', async () => {
      const [a, b] = handles as [DatabaseHandle, DatabaseHandle];
      await seedAll(a.db);
      // Few sessions per batch: a pass needs several session windows, not just several batches.
      const targets = buildRetentionTargets(retention, {
        postgres: backend.name === 'postgres',
        sessionsPerBatch: 5,
      });
      const counted: Record<string, number> = {};
      const results = await Promise.all(
        [a, b].map((handle) =>
          runRetentionPass(handle.db, targets, {
            batchSize: retention.batchSize,
            now: NOW,
            onDeleted: (table, n) => sum(counted, { [table]: n }),
          }),
        ),
      );
      const deleted: Record<string, number> = {};
      for (const result of results) sum(deleted, result.deleted);
      // Every qualifying row was deleted, and by exactly one of the two replicas.
      assert.deepEqual(deleted, EXPECTED_DELETED);
      assert.deepEqual(counted, EXPECTED_DELETED);
      await expectRemaining(a.db);
      // A later pass finds nothing left.
      const again = await runRetentionPass(b.db, targets, { batchSize: retention.batchSize, now: NOW });
      assert.deepEqual(again, { skipped: false, deleted: {} });
    });

    test('0 keeps forever: a pass with every TTL at 0 deletes nothing', async () => {
      const off = {
        ...retention,
        eventsDays: 0,
        outputsDays: 0,
        messagesDays: 0,
        idempotencyKeysDays: 0,
        responseCacheDays: 0,
      };
      const [a] = handles as [DatabaseHandle];
      await seedSession(a.db, {
        id: 'kept-forever',
        status: 'completed',
        finishedDaysAgo: 3000,
        lifecycleEvents: 2,
        outputEvents: 2,
        messages: 1,
        artifacts: 1,
        keyDaysAgo: 3000,
      });
      const targets = buildRetentionTargets(off, { postgres: false });
      assert.equal(targets.length, 0);
      const job = startRetentionJob({ db: a.db, config: off, logger: createLogger({ level: 'silent' }) });
      assert.deepEqual(await job.runOnce(), { skipped: false, deleted: {} });
      await job.stop();
      assert.equal((await countBy(a.db, 'events'))['kept-forever'], 4);
      // With the defaults the same session's rows go.
      const on = startRetentionJob({
        db: a.db,
        config: retention,
        logger: createLogger({ level: 'silent' }),
      });
      const result = await on.runOnce();
      await on.stop();
      assert.equal(result.deleted.events, 4);
      assert.equal((await countBy(a.db, 'events'))['kept-forever'], undefined);
    });

    if (backend.name === 'postgres') {
      test('single-flight: while another session holds the retention lock a pass skips', async () => {
        const [a] = handles as [DatabaseHandle];
        await seedSession(a.db, {
          id: 'locked-out',
          status: 'completed',
          finishedDaysAgo: 200,
          lifecycleEvents: 2,
          outputEvents: 0,
          messages: 0,
          artifacts: 0,
        });
        await a.db
          .insertInto('rate_limits' as never)
          .values({ key: 'maos-tenant:gone', points: 3, expire: NOW - 1000 } as never)
          .execute();
        await a.db
          .insertInto('rate_limits' as never)
          .values({ key: 'maos-tenant:live', points: 3, expire: NOW + 60_000 } as never)
          .execute();
        const targets = buildRetentionTargets(retention, { postgres: true });
        const held = await a.db.connection().execute(async (conn) => {
          await sql`select pg_advisory_lock(${LOCK_KEYS.retention})`.execute(conn);
          try {
            return await runRetentionPass(handles[1]!.db, targets, { batchSize: 25, now: NOW });
          } finally {
            await sql`select pg_advisory_unlock(${LOCK_KEYS.retention})`.execute(conn);
          }
        });
        assert.deepEqual(held, { skipped: true, deleted: {} });
        assert.equal((await countBy(a.db, 'events'))['locked-out'], 2);
        const free = await runRetentionPass(handles[1]!.db, targets, { batchSize: 25, now: NOW });
        assert.deepEqual(free, { skipped: false, deleted: { events: 2, rate_limits: 1 } });
        const counters = await sql<{ key: string }>`select key from rate_limits order by key`.execute(a.db);
        assert.deepEqual(
          counters.rows.map((row) => row.key),
          ['maos-tenant:live'],
        );
      });
    }
  });
}

test('every table retention deletes from is an allowed value of its metric label', () => {
  const allowed: readonly string[] = METRIC_LABELS.maos_retention_deleted_rows_total.table;
  for (const table of RETENTION_TABLES) assert.ok(allowed.includes(table), table);
});
