// Migration 0016_webhook_delivery_session_index: webhook deliveries by session. Deleting a session
// (DELETE /v1/sessions/:id, `retention.sessionsDays`) deletes its deliveries too, whose payloads
// carry its objective and an excerpt of its result: without an index that delete would read the
// deliveries of every tenant under the write lock.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createIndex('webhook_deliveries_session')
    .on('webhook_deliveries')
    .column('session_id')
    .execute();
}

/** Drops the index again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropIndex('webhook_deliveries_session').execute();
}
