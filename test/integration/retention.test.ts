// Retention job contract on SQLite and PostgreSQL: finished sessions' old events, outputs, messages,
// artifacts, idempotency keys and old LLM response cache entries are deleted in bounded batches, and
// with `sessionsDays` whole finished sessions; running sessions, recent sessions, the spend ledger
// and the audit log are kept; two replicas running passes at once delete every row exactly once;
// on PostgreSQL a pass is single-flight through the retention advisory lock.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CompiledQuery, type Kysely, type KyselyPlugin, SelectQueryNode, sql } from 'kysely';
import { createLogger } from '../../src/observability/logger.ts';
import { METRIC_LABELS } from '../../src/observability/metric-labels.ts';
import { LOCK_KEYS } from '../../src/store/advisory-lock.ts';
import type { DatabaseHandle } from '../../src/store/db.ts';
import { runRetentionPass, startRetentionJob } from '../../src/store/retention.ts';
import {
  buildRetentionTargets,
  RESCAN_ALL_MS,
  RETENTION_TABLES,
  type RetentionTable,
} from '../../src/store/retention-targets.ts';
import { retentionConfig, TABLE_TTLS_OFF } from '../fixtures/retention-config.ts';
import { countSessionRows, NO_ROWS, seededRowCounts, seedSessionRows } from '../fixtures/session-rows.ts';
import { STORE_BACKENDS, useStoreHandles } from '../fixtures/store-backends.ts';

// biome-ignore lint/suspicious/noExplicitAny: seeds tables of several areas' schemas
type AnyDb = Kysely<any>;

const DAY = 86_400_000;
const NOW = Date.now();
const TENANT = 'default';
const retention = retentionConfig({ batchSize: 25 });

interface SeedSession {
  id: string;
  status: string;
  finishedDaysAgo: number | null;
  lifecycleEvents: number;
  /** 0 unless given, as are messages and artifacts: a session with its lifecycle events alone. */
  outputEvents?: number;
  messages?: number;
  artifacts?: number;
  keyDaysAgo?: number;
}

