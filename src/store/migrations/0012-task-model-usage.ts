// Migration 0012_task_model_usage: what each task spent per provider and model that served it. A
// task's run can be answered by more than one model (a fallback provider after a retryable failure
// or an open circuit, a retry that went elsewhere), so the spend is kept per model rather than one
// model per task: nothing is attributed to a model that did not serve it. A column of the task,
// not a table of its own, so that the finish's one UPDATE writes it (no statement more per step).
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/** Adds `tasks.model_usage` (a JSON array, one entry per provider and model; null: none served it). */
export async function up(db: AnyDb): Promise<void> {
  await db.schema.alterTable('tasks').addColumn('model_usage', 'text').execute();
}

/** Drops the column again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('tasks').dropColumn('model_usage').execute();
}
