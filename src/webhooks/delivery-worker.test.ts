// The retry schedule of webhook deliveries: the configured delay of the failed attempt ±20%, the
// last entry repeating; Retry-After read as seconds or as an HTTP date; and a rotated signing
// secret's grace period (both signatures, then the new one alone), on an injected clock; a 410 Gone
// disabling the subscription and failing its pending deliveries unsent; an attempt that outlived its
// lease recording nothing, a Retry-After under a second not retrying at once, and a replica without
// a keyring leaving the deliveries to one with it; plain http to a host no longer trusted sending nothing;
// a signing secret whose key left the keyring failing with the message the docs name; a URL on a
// port fetch refuses failing at its first attempt with the reason; a delivered
// attempt counted although the reset of its failures in a row fails (and then not recorded either),
// and only HTTP requests timed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { sql } from 'kysely';
import { freePort } from '../../test/fixtures/free-port.ts';
import { captureLog } from '../../test/fixtures/log-capture.ts';
import { copyMigratedSqlite } from '../../test/fixtures/migrated-sqlite.ts';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import {
  type ReceivedDelivery,
  startWebhookReceiver,
  verifyDelivery,
} from '../../test/fixtures/webhook-receiver.ts';
import { configSchema } from '../config/schema.ts';
import { parseRetryAfter } from '../domain/http-date.ts';
import { createLogger } from '../observability/logger.ts';
import { createAuditLog } from '../security/audit/audit-log.ts';
import { createSecretStore } from '../security/secret-store.ts';
import { generateKekEntry, parseKekRing } from '../security/secrets.ts';
import type { SecurityDb } from '../security/security-tables.ts';
import { createDatabase } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { DEFAULT_TENANT_ID } from '../store/migrations/0001-foundation.ts';
import { retryDelayMs, retryWindowMs, startDeliveryWorker } from './delivery-worker.ts';
import { generateWebhookSecret } from './signature.ts';
import { createWebhookService, previousWebhookSecretName, webhookSecretName } from './webhook-service.ts';
import type { WebhooksDb } from './webhook-tables.ts';

test('retry delays follow the schedule within ±20%, the last entry repeating', () => {
  const schedule = [30, 120, 600];
  assert.equal(
    retryDelayMs(schedule, 1, () => 0.5),
    30_000,
  );
  assert.equal(
    retryDelayMs(schedule, 2, () => 0),
    96_000,
  );
  assert.equal(
    retryDelayMs(schedule, 3, () => 1),
    720_000,
  );
  assert.equal(
    retryDelayMs(schedule, 7, () => 0.5),
    600_000,
  );
});

test('Retry-After is read as seconds or as an HTTP date; anything else is ignored', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter(' 5 ', now), 5000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 12:01:30 GMT', now), 90_000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 11:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter(null, now), null);
  assert.equal(parseRetryAfter('soon', now), null);
  // Not seconds, not a date, although Date.parse reads each as a date long past (due at once).
  for (const value of ['1.5', '0.5', '-1', 'in 1']) assert.equal(parseRetryAfter(value, now), null, value);
  assert.equal(parseRetryAfter('Thursday, 01-Jan-26 12:00:10 GMT', now), 10_000);
});

test('a Retry-After date is read as GMT in each of HTTP’s three formats, whatever the server’s time zone', (t) => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  // RFC 9110 §5.6.7: a recipient accepts IMF-fixdate, RFC 850 and asctime dates, all of them GMT
  // (asctime names no zone). Date.parse reads an asctime date in the process's local time zone.
  const zone = process.env.TZ;
  t.after(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });
  for (const tz of ['America/New_York', 'Asia/Tokyo', 'UTC']) {
    process.env.TZ = tz;
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 12:01:30 GMT', now), 90_000, tz);
    assert.equal(parseRetryAfter('Thursday, 01-Jan-26 12:01:30 GMT', now), 90_000, tz);
    assert.equal(parseRetryAfter('Thu Jan  1 12:01:30 2026', now), 90_000, tz);
    assert.equal(parseRetryAfter('Thu Jan 15 12:00:00 2026', now), 14 * 86_400_000, tz);
  }
  // Not HTTP dates, although Date.parse reads a date (some in the future) into each: ignored.
  for (const value of [
    'Thu, 01 Jan 2026 13:00:00 +0100',
    'Thu, 01 Jan 2026 12:01:30',
    'Fri 2027',
    'Mon, 1',
    'Thu, 32 Jan 2026 12:00:00 GMT',
    'Thu, 01 Jan 2026 25:00:00 GMT',
  ]) {
    assert.equal(parseRetryAfter(value, now), null, value);
  }
});

/**
 * A migrated SQLite database in a temporary directory, closed and removed after the test: a copy of
 * one migrated once per file (migrating anew is most of a short test's time); migrateToLatest
 * then finds nothing pending.
 */