async function seedSession(db: AnyDb, seed: SeedSession): Promise<void> {
  const s = { outputEvents: 0, messages: 0, artifacts: 0, ...seed };
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
    const store = useStoreHandles(backend, 2);

    test('two replicas pass at once: old rows of finished sessions deleted once, the rest kept', async () => {
      const [a, b] = store.handles as [DatabaseHandle, DatabaseHandle];
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
      const off = { ...retention, ...TABLE_TTLS_OFF };
      const [a] = store.handles as [DatabaseHandle];
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
      // Only the ids of sessions deleted long ago are always forgotten (none here).
      assert.deepEqual(
        targets.map((target) => target.table),
        ['deleted_sessions'],
      );
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

    test('the deletion mark of a session whose deletion was cut short stays until the session is gone', async () => {
      const off = { ...retention, ...TABLE_TTLS_OFF };
      const [a] = store.handles as [DatabaseHandle];
      // Its deletion began 40 days ago (the first batch records it) and stopped there: the session
      // must still be refused a retry and its workspace removed, as long as any of it is left.
      await seedSession(a.db, {
        id: 'delete-cut-short',
        status: 'completed',
        finishedDaysAgo: 50,
        lifecycleEvents: 1,
      });
      await a.db
        .insertInto('deleted_sessions')
        .values([
          { id: 'delete-cut-short', tenant_id: TENANT, deleted_at: NOW - 40 * DAY },
          { id: 'deleted-long-ago', tenant_id: TENANT, deleted_at: NOW - 40 * DAY },
        ])
        .execute();
      const targets = buildRetentionTargets(off, { postgres: backend.name === 'postgres' });
      const result = await runRetentionPass(a.db, targets, { batchSize: retention.batchSize, now: NOW });
      assert.equal(result.deleted.deleted_sessions, 1);
      const marks = await a.db
        .selectFrom('deleted_sessions')
        .select('id')
        .where('id', 'in', ['delete-cut-short', 'deleted-long-ago'])
        .execute();
      assert.deepEqual(
        marks.map((row) => row.id),
        ['delete-cut-short'],
      );
    });

    if (backend.name === 'postgres') {
      test('single-flight: while another session holds the retention lock a pass skips', async () => {
        const [a] = store.handles as [DatabaseHandle];
        await seedSession(a.db, {
          id: 'locked-out',
          status: 'completed',
          finishedDaysAgo: 200,
          lifecycleEvents: 2,
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
            return await runRetentionPass(store.handles[1]!.db, targets, { batchSize: 25, now: NOW });
          } finally {
            await sql`select pg_advisory_unlock(${LOCK_KEYS.retention})`.execute(conn);
          }
        });
        assert.deepEqual(held, { skipped: true, deleted: {} });
        assert.equal((await countBy(a.db, 'events'))['locked-out'], 2);
        const free = await runRetentionPass(store.handles[1]!.db, targets, { batchSize: 25, now: NOW });
        assert.deepEqual(free, { skipped: false, deleted: { events: 2, rate_limits: 1 } });
        const counters = await sql<{ key: string }>`select key from rate_limits order by key`.execute(a.db);
        assert.deepEqual(
          counters.rows.map((row) => row.key),
          ['maos-tenant:live'],
        );
      });
    }

    test('a pass goes on from where the last one found nothing left; a day later it looks at every old session again', async () => {
      const [a] = store.handles as [DatabaseHandle];
      await seedSession(a.db, {
        id: 'brought-back',
        status: 'completed',
        finishedDaysAgo: 200,
        lifecycleEvents: 2,
      });
      const targets = buildRetentionTargets(retentionConfig({ ...TABLE_TTLS_OFF, eventsDays: 90 }), {
        postgres: backend.name === 'postgres',
      });
      await runRetentionPass(a.db, targets, { batchSize: 25, now: NOW });
      assert.equal((await countBy(a.db, 'events'))['brought-back'], undefined);
      // Its events back, as a database restored from a backup while the server ran would bring them.
      await a.db
        .insertInto('events')
        .values(
          [1, 2].map((seq) => ({
            session_id: 'brought-back',
            seq,
            tenant_id: TENANT,
            type: 'task.status',
            data: '{}',
            created_at: NOW - 300 * DAY,
          })),
        )
        .execute();
      // An hour later only the sessions finished since the last pass are looked at.
      await runRetentionPass(a.db, targets, { batchSize: 25, now: NOW + 3_600_000 });
      assert.equal((await countBy(a.db, 'events'))['brought-back'], 2);
      const dayLater = await runRetentionPass(a.db, targets, { batchSize: 25, now: NOW + RESCAN_ALL_MS });
      assert.deepEqual(dayLater, { skipped: false, deleted: { events: 2 } });
      assert.equal((await countBy(a.db, 'events'))['brought-back'], undefined);
    });

    if (backend.name === 'sqlite') {
      test('finished sessions are found through sessions_finished_at, never by reading every finished session', async () => {
        const [a] = store.handles as [DatabaseHandle];
        const selects: Parameters<KyselyPlugin['transformQuery']>[0][] = [];
        const watched = a.db.withPlugin({
          transformQuery(args) {
            if (SelectQueryNode.is(args.node)) selects.push(args);
            return args.node;
          },
          transformResult: async ({ result }) => result,
        });
        // The plans of the statements the pass ran, one line each.
        const plans = async (): Promise<string[]> => {
          const lines: string[] = [];
          for (const { node, queryId } of selects.splice(0)) {
            const compiled = watched.getExecutor().compileQuery(node, queryId);
            const plan = await a.db.executeQuery<{ detail: string }>(
              CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]),
            );
            lines.push(plan.rows.map((row) => row.detail).join('; '));
          }
          return lines;
        };
        const targets = buildRetentionTargets(retentionConfig({ sessionsDays: 365 }), { postgres: false });
        await runRetentionPass(watched, targets, { batchSize: 25, now: NOW });
        const first = (await plans()).join('\n');
        // Every session ever finished through `sessions_status` (and all of them sorted, for the
        // whole-sessions target), on every batch: what a pass cost grew with the sessions kept.
        assert.doesNotMatch(first, /sessions_status|TEMP B-TREE/);
        assert.match(first, /USING INDEX sessions_finished_at \(finished_at<\?\)/);
        // The next pass: from where the first found nothing left (outputs, artifacts, events, messages).
        await runRetentionPass(watched, targets, { batchSize: 25, now: NOW + 3_600_000 });
        const next = await plans();
        assert.doesNotMatch(next.join('\n'), /sessions_status|TEMP B-TREE/);
        assert.equal(
          next.filter((line) => /sessions_finished_at \(finished_at>\? AND finished_at<\?\)/.test(line))
            .length,
          4,
          next.join('\n'),
        );
      });
    }
  });
}

