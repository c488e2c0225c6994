// Messages of a session (agent to agent, or a person steering the orchestrator), each stored with the
// session event that announces it, in the caller's transaction: event readers and the recipient's
// next turn see the same messages. A message to an agent is marked with the task whose turn received
// it once that task succeeds, so it is delivered into one finished turn. An agent's message is
// stored only while the run sending it still holds its task (holdsSenderClaim).
import type { Kysely } from 'kysely';
import type { NewEvent } from '../domain/events.ts';
import { appendEvents } from './event-store.ts';
import type { Database } from './schema.ts';
import { lockSessions } from './session-locks.ts';
import { holdsClaim, type TaskClaim } from './task-claims.ts';

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

/** The run an agent's message comes from: its task, and the claim (lease owner, attempt) it runs under. */
export type MessageSender = TaskClaim;

/**
 * Locks the session (as output flushes, finishes and cancels lock it, before any task row) and
 * tells whether `sender` still runs its task: leased or running under the same owner and attempt.
 * False once the session was cancelled or ended, or another attempt took the task over: the run is
 * fenced, and nothing of it may be stored (it would follow the session's `session.finished`).
 * Call inside the transaction that stores the message, before storing it.
 */
export async function holdsSenderClaim(
  trx: Kysely<Database>,
  scope: { tenantId: string; sessionId: string },
  sender: MessageSender,
): Promise<boolean> {
  await lockSessions(trx, [scope.sessionId], scope.tenantId);
  return holdsClaim(trx, sender, { tenantId: scope.tenantId, sessionId: scope.sessionId });
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

/**
 * Marks `messageIds` as delivered in the (succeeded) task `taskId`, within its session; a message
 * some other turn received first keeps that turn. Call inside the transaction that finishes the task.
 */
export async function markMessagesDelivered(
  trx: Kysely<Database>,
  scope: { tenantId: string; sessionId: string; taskId: string },
  messageIds: readonly string[],
): Promise<void> {
  if (messageIds.length === 0) return;
  await trx
    .updateTable('messages')
    .set({ delivered_task_id: scope.taskId })
    .where('tenant_id', '=', scope.tenantId)
    .where('session_id', '=', scope.sessionId)
    .where('id', 'in', messageIds)
    .where('delivered_task_id', 'is', null)
    .execute();
}