async function webhookStore(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'maos-webhook-worker-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await copyMigratedSqlite(dir);
  const config = configSchema.parse({ dataDir: dir });
  const handle = createDatabase(config);
  t.after(() => handle.close());
  assert.deepEqual(await migrateToLatest(handle.db), []);
  const db = handle.db as unknown as WebhooksDb;
  const kekRing = generateKekEntry('k1');
  const secrets = createSecretStore(handle.db as unknown as SecurityDb, parseKekRing(kekRing));
  return {
    db,
    config,
    kekRing,
    /** A subscription of the default tenant, with its signing secret. */
    async subscribe(id: string, url: string, at: number) {
      await db
        .insertInto('webhooks')
        .values({
          id,
          tenant_id: DEFAULT_TENANT_ID,
          url,
          events: '["session.completed"]',
          created_at: at,
          created_by: 'admin',
        })
        .execute();
      await secrets.put(DEFAULT_TENANT_ID, webhookSecretName(id), generateWebhookSecret());
    },
    /** A pending delivery of `webhookId`, due at `at`. */
    async enqueue(id: string, webhookId: string, at: number) {
      await db
        .insertInto('webhook_deliveries')
        .values({
          id,
          tenant_id: DEFAULT_TENANT_ID,
          webhook_id: webhookId,
          event: 'session.completed',
          session_id: 's1',
          payload: '{}',
          status: 'pending',
          attempts: 0,
          next_attempt_at: at,
          created_at: at,
        })
        .execute();
    },
    status: (id: string) =>
      db
        .selectFrom('webhook_deliveries')
        .select(['status', 'last_error'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow(),
    /** The webhook service over this store, on the test's clock (receivers on 127.0.0.1). */
    service: (now: () => number, secretRotationGraceSeconds: number, ring = kekRing) =>
      createWebhookService({
        db,
        kekRing: ring,
        ssrf: { allowedHosts: ['127.0.0.1'] },
        maxPerTenant: 5,
        secretRotationGraceSeconds,
        now,
      }),
  };
}

test('a name that resolves to a public address at the check and to loopback at the connection gets nothing', async (t) => {
  const store = await webhookStore(t);
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const now = Date.now();
  // `localhost` is what the connection resolves it to, unless the guard resolves it itself (https:
  // the host is not trusted, so plain http would be refused before any lookup).
  await store.subscribe('w1', receiver.url.replace('http://127.0.0.1', 'https://localhost'), now);
  await store.enqueue('d1', 'w1', now);
  // DNS rebinding: the first answer (the check) is public, every later one is loopback.
  let lookups = 0;
  const resolve = async () => (lookups++ === 0 ? ['203.0.113.7'] : ['127.0.0.1']);
  const worker = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, maxAttempts: 1 },
    kekRing: store.kekRing,
    ssrf: { resolve },
    logger: createLogger({ level: 'silent' }),
  });
  t.after(() => worker.stop());
  const row = await waitFor(
    async () => {
      const row = await store.status('d1');
      return row.status !== 'pending' && row;
    },
    10_000,
    'the delivery attempt',
  );
  assert.equal(receiver.received.length, 0);
  assert.equal(row.status, 'failed');
  assert.match(String(row.last_error), /internal network address/);
});

test('a receiver that hangs holds one attempt at a time: other subscriptions are delivered meanwhile', async (t) => {
  const store = await webhookStore(t);
  const stuck = await startWebhookReceiver();
  t.after(() => stuck.close());
  stuck.hang();
  const healthy = await startWebhookReceiver();
  t.after(() => healthy.close());
  const now = Date.now();
  await store.subscribe('w-stuck', stuck.url, now);
  await store.subscribe('w-healthy', healthy.url, now);
  // A backlog for the stuck receiver, all due before the healthy receiver's one delivery.
  for (let i = 0; i < 12; i += 1)
    await store.enqueue(`d-stuck-${String(i).padStart(2, '0')}`, 'w-stuck', now - 1000 + i);
  await store.enqueue('d-healthy', 'w-healthy', now);
  const worker = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, concurrency: 2, timeoutSeconds: 1 },
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
  });
  t.after(() => worker.stop());
  await waitFor(
    async () => (await store.status('d-healthy')).status === 'delivered',
    30_000,
    'the healthy delivery',
  );
  assert.equal(healthy.received.length, 1);
  assert.equal(stuck.received.length, 1, 'the stuck receiver got one attempt, not a slot per delivery');
});

test('a delivery enqueued while a receiver hangs goes out at once, not after the hanging attempt', async (t) => {
  const store = await webhookStore(t);
  const stuck = await startWebhookReceiver();
  t.after(() => stuck.close());
  stuck.hang();
  const healthy = await startWebhookReceiver();
  t.after(() => healthy.close());
  const now = Date.now();
  await store.subscribe('w-stuck', stuck.url, now);
  await store.subscribe('w-healthy', healthy.url, now);
  await store.enqueue('d-stuck', 'w-stuck', now);
  const worker = startDeliveryWorker({
    db: store.db,
    // The hanging attempt outlasts the test unless the healthy delivery waits for it.
    config: { ...store.config.webhooks, concurrency: 4, timeoutSeconds: 30 },
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
  });
  t.after(() => worker.stop());
  await waitFor(() => stuck.received.length === 1, 10_000, 'the hanging attempt');
  // Enqueued now, with a wake-up (what the outbox does at an append), while the attempt hangs.
  await store.enqueue('d-healthy', 'w-healthy', Date.now());
  void worker.runOnce();
  await waitFor(
    async () => (await store.status('d-healthy')).status === 'delivered',
    60_000,
    'the healthy delivery',
  );
  const hanging = await store.status('d-stuck');
  assert.deepEqual(
    hanging,
    { status: 'pending', last_error: null },
    'the hanging attempt is still in flight',
  );
  assert.equal(stuck.received.length, 1);
});

