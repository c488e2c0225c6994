// Signed webhooks end to end on SQLite: a tenant admin subscribes a URL; a session that waits for
// approval and then completes delivers `session.awaiting_approval` then `session.completed`, signed
// (checked here with an HMAC computed independently); a receiver that fails is retried until it
// answers 2xx, or until `webhooks.maxAttempts`; the API refuses other roles, bad input, internal
// URLs and other tenants' subscriptions, and never shows the signing secret again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import type { Webhook, WebhookDelivery } from '../../src/webhooks/webhook-service.ts';
import { freePort } from '../fixtures/free-port.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { type ReceivedDelivery, startWebhookReceiver, verifyDelivery } from '../fixtures/webhook-receiver.ts';

interface Created {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
  secret: string;
}
interface Payload {
  id: string;
  type: string;
  createdAt: string;
  data: Record<string, unknown>;
}

const payloadOf = (delivery: ReceivedDelivery) => JSON.parse(delivery.body) as Payload;

test('webhooks on SQLite', { timeout: 120_000 }, async (t) => {
  const { server } = await startLlmAppStack(t, {
    config: {
      auth: { mode: 'apikey' },
      metrics: { public: true },
      secrets: { kekRing: generateKekEntry('k1') },
      // The receivers listen on loopback, which the SSRF guard refuses unless the operator allows it;
      // the example host is allowed by name (no DNS in the test).
      ssrf: { allowedHosts: ['127.0.0.1', 'hooks.example.com'] },
      webhooks: {
        retryDelaysSeconds: [0.05],
        pollIntervalMs: 50,
        maxAttempts: 3,
        maxPerTenant: 3,
        disableAfterFailedDeliveries: 2,
      },
    },
  });
  const db = server.app.database.db as unknown as SecurityDb;
  const keyFor = async (tenantId: string, role = 'admin') =>
    (await createApiKey(db, { tenantId, name: `${tenantId}-${role}`, roles: [role], createdBy: 'test' })).key;
  const call = <T>(key: string, method: string, path: string, body?: unknown) =>
    requestJson<T>(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}` },
      ...(body === undefined ? {} : { body }),
    });
  const submit = async (key: string, body: Record<string, unknown>) => {
    const created = await call<{ id: string }>(key, 'POST', '/v1/sessions', body);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body.id;
  };

  await t.test('a plan waiting for approval, then its completion, are delivered signed', async (t) => {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    const admin = await keyFor('acme');
    const created = await call<Created>(admin, 'POST', '/v1/webhooks', {
      url: receiver.url,
      events: ['session.awaiting_approval', 'session.completed'],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { secret, id: webhookId } = created.body;
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(created.headers.get('location'), `/v1/webhooks/${webhookId}`);
    assert.equal(created.headers.get('cache-control'), 'no-store');

    // The secret is shown once: neither the listing nor the stored rows hold it in clear.
    const listed = await call<{ items: Record<string, unknown>[] }>(admin, 'GET', '/v1/webhooks');
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.items, [
      {
        id: webhookId,
        url: receiver.url,
        events: created.body.events,
        createdAt: created.body.createdAt,
        disabledAt: null,
        disabledReason: null,
      },
    ]);
    const stored = await server.app.database.db
      .selectFrom('tenant_secrets' as never)
      .selectAll()
      .execute();
    assert.ok(stored.length > 0);
    assert.ok(!JSON.stringify(stored).includes(secret.slice(6)), 'the secret is stored encrypted');
    const rows = await server.app.database.db
      .selectFrom('webhooks' as never)
      .selectAll()
      .execute();
    assert.ok(!JSON.stringify(rows).includes(secret.slice(6)));

    const sessionId = await submit(admin, {
      objective: 'Ship the release notes',
      agents: [{ name: 'writer', role: 'qa', task: 'say hi', runner: 'echo' }],
      approval: 'required',
    });
    const waiting = await waitFor(
      () => receiver.received.find((d) => payloadOf(d).type === 'session.awaiting_approval'),
      15_000,
      'the awaiting_approval delivery',
    );
    assert.equal(receiver.received.length, 1, 'nothing else was sent before the approval');
    const approved = await call(admin, 'POST', `/v1/sessions/${sessionId}/approve`, {});
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const done = await waitFor(
      () => receiver.received.find((d) => payloadOf(d).type === 'session.completed'),
      15_000,
      'the completed delivery',
    );
    assert.equal(receiver.received.length, 2);

    for (const delivery of [waiting, done]) {
      assert.ok(verifyDelivery(secret, delivery), 'signature verifies with the secret');
      assert.ok(
        !verifyDelivery(`whsec_${Buffer.alloc(32).toString('base64')}`, delivery),
        'not with another',
      );
      assert.ok(!verifyDelivery(secret, { ...delivery, body: `${delivery.body} ` }), 'not for another body');
      const payload = payloadOf(delivery);
      assert.equal(delivery.headers['webhook-id'], payload.id);
      assert.match(String(delivery.headers['webhook-timestamp']), /^\d{10}$/);
      assert.equal(delivery.headers['content-type'], 'application/json');
      assert.equal(payload.data.sessionId, sessionId);
      assert.equal(payload.data.objective, 'Ship the release notes');
    }
    assert.deepEqual(payloadOf(waiting).data, {
      sessionId,
      status: 'awaiting_approval',
      objective: 'Ship the release notes',
    });
    const finished = payloadOf(done).data;
    assert.equal(finished.status, 'completed');
    assert.equal(finished.error, null);
    assert.equal(typeof finished.result, 'string');
    assert.deepEqual(Object.keys(finished.usage as object).sort(), [
      'cacheReadTokens',
      'costUsd',
      'inputTokens',
      'outputTokens',
    ]);

    const deliveries = await call<{ items: WebhookDelivery[]; nextCursor: string | null }>(
      admin,
      'GET',
      `/v1/webhooks/${webhookId}/deliveries`,
    );
    assert.equal(deliveries.status, 200);
    assert.deepEqual(
      deliveries.body.items.map((d) => [d.event, d.status, d.attempts, d.lastStatus, d.id]),
      [
        ['session.completed', 'delivered', 1, 204, payloadOf(done).id],
        ['session.awaiting_approval', 'delivered', 1, 204, payloadOf(waiting).id],
      ],
    );
    // Paged: one at a time, newest first.
    const first = await call<{ items: WebhookDelivery[]; nextCursor: string }>(
      admin,
      'GET',
      `/v1/webhooks/${webhookId}/deliveries?limit=1`,
    );
    assert.equal(first.body.items[0]?.event, 'session.completed');
    const second = await call<{ items: WebhookDelivery[]; nextCursor: string | null }>(
      admin,
      'GET',
      `/v1/webhooks/${webhookId}/deliveries?limit=1&cursor=${first.body.nextCursor}`,
    );
    assert.equal(second.body.items[0]?.event, 'session.awaiting_approval');
    assert.equal(second.body.nextCursor, null);

    // Deleting the subscription stops further deliveries.
    assert.equal((await call(admin, 'DELETE', `/v1/webhooks/${webhookId}`)).status, 204);
    const after = await submit(admin, {
      objective: 'quiet',
      agents: [{ role: 'qa', task: 'x', runner: 'ok' }],
    });
    await waitForSession(server.url, after, undefined, 30_000, { authorization: `Bearer ${admin}` });
    assert.equal(receiver.received.length, 2);
  });

  await t.test('a failing receiver is retried until it answers 2xx, then given up on', async (t) => {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    const admin = await keyFor('retry');
    receiver.answer([500, 200]);
    const created = await call<Created>(admin, 'POST', '/v1/webhooks', {
      url: receiver.url,
      events: ['session.completed', 'session.failed'],
    });
    assert.equal(created.status, 201);
    const completed = await submit(admin, {
      objective: 'ok',
      agents: [{ role: 'qa', task: 'x', runner: 'ok' }],
    });
    const list = () =>
      call<{ items: WebhookDelivery[] }>(admin, 'GET', `/v1/webhooks/${created.body.id}/deliveries`).then(
        (r) => r.body.items,
      );
    const delivered = await waitFor(
      async () => (await list()).find((d) => d.sessionId === completed && d.status === 'delivered'),
      15_000,
      'the retried delivery',
    );
    assert.equal(delivered.attempts, 2);
    assert.equal(delivered.lastStatus, 200);
    assert.equal(receiver.received.length, 2);
    // The same message both times: receivers dedupe on webhook-id.
    assert.equal(receiver.received[0]?.headers['webhook-id'], receiver.received[1]?.headers['webhook-id']);
    assert.equal(receiver.received[0]?.body, receiver.received[1]?.body);

    receiver.answer([500]);
    const failed = await submit(admin, {
      objective: 'bad',
      agents: [{ role: 'qa', task: 'x', runner: 'fail' }],
    });
    const given = await waitFor(
      async () => (await list()).find((d) => d.sessionId === failed && d.status === 'failed'),
      15_000,
      'the delivery given up on',
    );
    assert.equal(given.event, 'session.failed');
    assert.equal(given.attempts, 3, 'webhooks.maxAttempts');
    assert.equal(given.lastStatus, 500);
    assert.equal(given.lastError, 'HTTP 500');
    const sent = receiver.received.filter((d) => payloadOf(d).data.sessionId === failed);
    assert.equal(sent.length, 3);
  });

  const deliveriesOf = async (key: string, webhookId: string) =>
    (await call<{ items: WebhookDelivery[] }>(key, 'GET', `/v1/webhooks/${webhookId}/deliveries`)).body.items;
  const webhookOf = async (key: string, webhookId: string) =>
    (await call<{ items: Webhook[] }>(key, 'GET', '/v1/webhooks')).body.items.find((w) => w.id === webhookId);
  /** The subscription once it shows as disabled. */
  const disabledOf = (key: string, webhookId: string) =>
    waitFor(
      async () => {
        const hook = await webhookOf(key, webhookId);
        return hook?.disabledAt ? hook : undefined;
      },
      15_000,
      'the subscription disabled',
    );
  const settled = (key: string, webhookId: string, sessionId: string, status: string) =>
    waitFor(
      async () =>
        (await deliveriesOf(key, webhookId)).find((d) => d.sessionId === sessionId && d.status === status),
      15_000,
      `the ${status} delivery of ${sessionId}`,
    );
  const finishOk = async (key: string) => {
    const sessionId = await submit(key, {
      objective: 'ok',
      agents: [{ role: 'qa', task: 'x', runner: 'ok' }],
    });
    await waitForSession(server.url, sessionId, undefined, 30_000, { authorization: `Bearer ${key}` });
    return sessionId;
  };

  await t.test('a 410 Gone answer is not retried and disables the subscription until enabled', async (t) => {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    receiver.answer([410]);
    const admin = await keyFor('gone');
    const developer = await keyFor('gone', 'developer');
    const other = await keyFor('gone-intruder');
    const created = await call<Created>(admin, 'POST', '/v1/webhooks', {
      url: receiver.url,
      events: ['session.completed'],
    });
    const webhookId = created.body.id;
    const sessionId = await finishOk(admin);
    const gone = await settled(admin, webhookId, sessionId, 'failed');
    assert.equal(gone.attempts, 1);
    assert.equal(gone.lastStatus, 410);
    assert.equal(receiver.received.length, 1);

    // Disabled, and shown so.
    const disabled = await disabledOf(admin, webhookId);
    assert.equal(disabled.disabledReason, 'the receiver answered 410 Gone');
    assert.match(disabled.disabledAt as string, /^\d{4}-\d\d-\d\dT/);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^maos_webhook_subscriptions_disabled_total\{reason="gone"\} 1$/m);

    // The next event is not even enqueued, let alone sent.
    receiver.answer([204]);
    const skipped = await finishOk(admin);
    assert.equal((await deliveriesOf(admin, webhookId)).filter((d) => d.sessionId === skipped).length, 0);
    assert.equal(receiver.received.length, 1);

    // Another tenant's, a developer, an unknown or malformed id: refused, nothing enabled.
    const foreign = await call<{ code: string }>(other, 'POST', `/v1/webhooks/${webhookId}/enable`);
    assert.equal(foreign.status, 404);
    assert.equal(foreign.body.code, 'NOT_FOUND');
    const denied = await call<{ code: string }>(developer, 'POST', `/v1/webhooks/${webhookId}/enable`);
    assert.equal(denied.status, 403);
    assert.equal(denied.body.code, 'PERMISSION_DENIED');
    const unknownId = '0193a5c4-0000-7000-8000-000000000000';
    assert.equal((await call(admin, 'POST', `/v1/webhooks/${unknownId}/enable`)).status, 404);
    assert.equal((await call(admin, 'POST', '/v1/webhooks/not-a-uuid/enable')).status, 400);
    assert.ok((await webhookOf(admin, webhookId))?.disabledAt, 'still disabled');

    // Enabled: the next event is delivered.
    const enabled = await call<Webhook>(admin, 'POST', `/v1/webhooks/${webhookId}/enable`);
    assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
    assert.deepEqual(enabled.body, {
      id: webhookId,
      url: receiver.url,
      events: ['session.completed'],
      createdAt: created.body.createdAt,
      disabledAt: null,
      disabledReason: null,
    });
    const after = await finishOk(admin);
    await settled(admin, webhookId, after, 'delivered');
    assert.equal(receiver.received.length, 2);
    assert.equal(payloadOf(receiver.received[1] as ReceivedDelivery).data.sessionId, after);

    // Audited like the other webhook changes, naming the subscription and what was done to it; the
    // disabling too, with the server as actor.
    const audit = await call<{
      items: { action: string; actor: { type: string }; target: { id: string | null }; outcome: string }[];
    }>(admin, 'GET', '/v1/audit?outcome=success&limit=100');
    const records = audit.body.items.filter((r) => r.target.id === webhookId);
    assert.deepEqual(
      records.map((r) => [r.action, r.actor.type]),
      [
        ['webhooks:create', 'service'],
        ['webhooks:disable', 'system'],
        ['webhooks:enable', 'service'],
      ],
      'created, disabled and enabled',
    );
  });

  await t.test('failed deliveries in a row disable it; a delivered one resets the count', async (t) => {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    const admin = await keyFor('streak');
    const created = await call<Created>(admin, 'POST', '/v1/webhooks', {
      url: receiver.url,
      events: ['session.completed'],
    });
    const webhookId = created.body.id;
    // failed, delivered, failed: never two failed in a row (webhooks.disableAfterFailedDeliveries).
    for (const [answer, outcome] of [
      [500, 'failed'],
      [204, 'delivered'],
      [500, 'failed'],
    ] as const) {
      receiver.answer([answer]);
      await settled(admin, webhookId, await finishOk(admin), outcome);
    }
    assert.equal((await webhookOf(admin, webhookId))?.disabledAt, null, 'the delivered one reset the count');
    // A second failure in a row disables it: the next event is not sent.
    await settled(admin, webhookId, await finishOk(admin), 'failed');
    const disabled = await disabledOf(admin, webhookId);
    assert.equal(disabled.disabledReason, '2 deliveries in a row failed');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^maos_webhook_subscriptions_disabled_total\{reason="failures"\} 1$/m);
    const sent = receiver.received.length;
    assert.equal(sent, 3 * 3 + 1, 'three attempts per failed delivery, one delivered');
    const skipped = await finishOk(admin);
    assert.equal((await deliveriesOf(admin, webhookId)).filter((d) => d.sessionId === skipped).length, 0);
    assert.equal(receiver.received.length, sent);
  });

  await t.test(
    'a receiver nobody listens at is named by the connection error, not "fetch failed"',
    async () => {
      const admin = await keyFor('refused');
      const created = await call<Created>(admin, 'POST', '/v1/webhooks', {
        url: `http://127.0.0.1:${await freePort()}/hook`,
        events: ['session.completed'],
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const sessionId = await submit(admin, {
        objective: 'ok',
        agents: [{ role: 'qa', task: 'x', runner: 'ok' }],
      });
      const refused = await waitFor(
        async () =>
          (
            await call<{ items: WebhookDelivery[] }>(
              admin,
              'GET',
              `/v1/webhooks/${created.body.id}/deliveries`,
            )
          ).body.items.find((d) => d.sessionId === sessionId && d.attempts > 0 && d.lastError !== null),
        15_000,
        'the refused attempt',
      );
      assert.equal(refused.lastError, 'fetch failed: ECONNREFUSED');
      assert.equal(refused.lastStatus, null);
    },
  );

  await t.test('a cancelled session is delivered as session.cancelled', async (t) => {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    const admin = await keyFor('cancel');
    const created = await call<Created>(admin, 'POST', '/v1/webhooks', {
      url: receiver.url,
      events: ['session.cancelled'],
    });
    assert.equal(created.status, 201);
    const sessionId = await submit(admin, {
      objective: 'long',
      agents: [{ role: 'qa', task: 'x', runner: 'sleep' }],
    });
    assert.equal((await call(admin, 'POST', `/v1/sessions/${sessionId}/cancel`)).status, 200);
    const cancelled = await waitFor(() => receiver.received[0], 15_000, 'the cancelled delivery');
    assert.ok(verifyDelivery(created.body.secret, cancelled));
    const payload = payloadOf(cancelled);
    assert.equal(payload.type, 'session.cancelled');
    assert.equal(payload.data.sessionId, sessionId);
    assert.equal(payload.data.status, 'cancelled');
  });

  await t.test(
    'a webhook or delivery id in upper case names the same one (UUIDs are case-insensitive)',
    async (t) => {
      const receiver = await startWebhookReceiver();
      t.after(() => receiver.close());
      const admin = await keyFor('upper');
      const created = await call<Created>(admin, 'POST', '/v1/webhooks', {
        url: receiver.url,
        events: ['session.completed'],
      });
      assert.equal(created.status, 201);
      const id = created.body.id;
      const upper = id.toUpperCase();
      assert.notEqual(upper, id);
      for (const objective of ['one', 'two']) {
        const sessionId = await submit(admin, {
          objective,
          agents: [{ role: 'qa', task: 'x', runner: 'ok' }],
        });
        await waitForSession(server.url, sessionId, undefined, 30_000, { authorization: `Bearer ${admin}` });
      }
      await waitFor(() => receiver.received[1], 15_000, 'both deliveries');
      type Page = { items: WebhookDelivery[]; nextCursor: string | null };
      // A limit of any number of digits above the maximum is lowered to it, not refused.
      const all = await call<Page>(admin, 'GET', `/v1/webhooks/${upper}/deliveries?limit=${'9'.repeat(30)}`);
      assert.equal(all.status, 200, JSON.stringify(all.body));
      assert.equal(all.body.items.length, 2);
      const first = await call<Page>(admin, 'GET', `/v1/webhooks/${upper}/deliveries?limit=1`);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.deepEqual(
        first.body.items.map((d) => d.id),
        [all.body.items[0]?.id],
      );
      const cursor = String(first.body.nextCursor).toUpperCase();
      const second = await call<Page>(
        admin,
        'GET',
        `/v1/webhooks/${upper}/deliveries?limit=1&cursor=${cursor}`,
      );
      assert.equal(second.status, 200, JSON.stringify(second.body));
      assert.deepEqual(
        second.body.items.map((d) => d.id),
        [all.body.items[1]?.id],
        'the page after that delivery',
      );
      const enabled = await call<Webhook>(admin, 'POST', `/v1/webhooks/${upper}/enable`);
      assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
      assert.equal(enabled.body.id, id, 'answered with the id as the server wrote it');
      const rotated = await call<{ id: string }>(admin, 'POST', `/v1/webhooks/${upper}/rotate-secret`);
      assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
      assert.equal(rotated.body.id, id);
      assert.equal((await call(admin, 'DELETE', `/v1/webhooks/${upper}`)).status, 204);
      assert.deepEqual((await call<{ items: Webhook[] }>(admin, 'GET', '/v1/webhooks')).body.items, []);
    },
  );

  await t.test('a rotated secret: both sign the next delivery during the grace, shown once', async (t) => {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    const admin = await keyFor('rotate');
    const developer = await keyFor('rotate', 'developer');
    const other = await keyFor('rotate-intruder');
    const created = await call<Created>(admin, 'POST', '/v1/webhooks', {
      url: receiver.url,
      events: ['session.completed'],
    });
    assert.equal(created.status, 201);
    const { id: webhookId, secret: oldSecret } = created.body;

    // Another tenant's, a developer, an unknown or malformed id: refused, nothing rotated.
    const foreign = await call<{ code: string }>(other, 'POST', `/v1/webhooks/${webhookId}/rotate-secret`);
    assert.equal(foreign.status, 404);
    assert.equal(foreign.body.code, 'NOT_FOUND');
    const denied = await call<{ code: string }>(developer, 'POST', `/v1/webhooks/${webhookId}/rotate-secret`);
    assert.equal(denied.status, 403);
    assert.equal(denied.body.code, 'PERMISSION_DENIED');
    const unknownId = '0193a5c4-0000-7000-8000-000000000000';
    assert.equal((await call(admin, 'POST', `/v1/webhooks/${unknownId}/rotate-secret`)).status, 404);
    assert.equal((await call(admin, 'POST', '/v1/webhooks/not-a-uuid/rotate-secret')).status, 400);

    const rotated = await call<{ id: string; secret: string; previousSecretExpiresAt: string }>(
      admin,
      'POST',
      `/v1/webhooks/${webhookId}/rotate-secret`,
    );
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.equal(rotated.headers.get('cache-control'), 'no-store');
    assert.deepEqual(Object.keys(rotated.body).sort(), ['id', 'previousSecretExpiresAt', 'secret']);
    assert.equal(rotated.body.id, webhookId);
    const newSecret = rotated.body.secret;
    assert.match(newSecret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(newSecret, oldSecret);
    assert.match(rotated.body.previousSecretExpiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(!JSON.stringify(rotated.body).includes(oldSecret.slice(6)), 'the old secret is not shown');
    const listed = await call(admin, 'GET', '/v1/webhooks');
    for (const secret of [oldSecret, newSecret]) {
      assert.ok(!JSON.stringify(listed.body).includes(secret.slice(6)), 'nor listed');
    }
    // Both are stored encrypted only.
    const stored = JSON.stringify(
      await server.app.database.db
        .selectFrom('tenant_secrets' as never)
        .selectAll()
        .execute(),
    );
    assert.ok(!stored.includes(oldSecret.slice(6)) && !stored.includes(newSecret.slice(6)));

    const sessionId = await submit(admin, {
      objective: 'after the rotation',
      agents: [{ role: 'qa', task: 'x', runner: 'ok' }],
    });
    const delivery = await waitFor(() => receiver.received[0], 15_000, 'the delivery after the rotation');
    assert.equal(payloadOf(delivery).data.sessionId, sessionId);
    assert.ok(verifyDelivery(newSecret, delivery), 'the new secret verifies');
    assert.ok(verifyDelivery(oldSecret, delivery), 'the old one too, during the grace period');
    const entries = String(delivery.headers['webhook-signature']).split(' ');
    assert.equal(entries.length, 2);
    const only = (entry: string) => ({
      ...delivery,
      headers: { ...delivery.headers, 'webhook-signature': entry },
    });
    assert.ok(verifyDelivery(newSecret, only(entries[0] as string)), 'the new secret’s signature first');
    assert.ok(verifyDelivery(oldSecret, only(entries[1] as string)));

    // Audited like the other webhook changes, naming the subscription and what was done to it.
    const audit = await call<{ items: { action: string; target: { id: string | null }; outcome: string }[] }>(
      admin,
      'GET',
      '/v1/audit?outcome=success&limit=100',
    );
    const records = audit.body.items.filter((r) => r.target.id === webhookId);
    assert.deepEqual(
      records.map((r) => r.action),
      ['webhooks:create', 'webhooks:rotate_secret'],
      'created and rotated',
    );
  });

  await t.test('RBAC, validation, SSRF, the cap and other tenants', async () => {
    const admin = await keyFor('rules');
    const developer = await keyFor('rules', 'developer');
    const other = await keyFor('intruder');
    const body = { url: 'https://hooks.example.com/maos', events: ['session.completed'] };
    const denied = await call<{ code: string }>(developer, 'POST', '/v1/webhooks', body);
    assert.equal(denied.status, 403);
    assert.equal(denied.body.code, 'PERMISSION_DENIED');
    assert.equal((await call(developer, 'GET', '/v1/webhooks')).status, 403);

    for (const bad of [
      { url: 'https://hooks.example.com/maos', events: [] },
      { url: 'https://hooks.example.com/maos', events: ['session.started'] },
      { events: ['session.completed'] },
      { url: 'https://hooks.example.com/maos', events: ['session.completed'], secret: 'mine' },
      // Internal destinations: RFC 1918, cloud metadata, another scheme.
      { url: 'http://10.1.2.3/hook', events: ['session.completed'] },
      { url: 'http://169.254.169.254/latest/meta-data', events: ['session.completed'] },
      { url: 'http://[::1]:8080/hook', events: ['session.completed'] },
      { url: 'file:///etc/passwd', events: ['session.completed'] },
    ]) {
      const refused = await call<{ code: string }>(admin, 'POST', '/v1/webhooks', bad);
      assert.equal(refused.status, 400, JSON.stringify(bad));
      assert.equal(refused.body.code, 'VALIDATION_FAILED');
    }

    // A public host name that resolves to loopback is refused as well (checked by address).
    const named = await call<{ code: string; detail: string }>(admin, 'POST', '/v1/webhooks', {
      url: 'http://localhost:9/hook',
      events: ['session.completed'],
    });
    assert.equal(named.status, 400);
    assert.match(named.body.detail, /internal network/);

    // Plain http to a public host the operator did not list: the payload would travel in clear.
    const clear = await call<{ code: string; detail: string }>(admin, 'POST', '/v1/webhooks', {
      url: 'http://93.184.215.14/hook',
      events: ['session.completed'],
    });
    assert.equal(clear.status, 400);
    // Both settings that allow http are named (allowPrivateNetworks allows it to any host).
    assert.match(
      clear.body.detail,
      /must use https \(http only to a host listed in ssrf\.allowedHosts, or to any host when ssrf\.allowPrivateNetworks is true\)/,
    );

    // A port fetch refuses for every request (a WHATWG "bad port"): no delivery could ever go out.
    for (const [url, port] of [
      ['https://hooks.example.com:6000/maos', 6000],
      ['http://127.0.0.1:10080/hook', 10080],
    ] as const) {
      const blocked = await call<{ code: string; detail: string }>(admin, 'POST', '/v1/webhooks', {
        url,
        events: ['session.completed'],
      });
      assert.equal(blocked.status, 400, url);
      assert.equal(blocked.body.code, 'VALIDATION_FAILED');
      assert.match(blocked.body.detail, new RegExp(`^Webhook url: port ${port} is one the HTTP client`));
    }
    // Port 0: no receiver can listen there, every connection is refused.
    for (const url of ['https://hooks.example.com:0/maos', 'http://127.0.0.1:00/hook']) {
      const none = await call<{ code: string; detail: string }>(admin, 'POST', '/v1/webhooks', {
        url,
        events: ['session.completed'],
      });
      assert.equal(none.status, 400, url);
      assert.equal(none.body.code, 'VALIDATION_FAILED');
      assert.match(none.body.detail, /^Webhook url: port 0 is no port a receiver can listen on/);
    }

    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const created = await call<Created>(admin, 'POST', '/v1/webhooks', body);
      assert.equal(created.status, 201);
      ids.push(created.body.id);
    }
    const capped = await call<{ code: string }>(admin, 'POST', '/v1/webhooks', body);
    assert.equal(capped.status, 429);
    assert.equal(capped.body.code, 'RESOURCE_LIMIT_EXCEEDED');

    // Another tenant sees none of them and cannot delete or read them.
    assert.deepEqual((await call<{ items: unknown[] }>(other, 'GET', '/v1/webhooks')).body.items, []);
    assert.equal((await call(other, 'DELETE', `/v1/webhooks/${ids[0]}`)).status, 404);
    assert.equal((await call(other, 'GET', `/v1/webhooks/${ids[0]}/deliveries`)).status, 404);
    assert.equal((await call(developer, 'DELETE', `/v1/webhooks/${ids[0]}`)).status, 403);
    assert.equal((await call(admin, 'DELETE', `/v1/webhooks/${ids[0]}`)).status, 204);
    assert.equal((await call(admin, 'DELETE', `/v1/webhooks/${ids[0]}`)).status, 404);
    assert.equal((await call(admin, 'DELETE', '/v1/webhooks/not-a-uuid')).status, 400);
    const bad = await call<{ code: string }>(admin, 'GET', `/v1/webhooks/${ids[1]}/deliveries?cursor=nope`);
    assert.equal(bad.body.code, 'INVALID_CURSOR');
    // Room again after the delete.
    assert.equal((await call(admin, 'POST', '/v1/webhooks', body)).status, 201);

    // Creates and deletes are audited, naming the subscription.
    for (const action of ['webhooks:create', 'webhooks:delete']) {
      const audit = await call<{ items: { target: { id: string | null } }[] }>(
        admin,
        'GET',
        `/v1/audit?action=${action}&outcome=success&limit=100`,
      );
      const targets = audit.body.items.map((r) => r.target.id);
      assert.equal(targets.filter((id) => id === ids[0]).length, 1, `${action}: ${JSON.stringify(targets)}`);
    }
  });
});

