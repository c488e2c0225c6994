// Messages of a session (agent to agent, or a person steering the orchestrator), each stored with the
// session event that announces it, in the caller's transaction: event readers and the recipient's
// next turn see the same messages.
import type { Kysely } from 'kysely';
import type { NewEvent } from '../domain/events.ts';
import { appendEvents } from './event-store.ts';
import type { Database } from './schema.ts';

export interface NewMessage {
  id: string;
  tenantId: string;
  sessionId: string;
  /** Null: a person (steering). */
  fromAgentId: string | null;
  /** Null: the orchestrator. */
  toAgentId: string | null;
  body: string;
  createdAt: number;
}

/** Inserts the message and appends `event` for it; call inside a transaction. */
export async function insertMessage(
  trx: Kysely<Database>,
  message: NewMessage,
  event: NewEvent,
): Promise<void> {
  await trx
    .insertInto('messages')
    .values({
      id: message.id,
      tenant_id: message.tenantId,
      session_id: message.sessionId,
      from_agent_id: message.fromAgentId,
      to_agent_id: message.toAgentId,
      body: message.body,
      created_at: message.createdAt,
    })
    .execute();
  await appendEvents(trx, { id: message.sessionId, tenantId: message.tenantId }, [event], message.createdAt);
}