test('a retry that falls due while a receiver hangs is sent at the next poll', async (t) => {
  const store = await webhookStore(t);
  const stuck = await startWebhookReceiver();
  t.after(() => stuck.close());
  stuck.hang();
  const healthy = await startWebhookReceiver();
  t.after(() => healthy.close());
  let clock = Date.now();
  await store.subscribe('w-stuck', stuck.url, clock);
  await store.subscribe('w-healthy', healthy.url, clock);
  await store.enqueue('d-stuck', 'w-stuck', clock);
  // A retry, not due yet: no wake-up announces it, only a poll finds it.
  await store.enqueue('d-retry', 'w-healthy', clock + 60_000);
  const worker = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, timeoutSeconds: 30, pollIntervalMs: 50 },
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
    now: () => clock,
  });
  t.after(() => worker.stop());
  await waitFor(() => stuck.received.length === 1, 10_000, 'the hanging attempt');
  // Several poll intervals pass while the attempt hangs, then the retry falls due.
  await new Promise((resolve) => setTimeout(resolve, 300));
  clock += 60_000;
  await waitFor(async () => (await store.status('d-retry')).status === 'delivered', 60_000, 'the retry');
  assert.deepEqual(await store.status('d-stuck'), { status: 'pending', last_error: null }, 'still in flight');
});

test('retries due before the next poll go out when due, not at the poll', async (t) => {
  const store = await webhookStore(t);
  const early = await startWebhookReceiver();
  t.after(() => early.close());
  early.answer([500, 204]);
  const late = await startWebhookReceiver();
  t.after(() => late.close());
  // Retry-After: 1 makes this retry fall due after the other one, which the retry timer holds first.
  late.answer([503, 204], { 'retry-after': '1' });
  const now = Date.now();
  await store.subscribe('w-early', early.url, now);
  await store.subscribe('w-late', late.url, now);
  await store.enqueue('d-early', 'w-early', now);
  await store.enqueue('d-late', 'w-late', now);
  const worker = startDeliveryWorker({
    db: store.db,
    // No poll comes during the test: the first one is a minute away.
    config: { ...store.config.webhooks, pollIntervalMs: 60_000, retryDelaysSeconds: [0.05] },
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
    random: () => 0.5,
  });
  t.after(() => worker.stop());
  for (const id of ['d-early', 'd-late']) {
    await waitFor(async () => (await store.status(id)).status === 'delivered', 10_000, id);
  }
  assert.equal(early.received.length, 2);
  assert.equal(late.received.length, 2);
});

test('after a rotation both secrets sign until the grace ends, then the new one alone and the old one is forgotten', async (t) => {
  const store = await webhookStore(t);
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  let clock = Date.parse('2026-03-01T12:00:00Z');
  const now = () => clock;
  const ssrf = { allowedHosts: ['127.0.0.1'] };
  // A grace shorter than the worker's sweep interval: the expired secret is forgotten when signing.
  const service = store.service(now, 30);
  const created = await service.create(DEFAULT_TENANT_ID, 'admin', {
    url: receiver.url,
    events: ['session.completed'],
  });
  const rotated = await service.rotateSecret(DEFAULT_TENANT_ID, created.id);
  assert.notEqual(rotated.secret, created.secret);
  assert.equal(rotated.previousSecretExpiresAt, '2026-03-01T12:00:30.000Z');
  // `maos secrets rewrap` re-wraps the previous secret too: it still signs once the old KEK is gone.
  const k2 = generateKekEntry('k2');
  const rewrapRing = parseKekRing(`${k2},${store.kekRing}`);
  assert.equal(await createSecretStore(store.db as unknown as SecurityDb, rewrapRing).rewrapAll(), 2);
  const worker = startDeliveryWorker({
    db: store.db,
    config: store.config.webhooks,
    kekRing: k2,
    ssrf,
    logger: createLogger({ level: 'silent' }),
    now,
  });
  t.after(() => worker.stop());
  const deliver = async (id: string) => {
    await store.enqueue(id, created.id, clock);
    await worker.runOnce();
    await waitFor(async () => (await store.status(id)).status === 'delivered', 10_000, id);
    return receiver.received.at(-1) as ReceivedDelivery;
  };
  const previousRow = () =>
    store.db
      .selectFrom('tenant_secrets' as never)
      .select('name' as never)
      .where('name' as never, '=', previousWebhookSecretName(created.id) as never)
      .executeTakeFirst();

  clock += 29_000;
  const during = await deliver('d-during');
  assert.ok(verifyDelivery(rotated.secret, during), 'the new secret verifies');
  assert.ok(verifyDelivery(created.secret, during), 'the previous one too, during the grace');
  const [first, second, ...rest] = String(during.headers['webhook-signature']).split(' ');
  assert.deepEqual(rest, []);
  assert.ok(
    verifyDelivery(rotated.secret, { ...during, headers: { ...during.headers, 'webhook-signature': first } }),
  );
  assert.ok(
    verifyDelivery(created.secret, {
      ...during,
      headers: { ...during.headers, 'webhook-signature': second },
    }),
  );

  clock += 1000;
  const after = await deliver('d-after');
  assert.ok(verifyDelivery(rotated.secret, after));
  assert.ok(!verifyDelivery(created.secret, after), 'the previous secret no longer signs');
  assert.equal(String(after.headers['webhook-signature']).split(' ').length, 1);
  assert.equal(await previousRow(), undefined, 'and it is forgotten');

  // Grace 0: the previous secret signs nothing from the rotation on.
  const instant = store.service(now, 0, k2);
  const again = await instant.rotateSecret(DEFAULT_TENANT_ID, created.id);
  assert.equal(again.previousSecretExpiresAt, null);
  const revoked = await deliver('d-revoked');
  assert.ok(verifyDelivery(again.secret, revoked));
  assert.ok(!verifyDelivery(rotated.secret, revoked));
  assert.equal(await previousRow(), undefined);
});

