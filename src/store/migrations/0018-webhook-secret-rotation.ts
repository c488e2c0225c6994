// Migration 0018_webhook_secret_rotation: until when a subscription's previous signing secret, kept
// after `POST /v1/webhooks/{id}/rotate-secret` in `tenant_secrets` as `webhook:<id>:previous`, still
// signs its deliveries (Unix ms; null: no previous secret).
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema.alterTable('webhooks').addColumn('previous_secret_expires_at', 'bigint').execute();
}

/** Drops the column again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('webhooks').dropColumn('previous_secret_expires_at').execute();
}
