// The retry schedule of webhook deliveries: the configured delay of the failed attempt ±20%, the
// last entry repeating; and Retry-After read as seconds or as an HTTP date.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { startWebhookReceiver } from '../../test/fixtures/webhook-receiver.ts';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../observability/logger.ts';
import { createSecretStore } from '../security/secret-store.ts';
import { generateKekEntry, parseKekRing } from '../security/secrets.ts';
import type { SecurityDb } from '../security/security-tables.ts';
import { createDatabase } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { DEFAULT_TENANT_ID } from '../store/migrations/0001-foundation.ts';
import { parseRetryAfter, retryDelayMs, startDeliveryWorker } from './delivery-worker.ts';
import { generateWebhookSecret } from './signature.ts';
import { webhookSecretName } from './webhook-service.ts';
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
});

test('a name that resolves to a public address at the check and to loopback at the connection gets nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-webhook-rebind-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = configSchema.parse({ dataDir: dir });
  const handle = createDatabase(config);
  t.after(() => handle.close());
  await migrateToLatest(handle.db);
  const db = handle.db as unknown as WebhooksDb;
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const kekRing = generateKekEntry('k1');
  const now = Date.now();
  await db
    .insertInto('webhooks')
    .values({
      id: 'w1',
      tenant_id: DEFAULT_TENANT_ID,
      // `localhost` is what the connection resolves it to, unless the guard resolves it itself.
      url: receiver.url.replace('127.0.0.1', 'localhost'),
      events: '["session.completed"]',
      created_at: now,
      created_by: 'admin',
    })
    .execute();
  await createSecretStore(handle.db as unknown as SecurityDb, parseKekRing(kekRing)).put(
    DEFAULT_TENANT_ID,
    webhookSecretName('w1'),
    generateWebhookSecret(),
  );
  await db
    .insertInto('webhook_deliveries')
    .values({
      id: 'd1',
      tenant_id: DEFAULT_TENANT_ID,
      webhook_id: 'w1',
      event: 'session.completed',
      session_id: 's1',
      payload: '{}',
      status: 'pending',
      attempts: 0,
      next_attempt_at: now,
      created_at: now,
    })
    .execute();
  // DNS rebinding: the first answer (the check) is public, every later one is loopback.
  let lookups = 0;
  const resolve = async () => (lookups++ === 0 ? ['203.0.113.7'] : ['127.0.0.1']);
  const worker = startDeliveryWorker({
    db,
    config: { ...config.webhooks, maxAttempts: 1 },
    kekRing,
    ssrf: { resolve },
    logger: createLogger({ level: 'silent' }),
  });
  t.after(() => worker.stop());
  const row = await waitFor(
    async () =>
      db
        .selectFrom('webhook_deliveries')
        .select(['status', 'last_error'])
        .where('id', '=', 'd1')
        .where('status', '!=', 'pending')
        .executeTakeFirst(),
    10_000,
    'the delivery attempt',
  );
  assert.equal(receiver.received.length, 0);
  assert.equal(row.status, 'failed');
  assert.match(String(row.last_error), /internal network address/);
});