test('a previous secret past its grace is forgotten by the sweep even without deliveries; delete removes it', async (t) => {
  const store = await webhookStore(t);
  let clock = Date.parse('2026-03-01T12:00:00Z');
  const now = () => clock;
  const ssrf = { allowedHosts: ['127.0.0.1'] };
  const service = store.service(now, 60);
  const names = async () =>
    (
      await store.db
        .selectFrom('tenant_secrets' as never)
        .select('name' as never)
        .orderBy('name' as never)
        .execute()
    ).map((row) => (row as { name: string }).name);
  // Nothing is delivered: any port fetch does not refuse will do.
  const port = await freePort();
  const first = await service.create(DEFAULT_TENANT_ID, 'admin', {
    url: `http://127.0.0.1:${port}/a`,
    events: ['session.completed'],
  });
  const second = await service.create(DEFAULT_TENANT_ID, 'admin', {
    url: `http://127.0.0.1:${port}/b`,
    events: ['session.completed'],
  });
  await service.rotateSecret(DEFAULT_TENANT_ID, first.id);
  await service.rotateSecret(DEFAULT_TENANT_ID, second.id);
  assert.deepEqual(
    await names(),
    [
      webhookSecretName(first.id),
      previousWebhookSecretName(first.id),
      webhookSecretName(second.id),
      previousWebhookSecretName(second.id),
    ].sort(),
  );
  await service.delete(DEFAULT_TENANT_ID, second.id);
  assert.deepEqual(await names(), [webhookSecretName(first.id), previousWebhookSecretName(first.id)].sort());
  await assert.rejects(service.rotateSecret('other-tenant', first.id), { code: 'NOT_FOUND' });

  clock += 60_000;
  const worker = startDeliveryWorker({
    db: store.db,
    config: store.config.webhooks,
    kekRing: store.kekRing,
    ssrf,
    logger: createLogger({ level: 'silent' }),
    now,
  });
  t.after(() => worker.stop());
  await worker.runOnce();
  assert.deepEqual(await names(), [webhookSecretName(first.id)]);
  const row = await store.db
    .selectFrom('webhooks')
    .select('previous_secret_expires_at')
    .where('id', '=', first.id)
    .executeTakeFirstOrThrow();
  assert.equal(row.previous_secret_expires_at, null);
});

test('a previous secret past its grace is forgotten while a receiver hangs', async (t) => {
  const store = await webhookStore(t);
  const stuck = await startWebhookReceiver();
  t.after(() => stuck.close());
  stuck.hang();
  let clock = Date.now();
  await store.subscribe('w-stuck', stuck.url, clock);
  await store.subscribe('w-rotated', 'http://127.0.0.1:9/hooks', clock);
  await store.enqueue('d-stuck', 'w-stuck', clock);
  await store.service(() => clock, 1).rotateSecret(DEFAULT_TENANT_ID, 'w-rotated');
  const worker = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, timeoutSeconds: 30, pollIntervalMs: 50 },
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
    now: () => clock,
  });
  t.after(() => worker.stop());
  await waitFor(() => stuck.received.length === 1, 10_000, 'the hanging attempt');
  // The grace and the sweep's interval end while the attempt hangs (its lease does not).
  clock += 61_000;
  await waitFor(
    async () => {
      const row = await store.db
        .selectFrom('webhooks')
        .select('previous_secret_expires_at')
        .where('id', '=', 'w-rotated')
        .executeTakeFirstOrThrow();
      return row.previous_secret_expires_at === null;
    },
    60_000,
    'the expired secret forgotten',
  );
  assert.deepEqual(await store.status('d-stuck'), { status: 'pending', last_error: null }, 'still in flight');
  const previous = await store.db
    .selectFrom('tenant_secrets' as never)
    .select('name' as never)
    .where('name' as never, '=', previousWebhookSecretName('w-rotated') as never)
    .execute();
  assert.equal(previous.length, 0);
});

