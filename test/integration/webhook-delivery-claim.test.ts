// The webhook delivery worker's claim, on SQLite and PostgreSQL: each subscription's first due
// delivery (the longest waiting first, ties by id), none of a subscription with one in flight, one
// whose lease ran out again; leased with the attempt counted, with its subscription's URL and state
// (none when the subscription was deleted). Two replicas claiming at once take each delivery once;
// on PostgreSQL a replica skips the rows another one is claiming instead of waiting for it. A
// receiver's backlog (due behind the delivery it holds, or waiting for retries) is not read by a claim.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CompiledQuery, sql } from 'kysely';
import { DEFAULT_TENANT_ID } from '../../src/store/migrations/0001-foundation.ts';
import {
  type ClaimedDelivery,
  type ClaimOptions,
  claimDueDeliveries,
} from '../../src/webhooks/delivery-claim.ts';
import type { WebhookDeliveriesTable, WebhooksDb } from '../../src/webhooks/webhook-tables.ts';
import { STORE_BACKENDS, useStoreHandles } from '../fixtures/store-backends.ts';

const AT = Date.UTC(2026, 5, 1);
const LEASE_MS = 30_000;
/**
 * The deadline of a lease still running by any clock a claim reads: its `at`, and on PostgreSQL the
 * database server's, by which leases are set and checked (store/lease-clock.ts).
 */
const RUNNING_LEASE = Date.now() + 3_600_000;

/** The deliveries a claim took. */
async function takeDue(db: WebhooksDb, options: ClaimOptions): Promise<ClaimedDelivery[]> {
  return (await claimDueDeliveries(db, options)).deliveries;
}

async function subscribe(db: WebhooksDb, id: string, disabledAt: number | null = null): Promise<void> {
  await db
    .insertInto('webhooks')
    .values({
      id,
      tenant_id: DEFAULT_TENANT_ID,
      url: `https://receiver.example/${id}`,
      events: '["session.completed"]',
      created_at: AT - 60_000,
      created_by: 'admin',
      disabled_at: disabledAt,
    })
    .execute();
}

async function enqueue(
  db: WebhooksDb,
  id: string,
  webhookId: string,
  nextAttemptAt: number,
  more: Partial<Pick<WebhookDeliveriesTable, 'status' | 'lease_owner' | 'attempts'>> = {},
): Promise<void> {
  await db
    .insertInto('webhook_deliveries')
    .values({
      id,
      tenant_id: DEFAULT_TENANT_ID,
      webhook_id: webhookId,
      event: 'session.completed',
      session_id: 's1',
      payload: `{"id":"${id}"}`,
      status: 'pending',
      attempts: 0,
      next_attempt_at: nextAttemptAt,
      created_at: AT - 60_000,
      ...more,
    })
    .execute();
}

const ids = (rows: ReadonlyArray<{ id: string }>) => rows.map((row) => row.id).sort();

/** `db`, recording the statements it runs as they are compiled. */
function recording(db: WebhooksDb): { db: WebhooksDb; statements: CompiledQuery[] } {
  const statements: CompiledQuery[] = [];
  const recorded = db.withPlugin({
    transformQuery({ node, queryId }) {
      statements.push(db.getExecutor().compileQuery(node, queryId));
      return node;
    },
    transformResult: async ({ result }) => result,
  });
  return { db: recorded, statements };
}

/** Rows the plan nodes of `plan` (EXPLAIN ANALYZE, FORMAT JSON) read from `table`, filtered out ones too. */
function rowsRead(plan: Record<string, unknown>, table: string): number {
  const own =
    plan['Relation Name'] === table
      ? (Number(plan['Actual Rows']) + Number(plan['Rows Removed by Filter'] ?? 0)) *
        Number(plan['Actual Loops'])
      : 0;
  const children = (plan.Plans as Record<string, unknown>[] | undefined) ?? [];
  return own + children.reduce((sum, child) => sum + rowsRead(child, table), 0);
}

