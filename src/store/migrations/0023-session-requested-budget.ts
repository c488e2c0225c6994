// Migration 0023_session_requested_budget: a session's own budget, as it was submitted, kept beside
// the effective one (merged with the tenant's default at submission). A retry starts again from the
// session's own budget and caps it by the tenant's budget as configured at the retry, so a tenant
// budget loosened since the original was submitted applies to its retry (engine/retry-session.ts).
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/**
 * Adds `session_settings.requested_budget` (JSON Budget, null when the session gave none). Sessions
 * stored before it cannot tell their own limits from their tenant's: they get the effective budget
 * as their own, so their retries stay as strict as before the upgrade, never looser.
 */
export async function up(db: AnyDb): Promise<void> {
  await db.schema.alterTable('session_settings').addColumn('requested_budget', 'text').execute();
  await db
    .updateTable('session_settings')
    .set({ requested_budget: sql.ref('budget') })
    .where('budget', 'is not', null)
    .execute();
}

/** Drops the column again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('session_settings').dropColumn('requested_budget').execute();
}
