// The webhook outbox on SQLite and PostgreSQL: the sessions finishing in one transaction (the
// scheduler coalesces every slot's finish into one) enqueue one delivery per matching subscription,
// however many that makes: more rows than one INSERT may bind (SQLite 32766 values, PostgreSQL
// 65535) are inserted in several, instead of failing the transaction that finishes the sessions.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { STORE_BACKENDS, useStoreHandles } from '../../test/fixtures/store-backends.ts';
import type { NewEvent } from '../domain/events.ts';
import { DEFAULT_TENANT_ID } from '../store/migrations/0001-foundation.ts';
import { newSessionRow } from '../store/rows.ts';
import { enqueueWebhookDeliveries } from './outbox.ts';
import type { WebhooksDb } from './webhook-tables.ts';

// webhooks.maxPerTenant's upper bound, all asking for session.completed.
const SUBSCRIPTIONS = 1000;
// Sessions finishing in one transaction: 7000 deliveries of 10 values each.
const SESSIONS = 7;

const finished: NewEvent = {
  type: 'session.finished',
  data: {
    status: 'completed',
    error: null,
    result: 'done',
    usage: { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, costUsd: 0 },
  },
};

for (const backend of STORE_BACKENDS) {
  describe(`webhook outbox: ${backend.name}`, { timeout: 120_000 }, () => {
    const store = useStoreHandles(backend, 1);

    test('sessions finishing together enqueue a delivery per subscription, past one INSERT’s limit', async () => {
      const db = store.handles[0]!.db;
      const webhooks = db as unknown as WebhooksDb;
      const sessionIds = Array.from(
        { length: SESSIONS },
        (_, i) => `00000000-0000-7000-8000-00000000000${i}`,
      );
      for (const id of sessionIds) {
        const fields = {
          objective: 'finish together',
          strategy: 'sequential',
          metadata: '{}',
          started_at: null,
        };
        await db
          .insertInto('sessions')
          .values(newSessionRow({ id, tenant_id: DEFAULT_TENANT_ID, status: 'completed', ...fields }, 1))
          .execute();
      }
      for (let first = 0; first < SUBSCRIPTIONS; first += 200) {
        await webhooks
          .insertInto('webhooks')
          .values(
            Array.from({ length: 200 }, (_, i) => ({
              id: `w-${String(first + i).padStart(4, '0')}`,
              tenant_id: DEFAULT_TENANT_ID,
              url: 'https://receiver.example/hooks',
              events: '["session.completed"]',
              created_at: 1,
              created_by: 'admin',
            })),
          )
          .execute();
      }
      const enqueued = await db.transaction().execute((trx) =>
        enqueueWebhookDeliveries(
          trx,
          sessionIds.map((sessionId) => ({ sessionId, tenantId: DEFAULT_TENANT_ID, events: [finished] })),
          Date.UTC(2026, 5, 1),
        ),
      );
      assert.equal(enqueued, SESSIONS * SUBSCRIPTIONS);
      const counted = await sql<{ count: number | string }>`select count(*) as count from (
          select distinct webhook_id, session_id from webhook_deliveries where status = 'pending') d`.execute(
        db,
      );
      assert.equal(
        Number(counted.rows[0]?.count),
        SESSIONS * SUBSCRIPTIONS,
        'one per subscription and session',
      );
    });
  });
}
