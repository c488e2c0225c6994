// Tools offered to LLM agents. `send_message` lets an agent address another agent of its session:
// the message is stored with its `agent.message` session event (one transaction) and delivered into
// the recipient's next turn (see agent-memory.ts). Like every write of a run, it is fenced by the
// run's claim: a run whose session ended or whose task another attempt took over stores nothing,
// gets a tool error, and is stopped.

import { type ToolSet, tool } from 'ai';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { AppError } from '../../../errors/app-error.ts';
import { newId } from '../../../store/ids.ts';
import { holdsSenderClaim, insertMessage, type MessageSender } from '../../../store/message-store.ts';
import type { Database } from '../../../store/schema.ts';
import type { RuntimeContext, RuntimeTask } from '../runtime.ts';

/** Longest message an agent may send; longer ones belong in its output, which dependants get. */
export const MAX_AGENT_MESSAGE_CHARS = 4000;

export interface SessionAgent {
  id: string;
  name: string;
  role: string;
}

export interface AgentMessage {
  tenantId: string;
  sessionId: string;
  fromAgentId: string | null;
  toAgentId: string;
  body: string;
  /** Agent names for the session event (ids are shown when absent). */
  fromName?: string;
  toName?: string;
}

/**
 * What became of a message: `sent` (stored, or stored already by an earlier attempt), or
 * `claim_lost` (nothing stored: the sending run no longer holds its task).
 */
export type SendOutcome = 'sent' | 'claim_lost';

export interface MessagingDeps {
  listAgents(task: RuntimeTask): Promise<SessionAgent[]>;
  /** Stores the message while `sender` still holds its task (checked in the storing transaction). */
  sendMessage(message: AgentMessage, sender: MessageSender): Promise<SendOutcome>;
  /** Whether the agent has a task that has not started yet (its start reads the agent's inbox). */
  hasWaitingTask(task: RuntimeTask, agentId: string): Promise<boolean>;
}

/** The run a tool set serves: the lease owner of its claim, and how to stop it once fenced. */
export type MessagingRun = Required<Pick<RuntimeContext, 'leaseOwner'>> & Pick<RuntimeContext, 'claimLost'>;

/** The tool answer of a message the sending run may no longer store. */
export const RUN_ENDED_MESSAGE =
  'The message was not sent: this task no longer runs (its session has ended or was cancelled, or another attempt took the task over). Stop working: nothing more of this run is kept.';

/** The tool set for one task: `send_message` (only when the task belongs to an agent). */
export function createMessagingTools(deps: MessagingDeps, task: RuntimeTask, run: MessagingRun): ToolSet {
  return {
    send_message: tool({
      description:
        "Send a short message to another agent of this session (by agent name). It is delivered at the start of that agent's next task. Use it for facts another agent needs, not for your deliverable.",
      inputSchema: z.object({
        to: z.string().min(1).describe('Name of the receiving agent.'),
        message: z.string().min(1).max(MAX_AGENT_MESSAGE_CHARS).describe('The message text.'),
      }),
      execute: async ({ to, message }) => {
        const agents = await deps.listAgents(task);
        const target = agents.find((agent) => agent.name === to);
        if (!target)
          return `No agent named "${to}". Agents of this session: ${agents.map((a) => `${a.name} (${a.role})`).join(', ') || 'none'}.`;
        if (target.id === task.agentId) return 'You cannot send a message to yourself.';
        const sender = agents.find((agent) => agent.id === task.agentId);
        const outcome = await deps.sendMessage(
          {
            tenantId: task.tenantId,
            sessionId: task.sessionId,
            fromAgentId: task.agentId,
            toAgentId: target.id,
            body: message,
            toName: target.name,
            ...(sender ? { fromName: sender.name } : {}),
          },
          { taskId: task.taskId, owner: run.leaseOwner, attempt: task.attempt },
        );
        if (outcome === 'claim_lost') {
          // Fenced, as an output flush of a run that lost its claim stores nothing: the engine stops
          // the run (its signal aborts, so the run ends here); the model sees this only without one.
          run.claimLost?.();
          throw new AppError('INVALID_STATE', RUN_ENDED_MESSAGE, {
            details: { taskId: task.taskId, attempt: task.attempt },
          });
        }
        if (await deps.hasWaitingTask(task, target.id)) return `Message delivered to ${to}.`;
        // Told, so that the model does not count on a message no task of the recipient may read.
        return (
          `Message stored for ${to}, which has no task waiting: ${to} reads it only if a later phase ` +
          'gives it another task. Put what the others need in your output; the tasks that depend on yours receive it.'
        );
      },
    }),
  };
}

