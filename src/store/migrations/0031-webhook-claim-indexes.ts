// Migration 0031_webhook_claim_indexes: the webhook delivery claim (webhooks/delivery-claim.ts)
// reads a few entries per subscription with pending deliveries instead of every pending one. Its
// walk from one subscription to the next and each one's first delivery (by due time, then id) are
// ranges of `webhook_deliveries_heads` (led by the status, so that SQLite's planner prefers it to the
// due-time index for both, without statistics); whether a subscription has a delivery in flight is
// read from `webhook_deliveries_leased`, partial: it holds only the few rows a worker holds. Before,
// a claim read the whole backlog of a receiver that was down (deliveries waiting for their retries)
// or hanging (due behind the one it holds), at every claim.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createIndex('webhook_deliveries_heads')
    .on('webhook_deliveries')
    .columns(['status', 'webhook_id', 'next_attempt_at', 'id'])
    .execute();
  await db.schema
    .createIndex('webhook_deliveries_leased')
    .on('webhook_deliveries')
    .columns(['webhook_id', 'next_attempt_at'])
    .where(sql.ref('lease_owner'), 'is not', null)
    .execute();
}

/** Drops both indexes. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropIndex('webhook_deliveries_leased').execute();
  await db.schema.dropIndex('webhook_deliveries_heads').execute();
}
