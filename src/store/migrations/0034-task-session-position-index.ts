// Migration 0034_task_session_position_index: GET /v1/sessions/:id/tasks pages a session's tasks in
// plan order, (position, id) after the cursor. Without an index in that order every page sorted all
// of the session's rows, outputs included (a session of a thousand tasks with long outputs is MBs),
// to return fifty of them; with it a page reads its own rows. The detail's and the engine's reads of
// a session's tasks by position use it too.

import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createIndex('tasks_session_position')
    .on('tasks')
    .columns(['session_id', 'position', 'id'])
    .execute();
}

/** Drops the index. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropIndex('tasks_session_position').execute();
}