/**
 * What the store did with a message (maos_agent_messages_total): `stored`; `repeated`, the same
 * words an earlier attempt of the task sent and the recipient has not received yet, not stored
 * again; `claim_lost`, nothing stored because the sending run no longer holds its task.
 */
export type AgentMessageOutcome = 'stored' | 'repeated' | 'claim_lost';

/**
 * Messaging over the store: agents from the `agents` table, messages into `messages` together with
 * their `agent.message` event. `onSent` is called after the commit (to wake the session's readers);
 * `onOutcome` once per message the store was asked to keep, after its transaction (metrics).
 */
export function createStoreMessaging(
  db: Kysely<Database>,
  onSent?: (message: AgentMessage & { id: string }) => void,
  now: () => number = Date.now,
  onOutcome?: (outcome: AgentMessageOutcome) => void,
): MessagingDeps {
  return {
    async listAgents(task) {
      return db
        .selectFrom('agents')
        .select(['id', 'name', 'role'])
        .where('tenant_id', '=', task.tenantId)
        .where('session_id', '=', task.sessionId)
        .orderBy('created_at')
        .execute();
    },
    async hasWaitingTask(task, agentId) {
      const waiting = await db
        .selectFrom('tasks')
        .select('id')
        .where('tenant_id', '=', task.tenantId)
        .where('session_id', '=', task.sessionId)
        .where('agent_id', '=', agentId)
        .where('status', 'in', ['pending', 'ready', 'leased'])
        .limit(1)
        .executeTakeFirst();
      return waiting !== undefined;
    },
    async sendMessage(message, sender) {
      const id = newId();
      const at = now();
      const stored = await db.transaction().execute(async (trx) => {
        // Under the session's lock, as a cancel or finish takes it: a cancel that committed first
        // is seen (the task is no longer running), one that comes later waits for this commit.
        if (!(await holdsSenderClaim(trx, message, sender))) return 'claim_lost' as const;
        // A task run again (after a crash or a lost lease) tends to send what its earlier attempt
        // sent: the same words from the same agent, not received yet, are that message, not another.
        const same = await trx
          .selectFrom('messages')
          .select('id')
          .where('tenant_id', '=', message.tenantId)
          .where('session_id', '=', message.sessionId)
          .where('to_agent_id', '=', message.toAgentId)
          .where('from_agent_id', message.fromAgentId === null ? 'is' : '=', message.fromAgentId)
          .where('body', '=', message.body)
          .where('delivered_task_id', 'is', null)
          .executeTakeFirst();
        if (same) return 'repeated' as const;
        await insertMessage(
          trx,
          { ...message, id, createdAt: at },
          {
            type: 'agent.message',
            data: {
              messageId: id,
              from: message.fromName ?? message.fromAgentId ?? 'unknown',
              fromAgentId: message.fromAgentId,
              to: message.toName ?? message.toAgentId,
              toAgentId: message.toAgentId,
              text: message.body,
            },
          },
        );
        return 'stored' as const;
      });
      if (stored === 'stored') onSent?.({ ...message, id });
      try {
        onOutcome?.(stored);
      } catch {
        // Deliberately ignored: metrics must never fail the tool call they count.
      }
      return stored === 'claim_lost' ? 'claim_lost' : 'sent';
    },
  };
}