test('a 410 Gone disables the subscription: its other pending deliveries fail unsent, once counted', async (t) => {
  const store = await webhookStore(t);
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  receiver.answer([410]);
  const now = Date.now();
  await store.subscribe('w-gone', receiver.url, now);
  // One attempt at a time per subscription: d1 goes first, d2 and d3 wait behind it.
  await store.enqueue('d1', 'w-gone', now - 2);
  await store.enqueue('d2', 'w-gone', now - 1);
  await store.enqueue('d3', 'w-gone', now);
  const disabled: string[] = [];
  const log = captureLog<{ message: string; webhookId?: string; reason?: string }>();
  const auditLog = createAuditLog({ db: store.db as unknown as SecurityDb, origin: 'test/audit' });
  const worker = startDeliveryWorker({
    db: store.db,
    config: store.config.webhooks,
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'info', destination: log.destination }),
    observer: { attempted: () => {}, disabled: (reason) => disabled.push(reason) },
    auditLog,
  });
  t.after(() => worker.stop());
  await waitFor(
    async () => (await store.status('d3')).status === 'failed',
    10_000,
    'the pending deliveries failed',
  );
  await worker.runOnce();
  assert.equal(receiver.received.length, 1, 'only the first was sent');
  assert.deepEqual(await store.status('d1'), { status: 'failed', last_error: 'HTTP 410' });
  for (const id of ['d2', 'd3'])
    assert.deepEqual(await store.status(id), { status: 'failed', last_error: 'subscription disabled' });
  const row = await store.db
    .selectFrom('webhooks')
    .select(['disabled_at', 'disabled_reason'])
    .where('id', '=', 'w-gone')
    .executeTakeFirstOrThrow();
  assert.ok(Number(row.disabled_at) >= now);
  assert.equal(row.disabled_reason, 'the receiver answered 410 Gone');
  assert.deepEqual(disabled, ['gone']);
  const warnings = log.lines.filter((line) => line.message.startsWith('webhook subscription disabled'));
  assert.deepEqual(
    warnings.map((line) => [line.webhookId, line.reason]),
    [['w-gone', 'the receiver answered 410 Gone']],
  );
  // In the audit log, as a re-enable is: the server as actor, the subscription (of its tenant) as target.
  const { items } = await auditLog.list({ limit: 10 });
  assert.deepEqual(
    items.map((record) => [record.action, record.actor, record.target, record.outcome, record.reason]),
    [
      [
        'webhooks:disable',
        {
          type: 'system',
          id: 'webhook-delivery-worker',
          tenant: null,
          client_id: null,
          ip: null,
          user_agent: null,
          auth_method: null,
        },
        { type: 'webhooks', id: 'w-gone', tenant: DEFAULT_TENANT_ID },
        'success',
        'the receiver answered 410 Gone',
      ],
    ],
  );
  // The tenant's own listing (GET /v1/audit) shows it.
  const { items: tenants } = await auditLog.list({ tenantId: DEFAULT_TENANT_ID, limit: 10 });
  assert.deepEqual(
    tenants.map((record) => record.action),
    ['webhooks:disable'],
  );
});

test('a delivery claimed after its subscription was disabled is not sent', async (t) => {
  const store = await webhookStore(t);
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const now = Date.now();
  await store.subscribe('w-off', receiver.url, now);
  // Disabled after the delivery was enqueued, its pending rows not yet failed (another replica's
  // disabling racing this claim).
  await store.enqueue('d-off', 'w-off', now);
  await store.db
    .updateTable('webhooks')
    .set({ disabled_at: now, disabled_reason: 'the receiver answered 410 Gone' })
    .where('id', '=', 'w-off')
    .execute();
  const worker = startDeliveryWorker({
    db: store.db,
    config: store.config.webhooks,
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
  });
  t.after(() => worker.stop());
  await waitFor(async () => (await store.status('d-off')).status === 'failed', 10_000, 'the delivery failed');
  assert.deepEqual(await store.status('d-off'), { status: 'failed', last_error: 'subscription disabled' });
  const row = await store.db
    .selectFrom('webhook_deliveries')
    .select(['attempts', 'lease_owner'])
    .where('id', '=', 'd-off')
    .executeTakeFirstOrThrow();
  assert.deepEqual([Number(row.attempts), row.lease_owner], [0, null], 'not counted as an attempt');
  assert.equal(receiver.received.length, 0);
});

test('enabling an active subscription keeps its count of failed deliveries in a row', async (t) => {
  const store = await webhookStore(t);
  const now = Date.now();
  await store.subscribe('w-active', 'http://127.0.0.1:9/hooks', now);
  await store.subscribe('w-off', 'http://127.0.0.1:9/hooks', now);
  await store.db.updateTable('webhooks').set({ consecutive_failures: 7 }).execute();
  await store.db
    .updateTable('webhooks')
    .set({ disabled_at: now, disabled_reason: '20 deliveries in a row failed' })
    .where('id', '=', 'w-off')
    .execute();
  const service = store.service(() => now, 0);
  const failures = async (id: string) =>
    Number(
      (
        await store.db
          .selectFrom('webhooks')
          .select('consecutive_failures')
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
      ).consecutive_failures,
    );
  const active = await service.enable(DEFAULT_TENANT_ID, 'w-active');
  assert.equal(active.disabledAt, null);
  assert.equal(await failures('w-active'), 7, 'an active one: nothing changes');
  const enabled = await service.enable(DEFAULT_TENANT_ID, 'w-off');
  assert.deepEqual([enabled.disabledAt, enabled.disabledReason], [null, null]);
  assert.equal(await failures('w-off'), 0, 'a disabled one starts counting again');
  await assert.rejects(service.enable('another-tenant', 'w-off'), { code: 'NOT_FOUND' });
});

