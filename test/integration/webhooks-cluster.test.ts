// Webhooks in cluster mode: two replicas on one PostgreSQL database share one outbox. Sessions
// submitted to either end, and every `session.completed` is delivered exactly once (each delivery
// claimed by one replica with FOR UPDATE SKIP LOCKED, sent once, recorded once), signed. Polls are
// set to a minute: only the local wake-up and the commit notification can deliver in time.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { generateKekEntry } from '../../src/security/secrets.ts';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { requestJson } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { startWebhookReceiver, verifyDelivery } from '../fixtures/webhook-receiver.ts';

describe('webhooks: two replicas on one PostgreSQL database', { timeout: 180_000 }, () => {
  const suite = useReplicaSuite();

  test('each event is delivered once, by one of the replicas', async (t) => {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    const kekRing = generateKekEntry('k1');
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
});
