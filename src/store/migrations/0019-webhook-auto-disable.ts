// Migration 0019_webhook_auto_disable: a subscription is disabled when its receiver answers 410 Gone
// or after `webhooks.disableAfterFailedDeliveries` failed deliveries in a row (`consecutive_failures`,
// reset by a delivered one); `disabled_at` (Unix ms) and `disabled_reason` say when and why, null
// while it is active.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema.alterTable('webhooks').addColumn('disabled_at', 'bigint').execute();
  await db.schema.alterTable('webhooks').addColumn('disabled_reason', 'text').execute();
  await db.schema
    .alterTable('webhooks')
    .addColumn('consecutive_failures', 'integer', (col) => col.notNull().defaultTo(0))
    .execute();
}

/** Drops the columns again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('webhooks').dropColumn('consecutive_failures').execute();
  await db.schema.alterTable('webhooks').dropColumn('disabled_reason').execute();
  await db.schema.alterTable('webhooks').dropColumn('disabled_at').execute();
}
