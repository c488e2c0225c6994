// A webhook subscription whose stored event list cannot be read (a hand edit of webhooks.events gone
// wrong) gets no deliveries and lists with `events: []`. Before, the outbox's JSON.parse ran inside
// the transaction that appends a session's events: every task finish of every session of the tenant
// failed with it (the sessions never finished), and GET /v1/webhooks answered 500.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { generateKekEntry } from '../../src/security/secrets.ts';
import { DAMAGEABLE_STORES, type DamageableServer, useDamageableServer } from '../fixtures/damaged-rows.ts';
import { freePort } from '../fixtures/free-port.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

interface Webhook {
  id: string;
  events: string[];
}

async function checkDamagedSubscription({ server, execute }: DamageableServer) {
  // Nothing listens there: deliveries are stored and fail, which is all this test reads of them.
  const url = `http://127.0.0.1:${await freePort()}/hook`;
  const subscribe = async () => {
    const created = await requestJson<Webhook>(`${server.url}/v1/webhooks`, {
      method: 'POST',
      body: { url, events: ['session.completed'] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body.id;
  };
  const damaged = await subscribe();
  const intact = await subscribe();
  await execute('update webhooks set events = $1 where id = $2', ['["session.compl', damaged]);

  const submitted = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'finishes', agents: [{ name: 'only', role: 'engineer', task: 't', runner: 'ok' }] },
  });
  assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
  const id = submitted.body.id;
  const finished = await waitForSession(server.url, id, undefined, 15_000);
  assert.equal(finished.status, 'completed');

  const deliveries = async (webhook: string) => {
    const page = await requestJson<{ items: { sessionId: string; event: string }[] }>(
      `${server.url}/v1/webhooks/${webhook}/deliveries`,
    );
    assert.equal(page.status, 200, JSON.stringify(page.body));
    return page.body.items.map((item) => [item.sessionId, item.event]);
  };
  assert.deepEqual(await deliveries(intact), [[id, 'session.completed']]);
  assert.deepEqual(await deliveries(damaged), []);

  const listed = await requestJson<{ items: Webhook[] }>(`${server.url}/v1/webhooks`);
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  assert.deepEqual(Object.fromEntries(listed.body.items.map((item) => [item.id, item.events])), {
    [damaged]: [],
    [intact]: ['session.completed'],
  });
  const one = await requestJson<Webhook>(`${server.url}/v1/webhooks/${damaged}`);
  assert.equal(one.status, 200, JSON.stringify(one.body));
  assert.deepEqual(one.body.events, []);
}

for (const store of DAMAGEABLE_STORES) {
  describe(`a webhook subscription with a damaged event list (${store.name})`, { timeout: 60_000 }, () => {
    const stack = useDamageableServer(store.kind, {
      secrets: { kekRing: generateKekEntry('damaged-webhooks') },
      ssrf: { allowPrivateNetworks: true },
    });
    test("gets no deliveries, lists with no events, and holds up no session's finish", async () => {
      await checkDamagedSubscription(stack);
    });
  });
}
