// A secret rotation that commits while a delivery is being sent (claimed, its secrets not read yet):
// the attempt is signed with the secret the receiver still has as well as the new one, as every
// delivery during the grace period is. Signed with the claim's view of the subscription (no rotation
// in grace) and the secret read after the rotation (the new one), it carried the new secret's
// signature alone, which a receiver that has not switched yet refuses. The worker is held after the
// claim read the subscription (PostgreSQL), the rotation committed then.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/observability/logger.ts';
import { DEFAULT_TENANT_ID } from '../../src/store/migrations/0001-foundation.ts';
import { startDeliveryWorker } from '../../src/webhooks/delivery-worker.ts';
import { createWebhookService } from '../../src/webhooks/webhook-service.ts';
import type { WebhooksDb } from '../../src/webhooks/webhook-tables.ts';
import { pauseAfterQuery } from '../fixtures/pause-query.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { createWebhookRace, insertPendingDelivery } from '../fixtures/webhook-race.ts';
import { verifyDelivery } from '../fixtures/webhook-receiver.ts';

test('a rotation committed while a delivery is sent: it is signed with the previous secret too', {
  timeout: 60_000,
}, async (t) => {
  const {
    config,
    dbs,
    receiver,
    kekRing,
    now,
    secret: previous,
  } = await createWebhookRace(t, { webhooks: { secretRotationGraceSeconds: 3600 } });
  // The worker's connections and the API's.
  const [worker, api] = dbs as [WebhooksDb, WebhooksDb];
  await insertPendingDelivery(api, { id: 'd1', due: now });

  // Held once the claim has read its deliveries' subscriptions (their URLs).
  const pause = pauseAfterQuery(
    (node) => node.includes('"SelectQueryNode"') && node.includes('"webhooks"') && node.includes('"url"'),
  );
  const deliveries = startDeliveryWorker({
    db: worker.withPlugin(pause.plugin),
    config: config.webhooks,
    kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
  });
  const service = createWebhookService({
    db: api,
    kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    maxPerTenant: 20,
    secretRotationGraceSeconds: config.webhooks.secretRotationGraceSeconds,
  });
  let rotated: { secret: string; previousSecretExpiresAt: string | null };
  try {
    await pause.reached;
    rotated = await service.rotateSecret(DEFAULT_TENANT_ID, 'w1');
  } finally {
    pause.release();
  }
  assert.notEqual(rotated.previousSecretExpiresAt, null, 'the previous secret signs during the grace');
  try {
    await waitFor(() => receiver.received.length === 1, 20_000, 'the delivery');
  } finally {
    await deliveries.stop();
  }
  const [delivery] = receiver.received;
  assert.ok(delivery);
  assert.equal(delivery.headers['webhook-signature']?.toString().split(' ').length, 2, 'two signatures');
  assert.ok(verifyDelivery(previous, delivery), 'a receiver that has not switched yet accepts it');
  assert.ok(verifyDelivery(rotated.secret, delivery), 'and one that has');
});