test('an attempt that ends after its lease ran out and the delivery was claimed again records nothing', async (t) => {
  const store = await webhookStore(t);
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  receiver.hang();
  let clock = Date.now();
  await store.subscribe('w1', receiver.url, clock);
  await store.enqueue('d1', 'w1', clock);
  const attempted: string[] = [];
  const log = captureLog<{ message: string; attempts?: number }>();
  const worker = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, timeoutSeconds: 30, pollIntervalMs: 50 },
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'info', destination: log.destination }),
    observer: { attempted: (_event, outcome) => attempted.push(outcome) },
    now: () => clock,
  });
  t.after(() => worker.stop());
  const row = () =>
    store.db
      .selectFrom('webhook_deliveries')
      .select(['status', 'attempts', 'lease_owner', 'last_error'])
      .where('id', '=', 'd1')
      .executeTakeFirstOrThrow();
  await waitFor(() => receiver.received.length === 1, 10_000, 'the first attempt');
  // The first attempt stalls past its lease (2 × 30 s + 10 s): the next poll claims the delivery
  // again, on the same worker, while the first is still waiting for its answer.
  clock += 71_000;
  await waitFor(() => receiver.received.length === 2, 10_000, 'the second attempt');
  const leased = await row();
  assert.equal(Number(leased.attempts), 2);
  // The first attempt's answer comes now: a 500, which would schedule a retry if it were recorded.
  assert.ok(receiver.release(500));
  const ended = await waitFor(
    () => log.lines.find((line) => line.message.startsWith('webhook delivery attempt')),
    10_000,
    'the first attempt ended',
  );
  // Its outcome is not written over the second attempt's lease (nor counted).
  assert.deepEqual(
    [ended.message, ended.attempts],
    ['webhook delivery attempt ended after its lease ran out; its outcome is not recorded', 1],
  );
  assert.deepEqual(await row(), leased);
  assert.deepEqual(attempted, []);
  // The second attempt's answer is the one recorded.
  assert.ok(receiver.release(204));
  await waitFor(() => attempted.length > 0, 10_000, 'the second attempt recorded');
  assert.deepEqual(attempted, ['delivered']);
  assert.equal((await row()).status, 'delivered');
  assert.equal(receiver.received.length, 2);
});

test('a Retry-After of 0 or a date already past waits the schedule’s delay, not retrying at once', async (t) => {
  const store = await webhookStore(t);
  const clock = Date.parse('2026-01-01T12:00:00Z');
  const cases = [
    { id: 'w-zero', retryAfter: '0' },
    { id: 'w-past', retryAfter: 'Thu, 01 Jan 2026 11:59:00 GMT' },
    { id: 'w-two', retryAfter: '2' },
  ];
  for (const { id, retryAfter } of cases) {
    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    receiver.answer([503], { 'retry-after': retryAfter });
    await store.subscribe(id, receiver.url, clock);
    await store.enqueue(`d-${id}`, id, clock);
  }
  let retried = 0;
  const worker = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, retryDelaysSeconds: [30, 120] },
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
    observer: { attempted: () => (retried += 1) },
    now: () => clock,
    random: () => 0.5,
  });
  t.after(() => worker.stop());
  await waitFor(() => retried === cases.length, 10_000, 'the first attempts');
  const rows = await store.db
    .selectFrom('webhook_deliveries')
    .select(['webhook_id', 'attempts', 'next_attempt_at'])
    .orderBy('webhook_id')
    .execute();
  assert.deepEqual(
    rows.map((row) => [row.webhook_id, Number(row.attempts), Number(row.next_attempt_at) - clock]),
    [
      ['w-past', 1, 30_000],
      ['w-two', 1, 2000],
      ['w-zero', 1, 30_000],
    ],
  );
});

