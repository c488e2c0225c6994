// DELETE /v1/webhooks/{id} on PostgreSQL while the delivery worker records an attempt of that
// subscription: the delete locks the subscription's row, then its deliveries; the worker's
// transaction locked the attempt's delivery, then the subscription's row (to count the failure or
// reset the count), so each waited for the other until PostgreSQL broke the deadlock after a second
// by failing the delete (a 500). The worker is held right after it wrote the outcome, before its
// commit, and the delete starts then: it must wait for that commit and succeed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppError } from '../../src/errors/app-error.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import { DEFAULT_TENANT_ID } from '../../src/store/migrations/0001-foundation.ts';
import { startDeliveryWorker } from '../../src/webhooks/delivery-worker.ts';
import { createWebhookService } from '../../src/webhooks/webhook-service.ts';
import type { WebhooksDb } from '../../src/webhooks/webhook-tables.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { pauseAfterQuery, waitForLockWaiter } from '../fixtures/pause-query.ts';
import { createRaceDatabase, createWebhookRace, insertPendingDelivery } from '../fixtures/webhook-race.ts';

const cases = [
  // A receiver that fails: the delivery fails for good (one attempt) and counts as a failure.
  { name: 'a delivery failing for good', answer: 500, failures: 0, recorded: 'HTTP 500' },
  // A receiver that recovers: the delivery arrives and resets the failures in a row.
  { name: 'a delivery arriving after failures', answer: 204, failures: 3, recorded: 'delivered' },
];

for (const scenario of cases) {
  test(`deleting a subscription while ${scenario.name} is recorded: no deadlock`, {
    timeout: 60_000,
  }, async (t) => {
    const { config, dbs, receiver, kekRing, now } = await createWebhookRace(t, {
      webhooks: { maxAttempts: 1 },
      consecutiveFailures: scenario.failures,
      answers: [scenario.answer],
    });
    // The worker's connections and the API's.
    const [worker, api] = dbs as [WebhooksDb, WebhooksDb];
    await insertPendingDelivery(api, { id: 'd1', due: now });

    // Held once the attempt's outcome is written (its delivery's row locked), before the commit.
    const pause = pauseAfterQuery(
      (node) =>
        node.includes('"UpdateQueryNode"') &&
        node.includes('"webhook_deliveries"') &&
        node.includes(`"${scenario.recorded}"`),
    );
    const log = captureLog();
    const deliveries = startDeliveryWorker({
      db: worker.withPlugin(pause.plugin),
      config: config.webhooks,
      kekRing,
      ssrf: { allowedHosts: ['127.0.0.1'] },
      logger: createLogger({ level: 'info', destination: log.destination }),
    });
    const service = createWebhookService({
      db: api,
      kekRing,
      ssrf: { allowedHosts: ['127.0.0.1'] },
      maxPerTenant: 20,
      secretRotationGraceSeconds: 0,
    });
    let deleted: Promise<unknown> = Promise.resolve();
    try {
      await pause.reached;
      deleted = service.delete(DEFAULT_TENANT_ID, 'w1').then(
        () => 'deleted',
        (error: unknown) => error,
      );
      // The delete waits for a lock the held worker has (its delivery's row, or the subscription's).
      await waitForLockWaiter(api);
    } finally {
      pause.release();
    }
    assert.equal(await deleted, 'deleted', 'the delete succeeds');
    await deliveries.stop();
    assert.equal(receiver.received.length, 1);
    assert.deepEqual(
      log.lines.filter((line) => String(line.message).includes('not recorded')),
      [],
      'the worker recorded the outcome',
    );
    assert.deepEqual(await api.selectFrom('webhooks').select('id').execute(), []);
    assert.deepEqual(await api.selectFrom('webhook_deliveries').select('id').execute(), []);
  });
}

// POST /v1/webhooks/{id}/enable while the subscription is being deleted: the enable found it, then
// waited for its row, which the delete removed; it answered 500 (no row to answer) instead of 404.
test('enabling a subscription deleted meanwhile is a 404, not a 500', { timeout: 60_000 }, async (t) => {
  const { dbs } = await createRaceDatabase(t);
  const [api, deleter] = dbs as [WebhooksDb, WebhooksDb];
  const now = Date.now();
  await api
    .insertInto('webhooks')
    .values({
      id: 'w1',
      tenant_id: DEFAULT_TENANT_ID,
      url: 'https://hooks.example.com/maos',
      events: '["session.completed"]',
      created_at: now,
      created_by: 'admin',
      disabled_at: now,
      disabled_reason: 'the receiver answered 410 Gone',
    })
    .execute();
  const service = createWebhookService({
    db: api,
    kekRing: generateKekEntry('k1'),
    ssrf: {},
    maxPerTenant: 20,
    secretRotationGraceSeconds: 0,
  });
  let commit = () => {};
  const committed = new Promise<void>((resolve) => {
    commit = resolve;
  });
  let removed = () => {};
  const rowRemoved = new Promise<void>((resolve) => {
    removed = resolve;
  });
  // The delete's transaction, its row removed but not committed yet.
  const deleting = deleter.transaction().execute(async (trx) => {
    await trx.deleteFrom('webhooks').where('id', '=', 'w1').execute();
    removed();
    await committed;
  });
  let enabled: Promise<unknown> = Promise.resolve();
  try {
    await rowRemoved;
    enabled = service.enable(DEFAULT_TENANT_ID, 'w1').then(
      (webhook) => webhook,
      (error: unknown) => error,
    );
    // The enable waits for the row the delete holds.
    await waitForLockWaiter(api);
  } finally {
    commit();
    await deleting;
  }
  const outcome = await enabled;
  assert.ok(outcome instanceof AppError, `an AppError, not ${String(outcome)}`);
  assert.equal(outcome.code, 'NOT_FOUND');
});
