// Migration 0033_session_retries_index: GET /v1/sessions?retryOf=<id> (maos sessions list
// --retry-of, the console's retries of a session) reads a range of `sessions_tenant_retry_of_created`,
// in the list's order (newest first, by id within a millisecond). Before, SQLite's planner (without
// statistics) walked `sessions_tenant_created` for its order and checked `retry_of` on each row: a
// tenant's whole session list read for a session retried once or never. Partial: only retries
// have a `retry_of`.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createIndex('sessions_tenant_retry_of_created')
    .on('sessions')
    .columns(['tenant_id', 'retry_of', 'created_at', 'id'])
    .where(sql.ref('retry_of'), 'is not', null)
    .execute();
}

/** Drops the index. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropIndex('sessions_tenant_retry_of_created').execute();
}