for (const backend of STORE_BACKENDS) {
  describe(`retention of whole sessions (sessionsDays): ${backend.name}`, { timeout: 120_000 }, () => {
    const store = useStoreHandles(backend, 2);

    test('only sessions finished longer ago are deleted, with all their rows; the spend ledger stays', async () => {
      const [a, b] = store.handles as [DatabaseHandle, DatabaseHandle];
      const old = (id: string, status: string, events: number) => ({
        id,
        status,
        finishedAt: NOW - 200 * DAY,
        events,
      });
      // More outputs than a batch takes: a session is deleted over several batches.
      const expired = [old('old-completed', 'completed', 60), old('old-failed', 'failed', 3)];
      expired.push(old('old-cancelled', 'cancelled', 7));
      for (const session of expired) await seedSessionRows(a.db, session);
      const kept = [
        { id: 'recent', status: 'completed', finishedAt: NOW - 99 * DAY },
        // Never finished, however old: a running session is not touched.
        { id: 'running', status: 'running', finishedAt: null },
        // Terminal status without a finish time: no age to measure, kept.
        { id: 'no-finish-time', status: 'failed', finishedAt: null },
      ];
      for (const session of kept) await seedSessionRows(a.db, session);
      await a.db
        .insertInto('tenant_usage_days')
        .values({
          tenant_id: TENANT,
          day: NOW - 200 * DAY - ((NOW - 200 * DAY) % DAY),
          input_tokens: 30,
          output_tokens: 15,
          cache_read_tokens: 0,
          cost_usd: 0.03,
        })
        .execute();
      const ledger = () => a.db.selectFrom('tenant_usage_days').selectAll().orderBy('day').execute();
      const spend = await ledger();

      // Only the sessions target: every other TTL off.
      const config = { ...retention, ...TABLE_TTLS_OFF, sessionsDays: 100 };
      const targets = buildRetentionTargets(config, {
        postgres: backend.name === 'postgres',
        sessionsPerBatch: 2,
      });
      const counted: Record<string, number> = {};
      const pass = (handle: DatabaseHandle) =>
        runRetentionPass(handle.db, targets, {
          batchSize: 25,
          now: NOW,
          onDeleted: (table, n) => sum(counted, { [table]: n }),
        });
      // PostgreSQL: two replicas at once. SQLite has one server process, whose one connection runs
      // each session's deletion as a transaction; two connections of one process would wait for
      // each other's write lock in SQLite's synchronous busy wait, so they take turns here.
      const results =
        backend.name === 'postgres' ? await Promise.all([pass(a), pass(b)]) : [await pass(a), await pass(b)];
      const deleted: Record<string, number> = {};
      for (const result of results) sum(deleted, result.deleted);
      // Every row of the three expired sessions, each deleted once, counted per table.
      const expected: Record<string, number> = {};
      for (const session of expired) sum(expected, seededRowCounts(session));
      assert.deepEqual(deleted, expected);
      assert.deepEqual(counted, expected);
      assert.equal(deleted.sessions, 3);
      for (const session of expired) assert.deepEqual(await countSessionRows(a.db, session.id), NO_ROWS);
      for (const session of kept) {
        assert.deepEqual(await countSessionRows(a.db, session.id), seededRowCounts({}), session.id);
      }
      // The spend happened: the ledger (usage totals, daily quota) is not touched.
      assert.deepEqual(await ledger(), spend);
      const again = await runRetentionPass(b.db, targets, { batchSize: 25, now: NOW });
      assert.deepEqual(again, { skipped: false, deleted: {} });
    });

    test('sessionsDays 0 (the default) keeps sessions forever', async () => {
      const [a] = store.handles as [DatabaseHandle];
      await seedSessionRows(a.db, { id: 'ancient', status: 'completed', finishedAt: NOW - 30_000 * DAY });
      const off = { ...retention, ...TABLE_TTLS_OFF };
      assert.equal(off.sessionsDays, 0);
      const job = startRetentionJob({ db: a.db, config: off, logger: createLogger({ level: 'silent' }) });
      await job.runOnce();
      await job.stop();
      assert.deepEqual(await countSessionRows(a.db, 'ancient'), seededRowCounts({}));
    });

    test('a batch of sessions is deleted in as many statements as one session (no statement per session)', async () => {
      const [a] = store.handles as [DatabaseHandle];
      let statements = 0;
      const counting = a.db.withPlugin({
        transformQuery(args) {
          statements++;
          return args.node;
        },
        transformResult: async ({ result }) => result,
      });
      const config = { ...retention, ...TABLE_TTLS_OFF, sessionsDays: 100 };
      // Statements of a pass deleting `count` old sessions (and their rows), all in one batch.
      const passOf = async (prefix: string, count: number): Promise<number> => {
        const targets = buildRetentionTargets(config, {
          postgres: backend.name === 'postgres',
          sessionsPerBatch: 20,
        });
        // Old sessions earlier tests left go first.
        await runRetentionPass(a.db, targets, { batchSize: 1000, now: NOW });
        for (let i = 0; i < count; i++) {
          await seedSessionRows(a.db, {
            id: `${prefix}-${i}`,
            status: 'completed',
            finishedAt: NOW - 200 * DAY,
          });
        }
        statements = 0;
        const pass = await runRetentionPass(counting, targets, { batchSize: 1000, now: NOW });
        assert.equal(pass.deleted.sessions, count);
        for (let i = 0; i < count; i++)
          assert.deepEqual(await countSessionRows(a.db, `${prefix}-${i}`), NO_ROWS);
        return statements;
      };
      const one = await passOf('single', 1);
      // Each of 18 statements per session was a round trip on PostgreSQL: the pass waited on them.
      assert.equal(await passOf('batch', 20), one);
    });

    test('a session of the batch retried between its selection and its lock is kept whole, without a tombstone or a wake-up', async () => {
      const [a] = store.handles as [DatabaseHandle];
      const config = { ...retention, ...TABLE_TTLS_OFF, sessionsDays: 100 };
      const targets = buildRetentionTargets(config, {
        postgres: backend.name === 'postgres',
        sessionsPerBatch: 20,
      });
      // Old sessions earlier tests left go first.
      await runRetentionPass(a.db, targets, { batchSize: 1000, now: NOW });
      const ids = ['recheck-0', 'recheck-1', 'recheck-2'];
      for (const id of ids)
        await seedSessionRows(a.db, { id, status: 'completed', finishedAt: NOW - 200 * DAY });
      // Right after the batch's sessions were selected (before they are locked), one is retried.
      let retried = false;
      const retrying = a.db.withPlugin({
        transformQuery: (args) => args.node,
        async transformResult({ result }) {
          const first = result.rows[0] as Record<string, unknown> | undefined;
          if (!retried && first && Object.keys(first).join() === 'id' && result.rows.length === ids.length) {
            retried = true;
            await a.db
              .updateTable('sessions')
              .set({ status: 'running', finished_at: null })
              .where('id', '=', 'recheck-1')
              .execute();
          }
          return result;
        },
      });
      const woken: string[] = [];
      const pass = await runRetentionPass(retrying, targets, {
        batchSize: 1000,
        now: NOW,
        onSessionsDeleted: (deleted) => woken.push(...deleted),
      });
      assert.equal(retried, true);
      assert.equal(pass.deleted.sessions, 2);
      assert.deepEqual(woken.sort(), ['recheck-0', 'recheck-2']);
      for (const id of ['recheck-0', 'recheck-2'])
        assert.deepEqual(await countSessionRows(a.db, id), NO_ROWS);
      assert.deepEqual(await countSessionRows(a.db, 'recheck-1'), seededRowCounts({}));
      const tombstones = await a.db
        .selectFrom('deleted_sessions')
        .select('id')
        .where('id', 'in', ids)
        .execute();
      assert.deepEqual(tombstones.map((row) => row.id).sort(), ['recheck-0', 'recheck-2']);
    });

    test('a batch whose first session uses up the limit marks only that one as being deleted: the others stay retryable', async () => {
      const [a] = store.handles as [DatabaseHandle];
      const config = { ...retention, ...TABLE_TTLS_OFF, sessionsDays: 100 };
      const targets = buildRetentionTargets(config, {
        postgres: backend.name === 'postgres',
        sessionsPerBatch: 20,
      });
      // Old sessions earlier tests left go first.
      await runRetentionPass(a.db, targets, { batchSize: 1000, now: NOW });
      // A chatty session (more output lines than a batch takes) and two small ones, in one batch.
      const chatty = { id: 'limit-0', status: 'completed', finishedAt: NOW - 200 * DAY, events: 60 };
      await seedSessionRows(a.db, chatty);
      const small = ['limit-1', 'limit-2'];
      for (const id of small)
        await seedSessionRows(a.db, { id, status: 'completed', finishedAt: NOW - 200 * DAY });
      const marked = async () =>
        (
          await a.db
            .selectFrom('deleted_sessions')
            .select('id')
            .where('id', 'in', [chatty.id, ...small])
            .execute()
        )
          .map((row) => row.id)
          .sort();
      const sessions = targets.find((target) => target.table === 'sessions');
      assert.ok(sessions);
      // One batch, as a pass cut short after it (sessionsDays raised, the server stopped) leaves it.
      const woken: string[] = [];
      assert.deepEqual(await sessions.deleteBatch(a.db, NOW, 25, woken), { events: 25 });
      assert.deepEqual(woken, []);
      // Only the chatty session is being deleted: a retry of the small ones (which reads the mark) is
      // not refused, and no replica removes their workspaces.
      assert.deepEqual(await marked(), [chatty.id]);
      for (const id of small) assert.deepEqual(await countSessionRows(a.db, id), seededRowCounts({}), id);
      // A later pass deletes them all, each marked once its deletion starts.
      const pass = await runRetentionPass(a.db, targets, { batchSize: 25, now: NOW });
      assert.equal(pass.deleted.sessions, 3);
      for (const id of [chatty.id, ...small]) assert.deepEqual(await countSessionRows(a.db, id), NO_ROWS);
      assert.deepEqual(await marked(), [chatty.id, ...small]);
    });
  });
}

test('every table retention deletes from is an allowed value of its metric label', () => {
  const allowed: readonly string[] = METRIC_LABELS.maos_retention_deleted_rows_total.table;
  for (const table of RETENTION_TABLES) assert.ok(allowed.includes(table), table);
});