test('without secrets.kekRing no subscription can be created (409)', { timeout: 60_000 }, async (t) => {
  const server = await startTestServer({ config: { ssrf: { allowedHosts: ['127.0.0.1'] } } });
  t.after(() => server.close());
  const refused = await requestJson<{ code: string; detail: string }>(`${server.url}/v1/webhooks`, {
    method: 'POST',
    body: { url: 'http://127.0.0.1:9/hook', events: ['session.completed'] },
  });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.code, 'INVALID_STATE');
  assert.match(refused.body.detail, /secrets\.kekRing/);
});

test('the signing secret and signatures never reach the log, at debug level', {
  timeout: 60_000,
}, async (t) => {
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const log = captureLog();
  const server = await startTestServer({
    config: {
      logLevel: 'debug',
      secrets: { kekRing: generateKekEntry('k1') },
      ssrf: { allowedHosts: ['127.0.0.1'] },
      webhooks: { retryDelaysSeconds: [0.05], pollIntervalMs: 50 },
    },
    logDestination: log.destination,
  });
  t.after(() => server.close());
  const { url } = server;
  receiver.answer([500, 204]);
  const created = await requestJson<Created>(`${url}/v1/webhooks`, {
    method: 'POST',
    body: { url: receiver.url, events: ['session.completed'] },
  });
  assert.equal(created.status, 201);
  // Rotated: the deliveries are signed with the old secret and the new one.
  const rotated = await requestJson<{ secret: string }>(
    `${url}/v1/webhooks/${created.body.id}/rotate-secret`,
    { method: 'POST' },
  );
  assert.equal(rotated.status, 200);
  const session = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'logged', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
  });
  assert.equal(session.status, 201);
  await waitFor(() => receiver.received.length === 2, 15_000, 'the retried delivery');
  const text = log.text();
  assert.match(text, /webhook delivery attempt failed; retrying later/, 'the failed attempt is logged');
  for (const secret of [created.body.secret, rotated.body.secret]) {
    assert.ok(!text.includes(secret.slice('whsec_'.length)), 'no secret in the log');
  }
  for (const delivery of receiver.received) {
    const entries = String(delivery.headers['webhook-signature']).split(' ');
    assert.equal(entries.length, 2);
    for (const entry of entries) {
      assert.ok(!text.includes(entry.slice('v1,'.length)), 'no signature in the log');
    }
  }
});
