// Migration 0010_task_agent_index: tasks by agent. `tasks.agent_id` references `agents`, whose rows
// an edited plan deletes (agents of removed tasks, engine/planner-approval-store.ts). Without an
// index, each deleted agent's foreign-key check, and the "has this agent any task" test before it,
// read the whole tasks table of every tenant, holding the write lock meanwhile: about 0.75 s with
// 200,000 tasks stored, growing with the database. The agent's history read per step uses it too.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema.createIndex('tasks_agent').on('tasks').column('agent_id').execute();
}

/** Drops the index again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropIndex('tasks_agent').execute();
}
