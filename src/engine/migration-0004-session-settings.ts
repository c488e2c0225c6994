// Migration 0004_session_settings: per-session orchestration settings kept apart from the hot
// `sessions` row: plan approval, the effective budget and the conversation thread.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/** Creates `session_settings` (one row per session that has any setting). */
export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('session_settings')
    .addColumn('session_id', 'text', (c) => c.primaryKey().references('sessions.id').onDelete('cascade'))
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('approval', 'text', (c) => c.notNull().defaultTo('none'))
    .addColumn('budget', 'text')
    .addColumn('thread_id', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  // The orchestrator reads the earlier sessions of a thread, newest first.
  await db.schema
    .createIndex('session_settings_thread')
    .on('session_settings')
    .columns(['tenant_id', 'thread_id', 'created_at'])
    .execute();
}

/** Drops `session_settings`. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('session_settings').execute();
}
