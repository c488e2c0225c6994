// DELETE /v1/sessions/{id} on PostgreSQL while the delivery worker disables a subscription the
// session has pending deliveries to (its receiver answered 410 Gone, or too many deliveries in a row
// failed). The worker's transaction locks the subscription's row, its attempt's delivery, then the
// subscription's other pending deliveries (to fail them); the deletion deleted the session's
// deliveries in the order it found them, so it could hold one the worker was about to fail while
// waiting for the attempt's delivery, until PostgreSQL broke the deadlock after a second by failing
// the deletion's transaction (the write queue ran that step again, so the DELETE answered a second
// late; the retention job, which does not, failed its batch). The deletion locks the subscriptions
// of its deliveries before them now, as the worker and DELETE /v1/webhooks/{id} do: it waits for the
// worker's commit, and no step of it fails.
// And a delivery deleted while it was being sent (its session or its subscription deleted): the
// worker logs that, not that the attempt's lease ran out.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { deleteFinishedSession } from '../../src/engine/delete-session.ts';
import { createLogger } from '../../src/observability/logger.ts';
import type { DatabaseHandle } from '../../src/store/db.ts';
import { DEFAULT_TENANT_ID } from '../../src/store/migrations/0001-foundation.ts';
import { createWriteQueue, type WriteQueue } from '../../src/store/write-queue.ts';
import { startDeliveryWorker } from '../../src/webhooks/delivery-worker.ts';
import { createWebhookService } from '../../src/webhooks/webhook-service.ts';
import type { WebhooksDb } from '../../src/webhooks/webhook-tables.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { pauseAfterQuery, waitForLockWaiter } from '../fixtures/pause-query.ts';
import { seedSessionRows } from '../fixtures/session-rows.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { createWebhookRace, insertPendingDelivery } from '../fixtures/webhook-race.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../fixtures/webhook-receiver.ts';

/**
 * A fresh PostgreSQL database with a finished session `s1` (a row in every session table) and a
 * subscription `w1` to `receiver`; the worker's and the API's handles on it.
 */
async function setUp(t: TestContext, receiver: WebhookReceiver, webhooks: Record<string, unknown>) {
  const { config, handles, dbs, kekRing, now } = await createWebhookRace(t, { webhooks, receiver });
  const [workerHandle, apiHandle] = handles as [DatabaseHandle, DatabaseHandle];
  const api = dbs[1] as WebhooksDb;
  const writeQueue = createWriteQueue({ db: apiHandle.db, dialect: apiHandle.dialect });
  t.after(() => writeQueue.close());
  // What the deletion's steps threw: the write queue runs a step again after a deadlock, so the
  // deletion still succeeds then, a second late (deadlock_timeout), and only this shows it.
  const stepErrors: unknown[] = [];
  const queue: WriteQueue = {
    ...writeQueue,
    run: (op, options) =>
      writeQueue.run(async (trx) => {
        try {
          return await op(trx);
        } catch (error) {
          stepErrors.push(error);
          throw error;
        }
      }, options),
  };
  await seedSessionRows(apiHandle.db, { id: 's1', status: 'completed', finishedAt: now - 1000 });
  const enqueue = (id: string, due: number) => insertPendingDelivery(api, { id, due, createdAt: now });
  const log = captureLog();
  const startWorker = (db: WebhooksDb) => {
    const worker = startDeliveryWorker({
      db,
      config: config.webhooks,
      kekRing,
      ssrf: { allowedHosts: ['127.0.0.1'] },
      logger: createLogger({ level: 'info', destination: log.destination }),
    });
    t.after(() => worker.stop());
    return worker;
  };
  const service = createWebhookService({
    db: api,
    kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    maxPerTenant: 20,
    secretRotationGraceSeconds: 0,
  });
  const deleteSession = () =>
    deleteFinishedSession(queue, DEFAULT_TENANT_ID, 's1').then(
      () => 'deleted',
      (error: unknown) => error,
    );
  return {
    worker: workerHandle.db as unknown as WebhooksDb,
    api,
    now,
    enqueue,
    log,
    startWorker,
    service,
    deleteSession,
    stepErrors,
  };
}

