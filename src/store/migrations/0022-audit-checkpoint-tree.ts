// Migration 0022_audit_checkpoint_tree: the Merkle tree state behind each audit checkpoint (the
// roots of its perfect subtrees, O(log n) hashes, and the last record's seq). A process's first
// checkpoint after it starts, and each CLI command's closing one, continue from the newest stored
// state instead of reading and hashing the whole log again (seconds for a million records).
// Nullable: checkpoints written before this migration have none, and a log without one is read
// whole once, as before.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema.alterTable('audit_checkpoints').addColumn('tree', 'text').execute();
}

/** Drops the column again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('audit_checkpoints').dropColumn('tree').execute();
}
