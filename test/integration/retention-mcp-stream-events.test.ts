// The MCP replay rows (mcp_stream_events) are pruned by the retention job, not by each replica's MCP
// transport: two replicas running their passes at once delete every aged or overflowing row exactly
// once, in bounded batches, single-flight under the frequent-retention advisory lock on PostgreSQL,
// and a long main retention pass (holding the retention lock) does not hold them up.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Kysely, sql } from 'kysely';
import { BATCH_STREAM_START, createStreamEventsRetentionTarget } from '../../src/mcp/stream-event-log.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { LOCK_KEYS } from '../../src/store/advisory-lock.ts';
import type { DatabaseHandle } from '../../src/store/db.ts';
import { startRetentionJob } from '../../src/store/retention.ts';
import { retentionConfig } from '../fixtures/retention-config.ts';
import { STORE_BACKENDS, useStoreHandles } from '../fixtures/store-backends.ts';

// biome-ignore lint/suspicious/noExplicitAny: seeds a table of the MCP area's schema
type AnyDb = Kysely<any>;

const RETENTION_MS = 600_000;
const PER_STREAM = 4;
/** Rows past the TTL, across several MCP sessions. */
const AGED = 57;
/** Recent rows of one long stream: all but the newest PER_STREAM overflow. */
const LONG_STREAM = 23;
/** Recent rows of short streams: all kept. */
const SHORT_STREAMS = 5;
// Small batches: a pass needs several of them.
const RETENTION = retentionConfig({ batchSize: 10 });
const silent = createLogger({ level: 'silent' });

async function seed(db: AnyDb): Promise<{ keptLong: number[] }> {
  const now = Date.now();
  const row = (session: string, stream: string, createdAt: number) => ({
    tenant_id: 'default',
    principal_id: 'p',
    mcp_session_id: session,
    stream_id: stream,
    message: '{}',
    created_at: createdAt,
  });
  const rows = [];
  for (let i = 0; i < AGED; i++) rows.push(row(`old-${i % 7}`, 's', now - RETENTION_MS - 60_000 - i));
  for (let i = 0; i < LONG_STREAM; i++) rows.push(row('busy', 'long', now - 1000));
  for (let i = 0; i < SHORT_STREAMS; i++) rows.push(row(`quiet-${i}`, 's', now - 1000));
  await db.insertInto('mcp_stream_events').values(rows).execute();
  const long = await db
    .selectFrom('mcp_stream_events')
    .select('id')
    .where('mcp_session_id', '=', 'busy')
    .orderBy('id', 'desc')
    .limit(PER_STREAM)
    .execute();
  return { keptLong: long.map((r) => Number(r.id)).sort((a, b) => a - b) };
}

function startJob(db: AnyDb, onDeleted: (table: string, n: number) => void) {
  return startRetentionJob({
    db,
    config: RETENTION,
    logger: silent,
    onDeleted: (table, n) => {
      assert.ok(n <= RETENTION.batchSize, `a batch deleted ${n} rows`);
      onDeleted(table, n);
    },
    frequent: {
      targets: [createStreamEventsRetentionTarget({ retentionMs: RETENTION_MS, perStreamLimit: PER_STREAM })],
      intervalSeconds: 3600,
    },
  });
}