test('the retry window bounds a delivery whatever Retry-After says: given up at its end, unsent, counted and logged', async (t) => {
  const store = await webhookStore(t);
  const config = { ...store.config.webhooks, pollIntervalMs: 60_000 };
  // The default schedule at its longest (30 s + 2 min + … + 12 h, +20%) and 8 timeouts of 10 s.
  const windowMs = retryWindowMs(config);
  assert.equal(windowMs, 96_020_000);
  const start = Date.parse('2026-01-01T12:00:00Z');
  let clock = start;
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  // Come back in a day, every time: honoured, each wait would push the delivery a day further.
  receiver.answer([503], { 'retry-after': '86400' });
  await store.subscribe('w-later', receiver.url, start);
  await store.enqueue('d-later', 'w-later', start);
  // Enqueued longer ago than the window, never attempted (no replica could sign it, say): its first
  // attempt is made, and its failure gives it up at once.
  const old = await startWebhookReceiver();
  t.after(() => old.close());
  old.answer([500]);
  await store.subscribe('w-old', old.url, start);
  await store.enqueue('d-old', 'w-old', start);
  await store.db
    .updateTable('webhook_deliveries')
    .set({ created_at: start - windowMs - 1 })
    .where('id', '=', 'd-old')
    .execute();
  const attempted: string[] = [];
  const log = captureLog<{ message: string; deliveryId?: string; error?: string }>();
  const worker = startDeliveryWorker({
    db: store.db,
    config,
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'info', destination: log.destination }),
    observer: { attempted: (_event, outcome) => attempted.push(outcome) },
    now: () => clock,
    random: () => 0.5,
  });
  t.after(() => worker.stop());
  const row = (id: string) =>
    store.db
      .selectFrom('webhook_deliveries')
      .select(['status', 'attempts', 'next_attempt_at', 'last_error'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
  await waitFor(() => attempted.length === 2, 10_000, 'the first attempts');
  assert.deepEqual(
    { status: (await row('d-old')).status, attempts: Number((await row('d-old')).attempts) },
    { status: 'failed', attempts: 1 },
  );
  assert.equal((await row('d-old')).last_error, "HTTP 500 (not retried: the delivery's retry window ended)");
  // A day fits in the window: honoured.
  assert.equal(Number((await row('d-later')).next_attempt_at), start + 86_400_000);
  clock = start + 86_400_000;
  await worker.runOnce();
  assert.equal(receiver.received.length, 2);
  // Another day does not: no third attempt, given up when the window ends.
  const waiting = await row('d-later');
  assert.deepEqual(
    [waiting.status, Number(waiting.attempts), Number(waiting.next_attempt_at)],
    ['pending', 2, start + windowMs],
  );
  assert.equal(
    waiting.last_error,
    `HTTP 503 (its Retry-After, 86400 s, ends after the delivery's retry window: given up at its end, ${new Date(start + windowMs).toISOString()})`,
  );
  clock = start + windowMs - 1;
  await worker.runOnce();
  assert.equal((await row('d-later')).status, 'pending');
  clock = start + windowMs;
  await worker.runOnce();
  const ended = await row('d-later');
  assert.deepEqual(
    [ended.status, Number(ended.attempts)],
    ['failed', 2],
    'given up unsent: no attempt counted',
  );
  assert.equal(ended.last_error, waiting.last_error);
  assert.equal(receiver.received.length, 2);
  // Counted and logged as the other give-ups are, and a failure in a row of its subscription.
  assert.deepEqual(attempted.sort(), ['failed', 'failed', 'retried', 'retried']);
  assert.deepEqual(
    log.lines
      .filter((line) => line.message === 'webhook delivery failed for good')
      .map((line) => line.deliveryId)
      .sort(),
    ['d-later', 'd-old'],
  );
  const subscription = await store.db
    .selectFrom('webhooks')
    .select('consecutive_failures')
    .where('id', '=', 'w-later')
    .executeTakeFirstOrThrow();
  assert.equal(Number(subscription.consecutive_failures), 1);
});

test('a replica without secrets.kekRing claims no delivery, says so once, and leaves it to one with the keyring', async (t) => {
  const store = await webhookStore(t);
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const now = Date.now();
  await store.subscribe('w1', receiver.url, now);
  await store.enqueue('d1', 'w1', now);
  const log = captureLog<{ message: string }>();
  const unkeyed = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, pollIntervalMs: 50 },
    kekRing: undefined,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'info', destination: log.destination }),
  });
  t.after(() => unkeyed.stop());
  const row = () =>
    store.db
      .selectFrom('webhook_deliveries')
      .select(['status', 'attempts', 'lease_owner', 'last_error'])
      .where('id', '=', 'd1')
      .executeTakeFirstOrThrow();
  await waitFor(
    async () => log.lines.length > 0 || Number((await row()).attempts) > 0,
    10_000,
    'the worker without a keyring to look at the due delivery',
  );
  // Several polls later: still one warning, and the delivery untouched.
  for (let i = 0; i < 3; i += 1) await unkeyed.runOnce();
  assert.deepEqual(await row(), { status: 'pending', attempts: 0, lease_owner: null, last_error: null });
  assert.deepEqual(
    log.lines.map((line) => line.message),
    [
      'webhook deliveries are due, but this replica sends none: secrets.kekRing is unset, so it cannot ' +
        'sign them; replicas with the keyring send them (none: they stay pending)',
    ],
  );
  assert.equal(receiver.received.length, 0);
  const keyed = startDeliveryWorker({
    db: store.db,
    config: store.config.webhooks,
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
  });
  t.after(() => keyed.stop());
  await waitFor(
    async () => (await row()).status === 'delivered',
    10_000,
    'the delivery by the keyed replica',
  );
  assert.equal(Number((await row()).attempts), 1);
  assert.equal(receiver.received.length, 1);
});

test('plain http to a host the operator no longer trusts gets nothing, though its network is allowed', async (t) => {
  const store = await webhookStore(t);
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const now = Date.now();
  // Created while 127.0.0.1 was in ssrf.allowedHosts; the operator has since opened its network only.
  await store.subscribe('w1', receiver.url, now);
  await store.enqueue('d1', 'w1', now);
  const worker = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, maxAttempts: 1 },
    kekRing: store.kekRing,
    ssrf: { allowedNetworks: ['127.0.0.0/8'] },
    logger: createLogger({ level: 'silent' }),
  });
  t.after(() => worker.stop());
  const row = await waitFor(
    async () => {
      const row = await store.status('d1');
      return row.status !== 'pending' && row;
    },
    10_000,
    'the delivery attempt',
  );
  assert.equal(receiver.received.length, 0, 'nothing sent in clear text');
  assert.equal(row.status, 'failed');
  assert.match(String(row.last_error), /must use https/);
});

