// Migration 0011_task_unsettled_usage: what a running attempt has spent so far and nobody has been
// charged for yet, kept on its task while it runs (engine/run-spend.ts). A process killed mid-run
// (kill -9, a lost node) cannot charge its provider calls; whoever takes the attempt over (the
// lease reaper) charges this instead, so paid model calls still count against budgets.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/** Adds `tasks.unsettled_usage` (JSON, null when nothing is unsettled). */
export async function up(db: AnyDb): Promise<void> {
  await db.schema.alterTable('tasks').addColumn('unsettled_usage', 'text').execute();
}

/** Drops the column again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('tasks').dropColumn('unsettled_usage').execute();
}