for (const backend of STORE_BACKENDS) {
  describe(`webhook delivery claim: ${backend.name}`, { timeout: 60_000 }, () => {
    const store = useStoreHandles(backend, 2);
    const db = (replica: number) => store.handles[replica]!.db as unknown as WebhooksDb;

    test('each subscription’s first due delivery, the longest waiting first; none while one is in flight', async () => {
      const replica = db(0);
      for (const id of ['w1', 'w2', 'w3', 'w7']) await subscribe(replica, id);
      await subscribe(replica, 'w5', AT - 1000);
      // w1: two due at the same time (the lower id first), one due later.
      await enqueue(replica, 'w1-b', 'w1', AT - 3000);
      await enqueue(replica, 'w1-a', 'w1', AT - 3000);
      await enqueue(replica, 'w1-c', 'w1', AT - 1000);
      // w2: one in flight (leased, its lease running), one due behind it.
      await enqueue(replica, 'w2-x', 'w2', RUNNING_LEASE, { lease_owner: 'other', attempts: 1 });
      await enqueue(replica, 'w2-y', 'w2', AT - 5000);
      // w3: not due yet; w4: its subscription deleted; w5: disabled; w6: delivered long ago.
      await enqueue(replica, 'w3-a', 'w3', AT + 1000);
      await enqueue(replica, 'w4-a', 'w4', AT - 4000);
      await enqueue(replica, 'w5-a', 'w5', AT - 2000);
      await enqueue(replica, 'w6-a', 'w6', AT - 9000, { status: 'delivered' });
      // w7: claimed by a worker that died: its lease ran out, so it is due again.
      await enqueue(replica, 'w7-a', 'w7', AT - 1, { lease_owner: 'dead', attempts: 1 });

      const first = await takeDue(replica, { owner: 'me', at: AT, leaseMs: LEASE_MS, limit: 2 });
      assert.deepEqual(ids(first), ['w1-a', 'w4-a']);
      const w4 = first.find((row) => row.id === 'w4-a')!;
      assert.equal(w4.url, null);
      const w1 = first.find((row) => row.id === 'w1-a')!;
      assert.deepEqual(
        { ...w1, disabled_at: w1.disabled_at === null ? null : Number(w1.disabled_at) },
        {
          id: 'w1-a',
          tenant_id: DEFAULT_TENANT_ID,
          webhook_id: 'w1',
          event: 'session.completed',
          payload: '{"id":"w1-a"}',
          attempts: 1,
          // What the retry window counts from, and the error a give-up at its end keeps.
          created_at: AT - 60_000,
          last_error: null,
          url: 'https://receiver.example/w1',
          disabled_at: null,
        },
      );
      const leased = await replica
        .selectFrom('webhook_deliveries')
        .select(['id', 'lease_owner', 'next_attempt_at', 'attempts'])
        .where('lease_owner', '=', 'me')
        .orderBy('id')
        .execute();
      assert.deepEqual(
        leased.map((row) => ({ id: row.id, lease_owner: row.lease_owner, attempts: Number(row.attempts) })),
        [
          { id: 'w1-a', lease_owner: 'me', attempts: 1 },
          { id: 'w4-a', lease_owner: 'me', attempts: 1 },
        ],
      );
      for (const row of leased) {
        const deadline = Number(row.next_attempt_at);
        if (backend.name === 'sqlite') assert.equal(deadline, AT + LEASE_MS);
        // PostgreSQL: the lease runs by the database server's clock, whatever the claim's `at` says.
        else assert.ok(Math.abs(deadline - (Date.now() + LEASE_MS)) < 10_000, `deadline ${deadline}`);
      }

      // w1 and w2 are in flight now; w3 is not due.
      const second = await takeDue(replica, { owner: 'me', at: AT, leaseMs: LEASE_MS, limit: 10 });
      assert.deepEqual(ids(second), ['w5-a', 'w7-a']);
      assert.equal(Number(second.find((row) => row.id === 'w5-a')!.disabled_at), AT - 1000);
      assert.equal(second.find((row) => row.id === 'w7-a')!.attempts, 2);
      assert.deepEqual(await takeDue(replica, { owner: 'me', at: AT, leaseMs: LEASE_MS, limit: 10 }), []);
    });

    test('two replicas claiming at once take each subscription’s head once', async () => {
      const subscriptions = Array.from({ length: 20 }, (_, i) => `r${String(i).padStart(2, '0')}`);
      for (const id of subscriptions) {
        await subscribe(db(0), id);
        for (let n = 0; n < 3; n += 1) await enqueue(db(0), `${id}-${n}`, id, AT - 10_000 + n);
      }
      const claims = await Promise.all(
        [0, 1, 0, 1].map((replica, i) =>
          takeDue(db(replica), { owner: `worker-${i}`, at: AT, leaseMs: LEASE_MS, limit: 8 }),
        ),
      );
      // A claim may come back short (on PostgreSQL it skips heads another one holds): what is left
      // is claimed after; all together, each head exactly once, and nothing behind a head.
      const rest = await takeDue(db(0), { owner: 'after', at: AT, leaseMs: LEASE_MS, limit: 100 });
      const all = [...claims.flat(), ...rest].filter((row) => row.webhook_id.startsWith('r'));
      assert.deepEqual(ids(all), subscriptions.map((id) => `${id}-0`).sort());
    });

    test('a receiver’s backlog is not read: a claim reads a few rows per subscription', async () => {
      const replica = db(0);
      await subscribe(replica, 'big');
      await subscribe(replica, 'quiet');
      // `big`'s receiver hangs on one delivery, with many due behind it and many more waiting for
      // their retries (a receiver down for hours); `quiet` has one due delivery.
      await enqueue(replica, 'big-00000', 'big', RUNNING_LEASE, { lease_owner: 'other', attempts: 1 });
      const backlog = Array.from({ length: 20_000 }, (_, n) => ({
        id: `big-${String(n + 1).padStart(5, '0')}`,
        tenant_id: DEFAULT_TENANT_ID,
        webhook_id: 'big',
        event: 'session.completed',
        session_id: 's1',
        payload: '{}',
        status: 'pending' as const,
        attempts: n % 2,
        next_attempt_at: n % 2 === 0 ? AT - 10_000 + n : AT + 60_000 + n,
        created_at: AT - 60_000,
      }));
      for (let i = 0; i < backlog.length; i += 500) {
        await replica
          .insertInto('webhook_deliveries')
          .values(backlog.slice(i, i + 500))
          .execute();
      }
      await enqueue(replica, 'quiet-a', 'quiet', AT - 1000);

      const { db: recorded, statements } = recording(replica);
      const claimed = await takeDue(recorded, {
        owner: 'me',
        at: AT,
        leaseMs: LEASE_MS,
        limit: 8,
      });
      assert.deepEqual(ids(claimed), ['quiet-a']);
      const claim = statements[0]!;
      // The same claim again, on the state before it (quiet-a due, not leased), reading its plan.
      await replica
        .updateTable('webhook_deliveries')
        .set({ lease_owner: null, next_attempt_at: AT - 1000, attempts: 0 })
        .where('id', '=', 'quiet-a')
        .execute();
      if (backend.name === 'sqlite') {
        const { rows } = await replica.executeQuery<{ detail: string }>({
          ...claim,
          sql: `explain query plan ${claim.sql}`,
        });
        const plan = rows.map((row) => row.detail).join('\n');
        // Only ranges of one subscription (or from one to the next), the leased rows and ids.
        assert.doesNotMatch(plan, /webhook_deliveries_due|SCAN (webhook_deliveries|d|f|head)\b/, plan);
        assert.match(plan, /webhook_deliveries_heads \(status=\? AND webhook_id>\?\)/, plan);
        assert.match(plan, /webhook_deliveries_leased \(webhook_id=\?/, plan);
      } else {
        // The statistics autovacuum keeps (a table this size is seldom left without them).
        await sql`analyze webhook_deliveries`.execute(replica);
        // EXPLAIN ANALYZE runs the claim: in a transaction rolled back, so that it leases nothing.
        let plan: Record<string, unknown> = {};
        const undo = new Error('undo the explained claim');
        await assert.rejects(
          replica.transaction().execute(async (trx) => {
            const { rows } = await trx.executeQuery<{
              'QUERY PLAN': Array<{ Plan: Record<string, unknown> }>;
            }>({
              ...claim,
              sql: `explain (analyze, format json) ${claim.sql}`,
            });
            plan = rows[0]!['QUERY PLAN'][0]!.Plan;
            throw undo;
          }),
          (error) => error === undo,
        );
        const read = rowsRead(plan, 'webhook_deliveries');
        assert.ok(read < 100, `the claim read ${read} rows of webhook_deliveries: ${JSON.stringify(plan)}`);
      }
    });

    if (backend.name === 'postgres') {
      test('a replica whose clock runs ahead takes no delivery another one is sending; a lease run out is taken', async () => {
        await subscribe(db(0), 'k1');
        const now = Date.now();
        await enqueue(db(0), 'k1-a', 'k1', now - 1000);
        // Rows the tests before left are claimed alongside: only k1's are looked at.
        const ofK1 = (rows: ClaimedDelivery[]) => ids(rows.filter((row) => row.webhook_id === 'k1'));
        const sending = await takeDue(db(0), { owner: 'on-time', at: now, leaseMs: 1000, limit: 10 });
        assert.deepEqual(ofK1(sending), ['k1-a']);
        // An hour ahead, its own clock says the lease ran out long ago: the database's says it runs.
        const ahead = Date.now() + 3_600_000;
        assert.deepEqual(
          ofK1(await takeDue(db(1), { owner: 'ahead', at: ahead, leaseMs: LEASE_MS, limit: 10 })),
          [],
        );
        // Once the lease has run out, another replica takes the delivery again (the sender died).
        await new Promise((resolve) => setTimeout(resolve, 1100));
        const again = await takeDue(db(1), { owner: 'next', at: Date.now(), leaseMs: LEASE_MS, limit: 10 });
        assert.deepEqual(ofK1(again), ['k1-a']);
        const row = await db(0)
          .selectFrom('webhook_deliveries')
          .select(['lease_owner', 'next_attempt_at'])
          .where('id', '=', 'k1-a')
          .executeTakeFirstOrThrow();
        assert.equal(row.lease_owner, 'next');
        // Its deadline is the database's now plus the lease, not the claiming replica's clock's.
        assert.ok(Math.abs(Number(row.next_attempt_at) - (Date.now() + LEASE_MS)) < 10_000);
      });

      // Waiting for the other replica's commit would wait forever here: the test times out.
      test('a replica skips the rows another replica is claiming, without waiting for its commit', {
        timeout: 20_000,
      }, async () => {
        for (const id of ['s1', 's2', 's3', 's4']) {
          await subscribe(db(0), id);
          await enqueue(db(0), `${id}-a`, id, AT - 5000 + Number(id.slice(1)));
        }
        const other = await db(1)
          .transaction()
          .execute(async (trx) => {
            const held = await takeDue(trx, {
              owner: 'slow',
              at: AT,
              leaseMs: LEASE_MS,
              limit: 2,
            });
            assert.deepEqual(ids(held), ['s1-a', 's2-a']);
            // Its claim is not committed yet: the rest are taken meanwhile, the held ones skipped.
            return claimDueDeliveries(db(0), { owner: 'fast', at: AT, leaseMs: LEASE_MS, limit: 10 });
          });
        assert.deepEqual(ids(other.deliveries.filter((row) => row.webhook_id.startsWith('s'))), [
          's3-a',
          's4-a',
        ]);
        // Picked, then skipped: the worker claims again when a claim picked as many as it could take.
        assert.equal(other.picked - other.deliveries.length, 2);
      });
    }
  });
}
