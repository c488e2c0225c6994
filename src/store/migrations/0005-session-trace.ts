// Migration 0005_session_trace: the W3C trace context of a session (its `invoke_workflow` span),
// so every task of the session joins one trace on any replica and after restarts.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/** Adds `sessions.trace_parent` and `sessions.trace_state` (nullable: sessions of untraced processes). */
export async function up(db: AnyDb): Promise<void> {
  // One column per statement: SQLite's ALTER TABLE adds a single column at a time.
  await db.schema.alterTable('sessions').addColumn('trace_parent', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('trace_state', 'text').execute();
}

/** Drops the two columns again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('trace_state').execute();
  await db.schema.alterTable('sessions').dropColumn('trace_parent').execute();
}
