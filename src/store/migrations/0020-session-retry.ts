// Migration 0020_session_retry: a session started by retrying a failed or cancelled one names it
// (POST /v1/sessions/:id/retry, engine/retry-session.ts). No foreign key: the original may be
// deleted (by a person or by retention) while its retry lives on with everything it carried over.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/**
 * Adds `sessions.retry_of` (nullable: a session submitted as new has none), indexed for the retries
 * of a session (`GET /v1/sessions?retryOf=`): partial, so sessions that are no retry cost nothing.
 */
export async function up(db: AnyDb): Promise<void> {
  await db.schema.alterTable('sessions').addColumn('retry_of', 'text').execute();
  await db.schema
    .createIndex('sessions_retry_of')
    .on('sessions')
    .column('retry_of')
    .where(sql.ref('retry_of'), 'is not', null)
    .execute();
}

/** Drops the index and the column again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropIndex('sessions_retry_of').execute();
  await db.schema.alterTable('sessions').dropColumn('retry_of').execute();
}