const disablings = [
  { name: 'its receiver answered 410 Gone', answer: 410, webhooks: { maxAttempts: 5 } },
  {
    name: 'too many deliveries in a row failed',
    answer: 500,
    webhooks: { maxAttempts: 1, disableAfterFailedDeliveries: 1 },
  },
];

for (const scenario of disablings) {
  test(`deleting a session while its subscription is disabled (${scenario.name}): no deadlock`, {
    timeout: 60_000,
  }, async (t) => {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    receiver.answer([scenario.answer]);
    const store = await setUp(t, receiver, scenario.webhooks);
    // Two pending deliveries of the session: `d-later` (not due yet) is stored first, so the deletion
    // comes to it before `d-due`, the one the worker sends and then holds.
    await store.enqueue('d-later', store.now + 3_600_000);
    await store.enqueue('d-due', store.now);
    // Held once the attempt's outcome is written (its delivery's row locked), before the subscription
    // is disabled and its other pending deliveries failed.
    const pause = pauseAfterQuery(
      (node) =>
        node.includes('"UpdateQueryNode"') &&
        node.includes('"webhook_deliveries"') &&
        node.includes(`"HTTP ${scenario.answer}"`),
    );
    const deliveries = store.startWorker(store.worker.withPlugin(pause.plugin));
    let deleted: Promise<unknown> = Promise.resolve();
    try {
      await pause.reached;
      deleted = store.deleteSession();
      // The deletion waits for a lock the held worker has (the subscription's row, or `d-due`'s).
      await waitForLockWaiter(store.api);
    } finally {
      pause.release();
    }
    assert.equal(await deleted, 'deleted', 'the deletion succeeds');
    assert.deepEqual(
      store.stepErrors.map((error) => `${(error as { code?: string }).code}: ${(error as Error).message}`),
      [],
      'no step of the deletion failed (a deadlock)',
    );
    await deliveries.stop();
    assert.equal(receiver.received.length, 1);
    assert.deepEqual(
      store.log.lines.filter((line) => String(line.message).includes('not recorded')),
      [],
      'the worker recorded the outcome',
    );
    const subscription = await store.api
      .selectFrom('webhooks')
      .select(['disabled_at'])
      .where('id', '=', 'w1')
      .executeTakeFirstOrThrow();
    assert.notEqual(subscription.disabled_at, null, 'the subscription is disabled');
    assert.deepEqual(
      await store.api.selectFrom('webhook_deliveries').select('id').where('session_id', '=', 's1').execute(),
      [],
      "the session's deliveries are gone",
    );
    assert.deepEqual(await store.api.selectFrom('sessions').select('id').execute(), []);
  });
}

const deletions = [
  {
    what: 'session',
    remove: (store: Awaited<ReturnType<typeof setUp>>) => store.deleteSession(),
    message: 'webhook delivery attempt ended after its session was deleted; nothing to record',
  },
  {
    what: 'subscription',
    remove: (store: Awaited<ReturnType<typeof setUp>>) =>
      store.service.delete(DEFAULT_TENANT_ID, 'w1').then(() => 'deleted'),
    message: 'webhook delivery attempt ended after its subscription was deleted; nothing to record',
  },
];

for (const deletion of deletions) {
  test(`a delivery whose ${deletion.what} is deleted while it is sent: logged as deleted, not as a lease that ran out`, {
    timeout: 60_000,
  }, async (t) => {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    receiver.hang();
    const store = await setUp(t, receiver, { maxAttempts: 5 });
    await store.enqueue('d-due', store.now);
    const deliveries = store.startWorker(store.worker);
    await waitFor(() => receiver.received.length === 1, 10_000, 'the attempt');
    assert.equal(await deletion.remove(store), 'deleted');
    assert.ok(receiver.release(204));
    const ended = await waitFor(
      () => store.log.lines.find((line) => String(line.message).startsWith('webhook delivery attempt')),
      10_000,
      'the attempt ended',
    );
    await deliveries.stop();
    assert.deepEqual(
      [ended.message, ended.deliveryId, ended['log.level']],
      [deletion.message, 'd-due', 'info'],
    );
    assert.equal(ended.webhookId, 'w1');
    assert.deepEqual(
      await store.api.selectFrom('webhook_deliveries').select('id').where('id', '=', 'd-due').execute(),
      [],
    );
  });
}
