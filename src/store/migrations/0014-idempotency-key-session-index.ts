// Migration 0014_idempotency_key_session_index: idempotency keys by session. Sessions are deleted
// now (DELETE /v1/sessions/:id, `retention.sessionsDays`), and `idempotency_keys.session_id`
// references them: without an index, deleting a session's keys, and the foreign-key check of its
// row, read the whole table of every tenant under the write lock.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createIndex('idempotency_keys_session')
    .on('idempotency_keys')
    .column('session_id')
    .execute();
}

/** Drops the index again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropIndex('idempotency_keys_session').execute();
}
