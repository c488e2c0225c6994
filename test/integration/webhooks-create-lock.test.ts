// Creating a webhook on PostgreSQL locks its tenant's row so that concurrent creates respect
// `webhooks.maxPerTenant` exactly, but not against the tenant's other writes: a session inserted for
// the tenant while a create holds that lock goes in at once (its foreign key's KEY SHARE on the row
// does not conflict), and a create does not wait for a transaction that inserted one. Both are
// forced with a transaction held after a query (no sleeps), and a waiter read from pg_stat_activity.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateKekEntry } from '../../src/security/secrets.ts';
import { DEFAULT_TENANT_ID } from '../../src/store/migrations/0001-foundation.ts';
import { createWebhookService } from '../../src/webhooks/webhook-service.ts';
import type { WebhooksDb } from '../../src/webhooks/webhook-tables.ts';
import { pauseAfterQuery, waitForLockWaiter } from '../fixtures/pause-query.ts';
import { createRaceDatabase } from '../fixtures/webhook-race.ts';

const URL = 'http://127.0.0.1:8443/hooks';
const kekRing = generateKekEntry('k1');

function service(db: WebhooksDb, maxPerTenant = 20) {
  return createWebhookService({
    db,
    kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    maxPerTenant,
    secretRotationGraceSeconds: 0,
  });
}

/** A session of the default tenant, as POST /v1/sessions inserts one (its foreign key to `tenants`). */
async function insertSession(db: WebhooksDb, id: string): Promise<void> {
  const now = Date.now();
  // biome-ignore lint/suspicious/noExplicitAny: the sessions table's columns are not in WebhooksSchema
  await (db as any)
    .insertInto('sessions')
    .values({
      id,
      tenant_id: DEFAULT_TENANT_ID,
      objective: 'x',
      strategy: 'single',
      status: 'queued',
      created_at: now,
      updated_at: now,
    })
    .execute();
}

/** Which settles first: `work`, or another backend of the database waiting for a lock. */
async function beforeAnyLockWait(db: WebhooksDb, work: Promise<unknown>): Promise<'done' | 'waited'> {
  return Promise.race([
    work.then(() => 'done' as const),
    waitForLockWaiter(db).then(() => 'waited' as const),
  ]);
}

test('creating a webhook does not serialize the tenant’s other writes, and the cap still holds', {
  timeout: 60_000,
}, async (t) => {
  const { dbs } = await createRaceDatabase(t, { connections: 3 });
  const [first, second, observer] = dbs as [WebhooksDb, WebhooksDb, WebhooksDb];

  await t.test('a session is inserted while a create holds its tenant’s row', async () => {
    const pause = pauseAfterQuery((node) => node.includes('tenants'));
    const creating = service(first.withPlugin(pause.plugin)).create(DEFAULT_TENANT_ID, 'admin', {
      url: URL,
      events: ['session.completed'],
    });
    let outcome: 'done' | 'waited';
    try {
      await pause.reached;
      outcome = await beforeAnyLockWait(observer, insertSession(second, 's-during-create'));
    } finally {
      pause.release();
    }
    await creating;
    assert.equal(outcome, 'done', 'the session insert waited for the webhook create');
  });

  await t.test('a create does not wait for a transaction that inserted a session', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inserted: () => void = () => {};
    const insertedOnce = new Promise<void>((resolve) => {
      inserted = resolve;
    });
    const transaction = second.transaction().execute(async (trx) => {
      await insertSession(trx, 's-open');
      inserted();
      await held;
    });
    let outcome: 'done' | 'waited';
    try {
      await insertedOnce;
      outcome = await beforeAnyLockWait(
        observer,
        service(first).create(DEFAULT_TENANT_ID, 'admin', { url: URL, events: ['session.completed'] }),
      );
    } finally {
      release();
    }
    await transaction;
    assert.equal(outcome, 'done', 'the webhook create waited for the session insert’s transaction');
  });

  await t.test('concurrent creates queue on the tenant: the cap holds exactly', async () => {
    // Two subscriptions exist; a cap of 3 leaves room for one of two creates at once.
    const pause = pauseAfterQuery((node) => node.includes('tenants'));
    const held = service(first.withPlugin(pause.plugin), 3).create(DEFAULT_TENANT_ID, 'admin', {
      url: URL,
      events: ['session.completed'],
    });
    await pause.reached;
    const other = service(second, 3).create(DEFAULT_TENANT_ID, 'admin', {
      url: URL,
      events: ['session.failed'],
    });
    // The other create waits for the held one's lock on the tenant, then counts its subscription.
    await waitForLockWaiter(observer);
    pause.release();
    const results = await Promise.allSettled([held, other]);
    assert.equal(results[0].status, 'fulfilled');
    assert.equal(results[1].status, 'rejected');
    assert.equal((results[1] as PromiseRejectedResult).reason.code, 'RESOURCE_LIMIT_EXCEEDED');
    const count = await observer
      .selectFrom('webhooks')
      .select('id')
      .where('tenant_id', '=', DEFAULT_TENANT_ID)
      .execute();
    assert.equal(count.length, 3);
  });
});
