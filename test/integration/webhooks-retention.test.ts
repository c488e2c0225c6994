// Retention of webhook deliveries (`webhooks.deliveryRetentionDays`): delivered and failed ones
// enqueued before the cut-off are deleted by the retention pass, in batches; pending ones, however
// old, and newer ones stay. Real SQLite database, migrated.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configSchema } from '../../src/config/schema.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { runRetentionPass } from '../../src/store/retention.ts';
import { webhookDeliveriesTarget } from '../../src/webhooks/delivery-retention.ts';
import type { WebhooksDb } from '../../src/webhooks/webhook-tables.ts';

const DAY_MS = 86_400_000;

test('delivered and failed deliveries older than the retention are deleted, pending ones stay', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-webhook-retention-'));
  const handle = createDatabase(configSchema.parse({ dataDir: dir }));
  t.after(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await migrateToLatest(handle.db);
  const db = handle.db as unknown as WebhooksDb;
  const now = Date.UTC(2026, 5, 1);
  const old = now - 31 * DAY_MS;
  const recent = now - 29 * DAY_MS;
  const rows = [
    ['old-delivered', 'delivered', old],
    ['old-failed', 'failed', old],
    ['old-delivered-2', 'delivered', old],
    ['old-pending', 'pending', old],
    ['recent-delivered', 'delivered', recent],
  ] as const;
  await db
    .insertInto('webhook_deliveries')
    .values(
      rows.map(([id, status, at]) => ({
        id,
        tenant_id: 'default',
        webhook_id: 'w',
        event: 'session.completed',
        session_id: 's',
        payload: '{}',
        status,
        attempts: 1,
        next_attempt_at: at,
        created_at: at,
      })),
    )
    .execute();
  const result = await runRetentionPass(handle.db, [webhookDeliveriesTarget(30)], { batchSize: 2, now });
  assert.deepEqual(result.deleted, { webhook_deliveries: 3 });
  const left = await db.selectFrom('webhook_deliveries').select('id').orderBy('id').execute();
  assert.deepEqual(
    left.map((row) => row.id),
    ['old-pending', 'recent-delivered'],
  );
});
