// A delivery delivered on one PostgreSQL replica, while another replica claims: the delivered outcome
// is recorded together with the reset of the subscription's failures in a row, so no replica sees
// the delivery settled before the reset, sends the next one and counts its failure for good against
// the count about to be reset (here: disabling a subscription whose last delivery arrived). The
// reset is held back by a lock its statement waits for, as a busy database would.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { createLogger } from '../../src/observability/logger.ts';
import { startDeliveryWorker } from '../../src/webhooks/delivery-worker.ts';
import type { WebhooksDb } from '../../src/webhooks/webhook-tables.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { createWebhookRace, insertPendingDelivery } from '../fixtures/webhook-race.ts';

const RESET_LOCK = 4242;

test('a delivered delivery: its failures in a row are reset before another replica can send the next', {
  timeout: 60_000,
}, async (t) => {
  const { config, dbs, receiver, kekRing, now } = await createWebhookRace(t, {
    webhooks: { maxAttempts: 1, disableAfterFailedDeliveries: 2 },
    // Two replicas and a third connection that holds the lock the reset waits for.
    connections: 3,
    seedOn: 0,
    consecutiveFailures: 1,
    // d1 arrives; d2 fails for good (one attempt).
    answers: [200, 500],
  });
  const [a, b, locker] = dbs as [WebhooksDb, WebhooksDb, WebhooksDb];
  for (const [id, at] of [
    ['d1', now - 1],
    ['d2', now],
  ] as const) {
    await insertPendingDelivery(a, { id, due: at });
  }
  // The reset (the only update of the subscription that compares its count with '>') waits for the
  // lock before it touches the row; the failure count and the disabling do not.
  await sql`create function hold_reset() returns trigger language plpgsql as $$
    begin
      if current_query() like '%"consecutive_failures" > %' then
        perform pg_advisory_xact_lock(${sql.lit(RESET_LOCK)});
      end if;
      return null;
    end $$`.execute(a);
  await sql`create trigger hold_reset before update on webhooks
    for each statement execute function hold_reset()`.execute(a);

  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let taken = () => {};
  const lockTaken = new Promise<void>((resolve) => {
    taken = resolve;
  });
  const held = locker.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${sql.lit(RESET_LOCK)})`.execute(trx);
    taken();
    await released;
  });
  await lockTaken;
  const start = (db: WebhooksDb) =>
    startDeliveryWorker({
      db,
      config: config.webhooks,
      kekRing,
      ssrf: { allowedHosts: ['127.0.0.1'] },
      logger: createLogger({ level: 'silent' }),
    });
  // Replica A sends d1 (the first due), the receiver takes it, and A waits to reset the count.
  const first = start(a);
  const second = { worker: undefined as ReturnType<typeof start> | undefined };
  try {
    await waitFor(
      async () =>
        receiver.received.length === 1 &&
        Number(
          (
            await sql<{ count: string }>`select count(*) as count from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock'`.execute(locker)
          ).rows[0]?.count,
        ) > 0,
      20_000,
      'replica A waiting to reset the failures in a row',
    );
    // Replica B claims meanwhile: d2 must wait until d1's reset is in.
    second.worker = start(b);
    await second.worker.runOnce();
  } finally {
    // Also when a wait failed: the pools close only once nothing holds their connections.
    release();
    await held;
  }
  try {
    await waitFor(
      async () =>
        (await a.selectFrom('webhook_deliveries').select('status').where('id', '=', 'd1').executeTakeFirst())
          ?.status === 'delivered',
      20_000,
      'd1 recorded delivered',
    );
    // Now d2 is sent and fails for good: the first failure after a delivery.
    await second.worker.runOnce();
  } finally {
    await Promise.all([first.stop(), second.worker?.stop()]);
  }
  assert.deepEqual(
    receiver.received.map((delivery) => delivery.headers['webhook-id']),
    ['d1', 'd2'],
  );
  const rows = await a
    .selectFrom('webhook_deliveries')
    .select(['id', 'status', 'last_error'])
    .orderBy('id')
    .execute();
  assert.deepEqual(rows, [
    { id: 'd1', status: 'delivered', last_error: null },
    { id: 'd2', status: 'failed', last_error: 'HTTP 500' },
  ]);
  const subscription = await a
    .selectFrom('webhooks')
    .select(['consecutive_failures', 'disabled_at'])
    .where('id', '=', 'w1')
    .executeTakeFirstOrThrow();
  assert.deepEqual(
    { failures: Number(subscription.consecutive_failures), disabled: subscription.disabled_at !== null },
    { failures: 1, disabled: false },
  );
});
