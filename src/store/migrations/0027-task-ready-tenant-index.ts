// Migration 0027_task_ready_tenant_index: the ready queue indexed by tenant, then ready time, in
// place of the index by ready time alone. Claims are fair between tenants (docs/adr/0013): they
// find the tenants with ready tasks (a walk of this index from one tenant id to the next), take each
// one's oldest ready tasks (one range of it), and claim oldest first straight from it when a single
// tenant has ready tasks. With the ready-time index beside it PostgreSQL chose that one for a
// tenant's oldest tasks and filtered out every other tenant's ready tasks on the way (all of the
// noisy tenant's backlog for a quiet one); one index keeps the upkeep of a task entering and
// leaving the queue as it was. Partial like the one it replaces: finished tasks cost nothing.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createIndex('tasks_ready_tenant')
    .on('tasks')
    .columns(['tenant_id', 'ready_at'])
    .where(sql.ref('status'), '=', 'ready')
    .execute();
  await db.schema.dropIndex('tasks_ready_queue').execute();
}

/** Puts the index by ready time back. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema
    .createIndex('tasks_ready_queue')
    .on('tasks')
    .column('ready_at')
    .where(sql.ref('status'), '=', 'ready')
    .execute();
  await db.schema.dropIndex('tasks_ready_tenant').execute();
}
