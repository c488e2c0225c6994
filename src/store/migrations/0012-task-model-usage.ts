// Migration 0012_task_model_usage: what each task spent per provider and model that served it. A
// task's run can be answered by more than one model (a fallback provider after a retryable failure
// or an open circuit, a retry that went elsewhere), so the spend is kept per (task, provider, model)
// rather than one model per task: nothing is attributed to a model that did not serve it. Written
// with the task's finish, in the same UPDATE's transaction (store/task-model-usage.ts).
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/** Creates `task_model_usage`, keyed by task, provider and model, with an index by session. */
export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('task_model_usage')
    .addColumn('task_id', 'text', (c) => c.notNull().references('tasks.id').onDelete('cascade'))
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('session_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('input_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('output_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('cache_read_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('cost_usd', 'double precision', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('task_model_usage_pk', ['task_id', 'provider', 'model'])
    .execute();
  // The usage report and a session's detail read it by session.
  await db.schema
    .createIndex('task_model_usage_session')
    .on('task_model_usage')
    .column('session_id')
    .execute();
}

/** Drops the table again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('task_model_usage').execute();
}
