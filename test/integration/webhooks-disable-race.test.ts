// A delivery that fails for good and disables its subscription (a 410 Gone) on one PostgreSQL
// replica, while another replica claims: the failure is recorded together with the disabling, so no
// replica sees the subscription free (its delivery no longer in flight) yet still enabled, and none
// sends its next delivery to the receiver that just answered 410 Gone. The disabling is held back by
// a lock on the subscription's row, as a busy database would.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { createLogger } from '../../src/observability/logger.ts';
import { startDeliveryWorker } from '../../src/webhooks/delivery-worker.ts';
import type { WebhooksDb } from '../../src/webhooks/webhook-tables.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { createWebhookRace, insertPendingDelivery } from '../fixtures/webhook-race.ts';

test('a 410 Gone: another replica sends the subscription nothing more, even before it is disabled', {
  timeout: 60_000,
}, async (t) => {
  const { config, dbs, receiver, kekRing, now } = await createWebhookRace(t, {
    // Two replicas and a third connection that holds the subscription's row.
    connections: 3,
    seedOn: 0,
    webhookId: 'w-gone',
    answers: [410],
  });
  const [a, b, locker] = dbs as [WebhooksDb, WebhooksDb, WebhooksDb];
  for (const [id, at] of [
    ['d1', now - 1],
    ['d2', now],
  ] as const) {
    await insertPendingDelivery(a, { id, due: at, webhookId: 'w-gone' });
  }

  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let taken = () => {};
  const lockTaken = new Promise<void>((resolve) => {
    taken = resolve;
  });
  const held = locker.transaction().execute(async (trx) => {
    await sql`select id from webhooks where id = 'w-gone' for update`.execute(trx);
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
  // Replica A sends d1 (the first due), gets 410 Gone and waits to disable the subscription.
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
      'replica A waiting to disable the subscription',
    );
    // Replica B claims meanwhile: d2 must not go to the receiver that said Gone.
    second.worker = start(b);
    await Promise.race([
      second.worker.runOnce(),
      waitFor(() => receiver.received.length > 1, 20_000, 'a second delivery'),
    ]);
  } finally {
    // Also when a wait failed: the pools close only once nothing holds their connections.
    release();
    await held;
    await Promise.all([first.stop(), second.worker?.stop()]);
  }
  assert.deepEqual(
    receiver.received.map((delivery) => delivery.headers['webhook-id']),
    ['d1'],
    'nothing sent after the 410',
  );
  const rows = await a
    .selectFrom('webhook_deliveries')
    .select(['id', 'status', 'last_error'])
    .orderBy('id')
    .execute();
  assert.deepEqual(rows, [
    { id: 'd1', status: 'failed', last_error: 'HTTP 410' },
    { id: 'd2', status: 'failed', last_error: 'subscription disabled' },
  ]);
});