for (const backend of STORE_BACKENDS) {
  describe(`retention of MCP stream events: ${backend.name}`, { timeout: 120_000 }, () => {
    const store = useStoreHandles(backend, 2);

    test('two replicas pass at once: each aged or overflowing row deleted once, in batches', async () => {
      const [a, b] = store.handles as [DatabaseHandle, DatabaseHandle];
      await sql`delete from mcp_stream_events`.execute(a.db);
      const { keptLong } = await seed(a.db);
      const counted: Record<string, number> = {};
      const count = (table: string, n: number) => {
        counted[table] = (counted[table] ?? 0) + n;
      };
      const jobs = [startJob(a.db, count), startJob(b.db, count)];
      try {
        const results = await Promise.all(jobs.map((job) => job.runOnce()));
        const byPasses = results.reduce((sum, r) => sum + (r.deleted.mcp_stream_events ?? 0), 0);
        const expected = AGED + LONG_STREAM - PER_STREAM;
        // Deleted exactly once between the two replicas (the counts add up to the rows that went).
        assert.equal(byPasses, expected);
        assert.deepEqual(counted, { mcp_stream_events: expected });
        const left = await (a.db as unknown as AnyDb)
          .selectFrom('mcp_stream_events')
          .select(['id', 'mcp_session_id'])
          .execute();
        assert.equal(left.length, PER_STREAM + SHORT_STREAMS);
        assert.deepEqual(
          left
            .filter((r) => r.mcp_session_id === 'busy')
            .map((r) => Number(r.id))
            .sort((x, y) => x - y),
          keptLong,
        );
        // A later pass finds nothing left.
        const again = await jobs[1]!.runOnce();
        assert.equal(again.deleted.mcp_stream_events, undefined);
      } finally {
        await Promise.all(jobs.map((job) => job.stop()));
      }
    });

    test("a batch stream's marker stays while any other row of its stream does, then goes by age", async () => {
      const [a] = store.handles as [DatabaseHandle];
      const db = a.db as unknown as AnyDb;
      await sql`delete from mcp_stream_events`.execute(db);
      const now = Date.now();
      const aged = now - RETENTION_MS - 60_000;
      const row = (message: string, createdAt: number) => ({
        tenant_id: 'default',
        principal_id: 'p',
        mcp_session_id: 'batching',
        stream_id: 'batch',
        message,
        created_at: createdAt,
      });
      const marker = JSON.stringify(BATCH_STREAM_START);
      // The marker first, as stored, then more responses than the per-stream limit; the oldest aged.
      const rows = [row(marker, aged), row('{"n":0}', aged)];
      for (let n = 1; n <= PER_STREAM + 2; n++) rows.push(row(`{"n":${n}}`, now - 1000));
      await db.insertInto('mcp_stream_events').values(rows).execute();
      const target = createStreamEventsRetentionTarget({
        retentionMs: RETENTION_MS,
        perStreamLimit: PER_STREAM,
      });
      const prune = async (at: number) => {
        while ((await target.deleteBatch(db, at, 3)) > 0) {}
      };
      const left = async () =>
        (await db.selectFrom('mcp_stream_events').select('message').orderBy('id').execute()).map(
          (r) => r.message as string,
        );
      await prune(now);
      // Before: the marker went first, by age and as the oldest past the limit, and a resume of the
      // batch on another replica ended at its first response.
      assert.deepEqual(await left(), [marker, ...[3, 4, 5, 6].map((n) => `{"n":${n}}`)]);
      // Once the rest has aged out too, the marker goes with it.
      await prune(now + RETENTION_MS + 60_000);
      assert.deepEqual(await left(), []);
    });

    if (backend.name === 'postgres') {
      test('single-flight under its own lock: skips while another replica prunes, not for the main pass', async () => {
        const [a, b] = store.handles as [DatabaseHandle, DatabaseHandle];
        await sql`delete from mcp_stream_events`.execute(a.db);
        await seed(a.db);
        const job = startJob(b.db, () => {});
        try {
          const holding = async (key: number) =>
            a.db.connection().execute(async (conn) => {
              await sql`select pg_advisory_lock(${key})`.execute(conn);
              try {
                return await job.runOnce();
              } finally {
                await sql`select pg_advisory_unlock(${key})`.execute(conn);
              }
            });
          // Another replica is pruning the replay rows: this one leaves them alone.
          const skipped = await holding(LOCK_KEYS.frequentRetention);
          assert.equal(skipped.skipped, true);
          assert.equal(skipped.deleted.mcp_stream_events, undefined);
          // A main retention pass elsewhere (its own lock) does not stop the replay-row pruning.
          const pruned = await holding(LOCK_KEYS.retention);
          assert.equal(pruned.deleted.mcp_stream_events, AGED + LONG_STREAM - PER_STREAM);
        } finally {
          await job.stop();
        }
      });
    }
  });
}
