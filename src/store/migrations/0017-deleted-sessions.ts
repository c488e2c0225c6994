// Migration 0017_deleted_sessions: the ids of deleted sessions, kept for a while after the deletion
// (DELETE /v1/sessions/:id, `retention.sessionsDays`). Each replica removes the workspaces of the
// sessions listed here. A workspace of a session the database does not know at all is removed only
// once 30 days old and idle, and only while the database knows another workspace of that data
// directory (agents/runtimes/command/session-workspaces.ts): a wrong `store.url` removes nothing.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('deleted_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('deleted_at', 'bigint', (c) => c.notNull())
    .execute();
  // Retention forgets them by age.
  await db.schema
    .createIndex('deleted_sessions_deleted')
    .on('deleted_sessions')
    .column('deleted_at')
    .execute();
}

/** Drops the table again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('deleted_sessions').execute();
}
