// Migration 0009_message_delivery: the task an agent message was delivered in. An agent's inbox is
// the messages to it that no finished turn of it has received yet (agents/runtimes/ai-sdk/
// agent-memory.ts). Before, it was the messages newer than the agent's latest finished turn, which
// skipped every message sent while the recipient was running.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/**
 * Adds `messages.delivered_task_id` (null: not delivered yet) and marks what the old rule counted
 * as delivered: a message to an agent sent before one of that agent's turns finished, in the first
 * such turn. Upgraded sessions thus deliver nothing twice.
 */
export async function up(db: AnyDb): Promise<void> {
  await db.schema.alterTable('messages').addColumn('delivered_task_id', 'text').execute();
  await db
    .updateTable('messages')
    .set((eb) => ({
      delivered_task_id: eb
        .selectFrom('tasks')
        .select('tasks.id')
        .whereRef('tasks.agent_id', '=', 'messages.to_agent_id')
        .where('tasks.status', '=', 'succeeded')
        .whereRef('tasks.finished_at', '>=', 'messages.created_at')
        .orderBy('tasks.finished_at')
        .limit(1),
    }))
    .where('to_agent_id', 'is not', null)
    .execute();
}

/** Drops the column again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('messages').dropColumn('delivered_task_id').execute();
}
