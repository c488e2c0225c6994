// Webhooks in cluster mode: two replicas on one PostgreSQL database share one outbox. Sessions
// submitted to either end, and every `session.completed` is delivered exactly once (each delivery
// claimed by one replica with FOR UPDATE SKIP LOCKED, sent once, recorded once), signed. Polls are
// set to a minute: only the local wake-up and the commit notification can deliver in time. A rotated
// signing secret signs next to the new one during its grace, whichever replica rotated or sends.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { generateKekEntry } from '../../src/security/secrets.ts';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { requestJson } from '../fixtures/server.ts';
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
