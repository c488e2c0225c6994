// Webhooks in cluster mode: two replicas on one PostgreSQL database share one outbox. Sessions
// submitted to either end, and every `session.completed` is delivered exactly once (each delivery
// claimed by one replica with FOR UPDATE SKIP LOCKED, sent once, recorded once), signed. Polls are
// set to a minute: only the local wake-up and the commit notification can deliver in time. A rotated
// signing secret signs next to the new one during its grace, whichever replica rotated or sends. A
// subscription is disabled by failed deliveries in a row or a 410 Gone, and re-enabled, across replicas.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { startWebhookReceiver, verifyDelivery } from '../fixtures/webhook-receiver.ts';

describe('webhooks: two replicas on one PostgreSQL database', { timeout: 180_000 }, () => {
  const suite = useReplicaSuite();
  // One keyring for every replica of the suite: those of an earlier test still run on the database
  // and may claim a later test's deliveries.
  const kekRing = generateKekEntry('k1');

  test('each event is delivered once, by one of the replicas', async (t) => {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    const config = {
      store: { url: suite.database.url, synchronous: 'normal', poolSize: 5 },
      secrets: { kekRing },
      ssrf: { allowedHosts: ['127.0.0.1'] },
      workers: { concurrency: 4, pollIntervalMs: 60_000 },
      webhooks: { pollIntervalMs: 60_000, concurrency: 2 },
    };
    const a = await suite.start({ config });
    const b = await suite.start({ config });
    const created = await requestJson<{ id: string; secret: string }>(`${a.url}/v1/webhooks`, {
      method: 'POST',
      body: { url: receiver.url, events: ['session.completed'] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));

    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const target = i % 2 === 0 ? a : b;
      const submitted = await requestJson<{ id: string }>(`${target.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: `cluster ${i}`, agents: [{ role: 'engineer', task: 't', runner: 'echo' }] },
      });
      assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
      ids.push(submitted.body.id);
    }
    type Page = { items: { sessionId: string; status: string; attempts: number }[] };
    const deliveries = await waitFor(
      async () => {
        const page = await requestJson<Page>(`${b.url}/v1/webhooks/${created.body.id}/deliveries?limit=100`);
        const done = page.body.items.filter((d) => d.status === 'delivered');
        return done.length === ids.length ? page.body.items : undefined;
      },
      60_000,
      'every session.completed delivered',
    );
    assert.deepEqual(deliveries.map((d) => d.sessionId).sort(), [...ids].sort());
    assert.ok(
      deliveries.every((d) => d.attempts === 1),
      JSON.stringify(deliveries),
    );
    // The receiver got each message once: no replica sent one another had claimed.
    const received = receiver.received.map((d) => String(d.headers['webhook-id']));
    assert.equal(received.length, ids.length);
    assert.equal(new Set(received).size, ids.length);
    assert.ok(receiver.received.every((d) => verifyDelivery(created.body.secret, d)));
    const sessions = receiver.received.map(
      (d) => (JSON.parse(d.body) as { data: { sessionId: string } }).data.sessionId,
    );
    assert.deepEqual(sessions.sort(), [...ids].sort());
  });

  test('a rotated secret signs next to the new one during the grace; with no grace, only the new one', async (t) => {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    const config = {
      store: { url: suite.database.url, synchronous: 'normal', poolSize: 5 },
      secrets: { kekRing },
      ssrf: { allowedHosts: ['127.0.0.1'] },
      webhooks: { pollIntervalMs: 60_000 },
    };
    const graceful = await suite.start({ config });
    const instant = await suite.start({
      config: { ...config, webhooks: { ...config.webhooks, secretRotationGraceSeconds: 0 } },
    });
    const created = await requestJson<{ id: string; secret: string }>(`${graceful.url}/v1/webhooks`, {
      method: 'POST',
      body: { url: receiver.url, events: ['session.completed'] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const rotate = async (url: string) => {
      const rotated = await requestJson<{ secret: string; previousSecretExpiresAt: string | null }>(
        `${url}/v1/webhooks/${created.body.id}/rotate-secret`,
        { method: 'POST' },
      );
      assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
      return rotated.body;
    };
    const deliverOne = async (objective: string) => {
      const before = receiver.received.length;
      const submitted = await requestJson<{ id: string }>(`${graceful.url}/v1/sessions`, {
        method: 'POST',
        body: { objective, agents: [{ role: 'engineer', task: 't', runner: 'echo' }] },
      });
      assert.equal(submitted.status, 201);
      return waitFor(() => receiver.received[before], 30_000, objective);
    };

    const second = await rotate(graceful.url);
    assert.ok(second.previousSecretExpiresAt);
    const during = await deliverOne('during the grace');
    assert.ok(verifyDelivery(second.secret, during));
    assert.ok(verifyDelivery(created.body.secret, during));

    const third = await rotate(instant.url);
    assert.equal(third.previousSecretExpiresAt, null);
    const after = await deliverOne('no grace');
    assert.ok(verifyDelivery(third.secret, after));
    assert.ok(!verifyDelivery(second.secret, after));
    assert.ok(!verifyDelivery(created.body.secret, after));
    assert.equal(String(after.headers['webhook-signature']).split(' ').length, 1);
  });
});

describe('webhooks: subscriptions disabled and re-enabled on PostgreSQL', { timeout: 180_000 }, () => {
  const suite = useReplicaSuite();

  test('failures in a row (reset by a delivery) and a 410 disable it; enable delivers again', async (t) => {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    const config = {
      store: { url: suite.database.url, synchronous: 'normal', poolSize: 5 },
      auth: { mode: 'apikey' },
      secrets: { kekRing: generateKekEntry('k1') },
      ssrf: { allowedHosts: ['127.0.0.1'] },
      webhooks: { pollIntervalMs: 200, maxAttempts: 1, disableAfterFailedDeliveries: 2 },
    };
    const a = await suite.start({ config });
    const b = await suite.start({ config });
    const db = a.app.database.db as unknown as SecurityDb;
    const keyFor = async (tenantId: string, role = 'admin') =>
      (await createApiKey(db, { tenantId, name: `${tenantId}-${role}`, roles: [role], createdBy: 'test' }))
        .key;
    const admin = await keyFor('pg-disable');
    const developer = await keyFor('pg-disable', 'developer');
    const other = await keyFor('pg-intruder');
    const call = <T>(url: string, key: string, method: string, path: string, body?: unknown) =>
      requestJson<T>(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}` },
        ...(body === undefined ? {} : { body }),
      });
    const created = await call<{ id: string }>(a.url, admin, 'POST', '/v1/webhooks', {
      url: receiver.url,
      events: ['session.completed'],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const webhookId = created.body.id;
    type Delivery = { sessionId: string; status: string; lastError: string | null };
    const deliveries = async () =>
      (
        await call<{ items: Delivery[] }>(
          b.url,
          admin,
          'GET',
          `/v1/webhooks/${webhookId}/deliveries?limit=100`,
        )
      ).body.items;
    const webhook = async () =>
      (
        await call<{ items: { id: string; disabledAt: string | null; disabledReason: string | null }[] }>(
          a.url,
          admin,
          'GET',
          '/v1/webhooks',
        )
      ).body.items.find((w) => w.id === webhookId);
    let turn = 0;
    const finish = async () => {
      const target = turn++ % 2 === 0 ? a : b;
      const submitted = await call<{ id: string }>(target.url, admin, 'POST', '/v1/sessions', {
        objective: `disable ${turn}`,
        agents: [{ role: 'engineer', task: 't', runner: 'echo' }],
      });
      assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
      await waitForSession(target.url, submitted.body.id, undefined, 30_000, {
        authorization: `Bearer ${admin}`,
      });
      return submitted.body.id;
    };
    const settled = (sessionId: string, status: string) =>
      waitFor(
        async () => (await deliveries()).find((d) => d.sessionId === sessionId && d.status === status),
        30_000,
        `the ${status} delivery of ${sessionId}`,
      );
    const disabledWith = (reason: string) =>
      waitFor(
        async () => {
          const hook = await webhook();
          return hook?.disabledAt ? hook : undefined;
        },
        30_000,
        reason,
      ).then((hook) => assert.equal(hook.disabledReason, reason));

    // failed, delivered, failed: never two in a row; then a second failure in a row disables it.
    for (const [status, outcome] of [
      [500, 'failed'],
      [204, 'delivered'],
      [500, 'failed'],
    ] as const) {
      receiver.answer([status]);
      await settled(await finish(), outcome);
    }
    assert.equal((await webhook())?.disabledAt, null);
    await settled(await finish(), 'failed');
    await disabledWith('2 deliveries in a row failed');
    const sent = receiver.received.length;
    assert.equal(sent, 4);
    const skipped = await finish();
    assert.deepEqual(
      (await deliveries()).filter((d) => d.sessionId === skipped),
      [],
      'a disabled subscription gets no delivery',
    );

    // Another tenant's: 404; a developer: 403; the admin, on the other replica: enabled.
    assert.equal((await call(b.url, other, 'POST', `/v1/webhooks/${webhookId}/enable`)).status, 404);
    assert.equal((await call(b.url, developer, 'POST', `/v1/webhooks/${webhookId}/enable`)).status, 403);
    const enabled = await call<{ disabledAt: string | null }>(
      b.url,
      admin,
      'POST',
      `/v1/webhooks/${webhookId}/enable`,
    );
    assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
    assert.equal(enabled.body.disabledAt, null);
    receiver.answer([204]);
    await settled(await finish(), 'delivered');
    assert.equal(receiver.received.length, sent + 1);

    // 410 Gone: disabled at once; the next event is not sent.
    receiver.answer([410]);
    await settled(await finish(), 'failed');
    await disabledWith('the receiver answered 410 Gone');
    const last = await finish();
    assert.deepEqual(
      (await deliveries()).filter((d) => d.sessionId === last),
      [],
    );
    assert.equal(receiver.received.length, sent + 2);
  });
});
