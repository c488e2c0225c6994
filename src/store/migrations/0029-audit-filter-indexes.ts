// Migration 0029_audit_filter_indexes: `GET /v1/audit?action=` and `?outcome=` list a tenant's
// records of one action or outcome, in seq order. With only the (tenant_id, seq) index a page read
// every record of the tenant until it had found a page of them: a rare or unknown action read the
// whole of the tenant's log (3.4 s at a million records on SQLite, during which the server's one
// process answered nothing). An index led by the tenant and the filtered column(s), then seq, makes
// such a page one range of it, in either order: one per filter and one for both (with the two
// single ones alone, both filters read every record of the one the database chose, e.g. all of
// the tenant's successes for the successes of a rare action).
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createIndex('audit_log_tenant_action_idx')
    .on('audit_log')
    .columns(['tenant_id', 'action', 'seq'])
    .execute();
  await db.schema
    .createIndex('audit_log_tenant_outcome_idx')
    .on('audit_log')
    .columns(['tenant_id', 'outcome', 'seq'])
    .execute();
  await db.schema
    .createIndex('audit_log_tenant_action_outcome_idx')
    .on('audit_log')
    .columns(['tenant_id', 'action', 'outcome', 'seq'])
    .execute();
}

/** Drops the three indexes. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropIndex('audit_log_tenant_action_outcome_idx').execute();
  await db.schema.dropIndex('audit_log_tenant_outcome_idx').execute();
  await db.schema.dropIndex('audit_log_tenant_action_idx').execute();
}
