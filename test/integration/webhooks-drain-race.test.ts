// A receiver's backlog drains without waiting for the poll (PostgreSQL): a send that ends while the
// worker's claim runs (the claim's snapshot still saw that delivery in flight, so it took nothing of
// its subscription) is followed by another claim, which takes the subscription's next delivery. The
// pass ended there instead when that claim came back empty with no send left in flight, and the next
// delivery waited for the poll (5 s by default; 60 s here). Forced by holding the claim after it ran
// while the receiver answers and the delivery is recorded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/observability/logger.ts';
import { createSecretStore } from '../../src/security/secret-store.ts';
import { parseKekRing } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { DEFAULT_TENANT_ID } from '../../src/store/migrations/0001-foundation.ts';
import { startDeliveryWorker } from '../../src/webhooks/delivery-worker.ts';
import { generateWebhookSecret } from '../../src/webhooks/signature.ts';
import { webhookSecretName } from '../../src/webhooks/webhook-service.ts';
import type { WebhooksDb } from '../../src/webhooks/webhook-tables.ts';
import { pauseAfterQuery } from '../fixtures/pause-query.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { createWebhookRace, insertPendingDelivery } from '../fixtures/webhook-race.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../fixtures/webhook-receiver.ts';

test('a delivery recorded while a claim runs: its subscription’s next one is sent without waiting for the poll', {
  timeout: 60_000,
}, async (t) => {
  const { config, dbs, receiver, kekRing, now } = await createWebhookRace(t);
  const [worker, api] = dbs as [WebhooksDb, WebhooksDb];
  // A second subscription, w2, to a receiver of its own: its answer ends a send while w1's is in flight.
  const other = await startWebhookReceiver();
  t.after(() => other.close());
  await api
    .insertInto('webhooks')
    .values({
      id: 'w2',
      tenant_id: DEFAULT_TENANT_ID,
      url: other.url,
      events: '["session.completed"]',
      created_at: now,
      created_by: 'admin',
    })
    .execute();
  await createSecretStore(api as unknown as SecurityDb, parseKekRing(kekRing)).put(
    DEFAULT_TENANT_ID,
    webhookSecretName('w2'),
    generateWebhookSecret(),
  );
  await insertPendingDelivery(api, { id: 'd1', due: now - 3000 });
  await insertPendingDelivery(api, { id: 'e1', due: now - 2000, webhookId: 'w2' });
  await insertPendingDelivery(api, { id: 'd2', due: now - 1000 });
  receiver.hang();
  other.hang();
  // The second claim: it runs while d1 is in flight, so it takes nothing of w1.
  let claims = 0;
  const pause = pauseAfterQuery((node) => node.includes('with recursive subs') && ++claims === 2);
  // The attempts in the order they end: e1's (released first), then d1's.
  const ends = [Promise.withResolvers<void>(), Promise.withResolvers<void>()];
  let attempts = 0;
  const deliveries = startDeliveryWorker({
    db: worker.withPlugin(pause.plugin),
    config: config.webhooks,
    kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
    observer: { attempted: () => ends[attempts++]?.resolve() },
  });
  t.after(() => deliveries.stop());
  try {
    await waitFor(() => receiver.received.length === 1 && other.received.length === 1, 10_000, 'd1, e1 sent');
    // e1's answer ends a send while d1's is in flight: a claim follows (at once, before, it came
    // right after the first), and is held after it ran.
    assert.ok(other.release(204));
    await ends[0]?.promise;
    await pause.reached;
    // d1 answered and recorded while that claim is held: its send has ended when the claim returns.
    assert.ok(receiver.release(204));
    await ends[1]?.promise;
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    pause.release();
  }
  // Not by the poll: it comes after 60 s (webhooks.pollIntervalMs of the race set-up), past the test's timeout.
  receiver.answer([204]);
  await waitFor(() => receiver.received.length === 2, 15_000, 'd2 sent without waiting for the poll');
  assert.equal(JSON.parse(receiver.received[1]?.body ?? '{}').id, 'd2');
});

// Two replicas claiming at once: the other one holds a head this claim picked (its own claim of it,
// not committed yet), so this claim skips it (SKIP LOCKED) and takes fewer than its free slots, while
// a head after those it picked is due. It claims again at once then (the other claim has committed:
// that head is in flight, and the next one is taken); the free slot waited for a send to end or for
// the poll (both 60 s here) behind a receiver that hangs.
test('a head another replica was claiming: the free slot takes the next subscription’s delivery at once', {
  timeout: 60_000,
}, async (t) => {
  const { config, dbs, receiver, kekRing, now } = await createWebhookRace(t, {
    webhooks: { concurrency: 2, timeoutSeconds: 60 },
    connections: 3,
  });
  const [worker, api, other] = dbs as [WebhooksDb, WebhooksDb, WebhooksDb];
  const receivers = await Promise.all([startWebhookReceiver(), startWebhookReceiver()]);
  t.after(() => Promise.all(receivers.map((started) => started.close())));
  for (const [index, started] of receivers.entries()) {
    const id = `w${index + 2}`;
    await api
      .insertInto('webhooks')
      .values({
        id,
        tenant_id: DEFAULT_TENANT_ID,
        url: started.url,
        events: '["session.completed"]',
        created_at: now,
        created_by: 'admin',
      })
      .execute();
    await createSecretStore(api as unknown as SecurityDb, parseKekRing(kekRing)).put(
      DEFAULT_TENANT_ID,
      webhookSecretName(id),
      generateWebhookSecret(),
    );
  }
  const [w2, w3] = receivers as [WebhookReceiver, WebhookReceiver];
  // Due in this order: the worker's first claim (2 free slots) picks d1 and e1.
  await insertPendingDelivery(api, { id: 'd1', due: now - 3000 });
  await insertPendingDelivery(api, { id: 'e1', due: now - 2000, webhookId: 'w2' });
  await insertPendingDelivery(api, { id: 'f1', due: now - 1000, webhookId: 'w3' });
  w2.hang();
  // The other replica's claim of d1, committed once the worker's first claim has run.
  const commit = Promise.withResolvers<void>();
  const leased = Promise.withResolvers<void>();
  const claiming = other.transaction().execute(async (trx) => {
    await trx
      .updateTable('webhook_deliveries')
      .set({ lease_owner: 'other', next_attempt_at: now + 600_000, attempts: 1 })
      .where('id', '=', 'd1')
      .execute();
    leased.resolve();
    await commit.promise;
  });
  await leased.promise;
  let claims = 0;
  const pause = pauseAfterQuery((node) => node.includes('with recursive subs') && ++claims === 1);
  const deliveries = startDeliveryWorker({
    db: worker.withPlugin(pause.plugin),
    config: config.webhooks,
    kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
  });
  t.after(() => deliveries.stop());
  try {
    await pause.reached;
    commit.resolve();
    await claiming;
  } finally {
    commit.resolve();
    pause.release();
  }
  try {
    await waitFor(() => w2.received.length === 1, 10_000, 'e1 sent');
    await waitFor(() => w3.received.length === 1, 15_000, 'f1 sent into the free slot, not after the poll');
    assert.equal(receiver.received.length, 0, 'd1 is the other replica’s');
  } finally {
    w2.release(204);
  }
});