test('a subscription on a port fetch refuses fails its delivery at the first attempt, saying why', async (t) => {
  const store = await webhookStore(t);
  const now = Date.now();
  // Stored before such URLs were refused at creation: fetch refuses port 6000 for every request.
  await store.subscribe('w1', 'http://127.0.0.1:6000/hooks', now);
  await store.enqueue('d1', 'w1', now);
  const worker = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, maxAttempts: 5, retryDelaysSeconds: [0.05] },
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
  });
  t.after(() => worker.stop());
  const row = await waitFor(
    async () => {
      const row = await store.status('d1');
      return row.last_error !== null && row;
    },
    10_000,
    'the delivery attempt',
  );
  assert.match(
    String(row.last_error),
    /^http:\/\/127\.0\.0\.1:6000: port 6000 is one the HTTP client \(Node's fetch\) refuses for every request/,
  );
  assert.equal(row.status, 'failed', 'not retried: fetch refuses the port on every attempt');
  const attempts = await store.db
    .selectFrom('webhook_deliveries')
    .select('attempts')
    .where('id', '=', 'd1')
    .executeTakeFirstOrThrow();
  assert.equal(Number(attempts.attempts), 1);
});

test('a signing secret whose key left the keyring fails the attempt with the message the runbook names', async (t) => {
  const store = await webhookStore(t);
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const now = Date.now();
  await store.subscribe('w1', receiver.url, now);
  await store.enqueue('d1', 'w1', now);
  // The replica's keyring no longer holds k1, the key the secret was stored with.
  const worker = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, maxAttempts: 1 },
    kekRing: generateKekEntry('k2'),
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
  });
  t.after(() => worker.stop());
  const row = await waitFor(
    async () => {
      const row = await store.status('d1');
      return row.status !== 'pending' && row;
    },
    10_000,
    'the delivery attempt',
  );
  assert.equal(receiver.received.length, 0);
  assert.equal(row.status, 'failed');
  assert.match(
    String(row.last_error),
    /^the signing secret cannot be read \(secrets\.kekRing changed\): .*KEK k1 is not in the keyring/,
  );
});

test('a delivered attempt is counted even when resetting its subscription’s failures in a row fails', async (t) => {
  const store = await webhookStore(t);
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const now = Date.now();
  await store.subscribe('w1', receiver.url, now);
  await store.db.updateTable('webhooks').set({ consecutive_failures: 1 }).where('id', '=', 'w1').execute();
  // The database refuses the reset (as a connection lost at that moment would).
  await sql`CREATE TRIGGER refuse_reset BEFORE UPDATE OF consecutive_failures ON webhooks
    BEGIN SELECT RAISE(ABORT, 'reset refused'); END`.execute(store.db);
  await store.enqueue('d1', 'w1', now);
  const attempted: [string, number | null][] = [];
  const log = captureLog<{ message: string }>();
  const worker = startDeliveryWorker({
    db: store.db,
    config: store.config.webhooks,
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'warn', destination: log.destination }),
    observer: { attempted: (_event, outcome, seconds) => attempted.push([outcome, seconds]) },
  });
  t.after(() => worker.stop());
  await waitFor(
    () => log.lines.some((line) => line.message === 'webhook delivery not recorded'),
    10_000,
    'the failed reset',
  );
  // Recorded with the reset or not at all: still pending, sent again once its lease runs out.
  assert.equal((await store.status('d1')).status, 'pending');
  assert.deepEqual(
    attempted.map(([outcome, seconds]) => [outcome, typeof seconds]),
    [['delivered', 'number']],
  );
});

test('an attempt that sends nothing is counted but not timed; one that sends is timed', async (t) => {
  const store = await webhookStore(t);
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const now = Date.now();
  await store.subscribe('w1', receiver.url, now);
  await store.enqueue('d1', 'w1', now);
  const attempted: [string, number | null][] = [];
  const observer = {
    attempted: (_event: string, outcome: string, seconds: number | null) =>
      attempted.push([outcome, seconds]),
  };
  // First a replica whose keyring no longer holds the secret's key: it cannot sign, so sends nothing.
  const unsigned = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, maxAttempts: 2 },
    kekRing: generateKekEntry('k2'),
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
    observer,
  });
  await waitFor(() => attempted.length === 1, 10_000, 'the unsigned attempt');
  await unsigned.stop();
  assert.deepEqual(attempted, [['retried', null]]);
  assert.equal(receiver.received.length, 0);
  // Then one with the key: the attempt's HTTP request is timed.
  await store.db
    .updateTable('webhook_deliveries')
    .set({ next_attempt_at: now })
    .where('id', '=', 'd1')
    .execute();
  const worker = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, maxAttempts: 2 },
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
    observer,
  });
  t.after(() => worker.stop());
  await waitFor(() => attempted.length === 2, 10_000, 'the signed attempt');
  assert.equal(receiver.received.length, 1);
  assert.equal(attempted[1]?.[0], 'delivered');
  assert.equal(typeof attempted[1]?.[1], 'number');
});
