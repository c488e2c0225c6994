// Migration 0025_audit_subtrees: stored RFC 6962 roots of complete, aligned blocks of audit records
// (security/audit/audit-subtrees.ts), so an inclusion or consistency proof reads a few of them and
// the records of at most a few blocks instead of the whole log. Rows are written when a proof first
// needs a block, never by the appends; each is computed from records that no longer change, so
// replicas writing the same block write the same bytes (the first one kept). Not append-only like
// the log itself: the rows can be deleted at any time and are computed again from the records.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('audit_subtrees')
    .addColumn('first_seq', 'bigint', (c) => c.notNull())
    .addColumn('leaves', 'integer', (c) => c.notNull())
    .addColumn('root', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('audit_subtrees_pk', ['first_seq', 'leaves'])
    .execute();
}

/** Drops the table again (the proofs then read the whole log, as before). */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('audit_subtrees').execute();
}
