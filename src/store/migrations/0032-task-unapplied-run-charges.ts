// Migration 0032_task_unapplied_run_charges: the runs of a task whose spend was charged although
// their finish was rejected (the claim no longer held: cancelled, or the task taken over by another
// attempt), as `[{"owner": …, "attempt": …}]` (engine/run-spend.ts). A rejected finish whose COMMIT
// answer was lost is tried again; finding its run here, it charges nothing twice.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/** Adds `tasks.unapplied_run_charges` (JSON, null when no such run was charged). */
export async function up(db: AnyDb): Promise<void> {
  await db.schema.alterTable('tasks').addColumn('unapplied_run_charges', 'text').execute();
}

/** Drops the column again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('tasks').dropColumn('unapplied_run_charges').execute();
}
