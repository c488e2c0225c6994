// An agent's memory from the store: its earlier finished tasks in the session with the messages
// each of them received (replayed as conversation turns, so it keeps context across phases) and the
// messages sent to it that no finished turn of it has received yet (marked when a turn succeeds:
// store/message-store.ts).

import { type Kysely, sql } from 'kysely';
import { precompileQuery } from '../../../store/compiled-query.ts';
import type { Database } from '../../../store/schema.ts';
import type { RuntimeTask } from '../runtime.ts';
import type { AgentTurn, InboxLine } from './build-prompt.ts';

/**
 * Turns replayed per agent. Older turns are dropped first: the latest work matters most and the
 * prompt must stay within the model's context window.
 */
export const MAX_HISTORY_TURNS = 10;

export interface AgentMemory {
  loadHistory(task: RuntimeTask): Promise<AgentTurn[]>;
  loadInbox(task: RuntimeTask): Promise<InboxMessage[]>;
}

/** A message delivered into a turn: its id is reported back so that the finish can mark it. */
export interface InboxMessage extends InboxLine {
  id: string;
}

/** The agent's finished tasks in the session other than this one (unordered). */
const selectAgentTurns = precompileQuery<
  Database,
  { id: string; instructions: string; result: string | null; finished_at: number | null }
>(4, (db, [tenantId, sessionId, agentId, taskId]) =>
  db
    .selectFrom('tasks')
    .select(['id', 'instructions', 'result', 'finished_at'])
    .where('tenant_id', '=', tenantId as string)
    .where('session_id', '=', sessionId as string)
    .where('agent_id', '=', agentId as string)
    .where('id', '!=', taskId as string)
    .where('status', '=', sql.lit('succeeded')),
);

/** Messages delivered into one turn at most: the rest wait for the agent's next turn. */
const INBOX_LIMIT = 50;

/** Messages to one agent of a session, oldest first, with the sender's agent name (none: the user). */
function messagesTo(db: Kysely<Database>, tenantId: unknown, sessionId: unknown, agentId: unknown) {
  return db
    .selectFrom('messages')
    .leftJoin('agents', 'agents.id', 'messages.from_agent_id')
    .select(['messages.body', 'agents.name as from_name'])
    .where('messages.tenant_id', '=', tenantId as string)
    .where('messages.session_id', '=', sessionId as string)
    .where('messages.to_agent_id', '=', agentId as string)
    .orderBy('messages.created_at');
}

/**
 * Messages to an agent not yet received by a finished turn of it. Not "newer than its latest
 * turn": a message sent while the agent was running arrived after that turn had read its inbox,
 * and must reach the next one.
 */
const selectInbox = precompileQuery<Database, { id: string; body: string; from_name: string | null }>(
  3,
  (db, [tenantId, sessionId, agentId]) =>
    messagesTo(db, tenantId, sessionId, agentId)
      .select('messages.id')
      .where('messages.delivered_task_id', 'is', null)
      .limit(INBOX_LIMIT),
);

/** Messages to an agent that its finished turns received, with the turn's task id. */
const selectReceived = precompileQuery<
  Database,
  { delivered_task_id: string | null; body: string; from_name: string | null }
>(3, (db, [tenantId, sessionId, agentId]) =>
  messagesTo(db, tenantId, sessionId, agentId)
    .select('messages.delivered_task_id')
    .where('messages.delivered_task_id', 'is not', null),
);

/** Reads agent memory from the tasks and messages tables, always scoped to the task's tenant. */
export function createAgentMemory(db: Kysely<Database>): AgentMemory {
  async function readPreviousTurns(task: RuntimeTask) {
    if (task.agentId === null) return [];
    const { rows } = await selectAgentTurns(db, task.tenantId, task.sessionId, task.agentId, task.taskId);
    // Sorted here, not in SQL: the session's tasks (index) hold few of one agent's, and an ORDER BY
    // on finished_at made SQLite build a temporary B-tree for every agent step.
    rows.sort((a, b) => Number(a.finished_at) - Number(b.finished_at));
    return rows.slice(-MAX_HISTORY_TURNS);
  }

  /** The messages each earlier turn received, by its task id (read only when there are turns). */
  async function readReceived(task: RuntimeTask, agentId: string) {
    const { rows } = await selectReceived(db, task.tenantId, task.sessionId, agentId);
    const byTask = new Map<string, InboxLine[]>();
    for (const { delivered_task_id: taskId, from_name, body } of rows) {
      if (taskId === null) continue;
      const lines = byTask.get(taskId) ?? [];
      lines.push({ from: from_name ?? 'user', body });
      byTask.set(taskId, lines);
    }
    return byTask;
  }

  return {
    async loadHistory(task) {
      const rows = await readPreviousTurns(task);
      if (rows.length === 0 || task.agentId === null) return [];
      const received = await readReceived(task, task.agentId);
      return rows.map((row) => {
        const inbox = received.get(row.id);
        return { instructions: row.instructions, output: row.result ?? '', ...(inbox ? { inbox } : {}) };
      });
    },

    async loadInbox(task) {
      if (task.agentId === null) return [];
      const { rows } = await selectInbox(db, task.tenantId, task.sessionId, task.agentId);
      return rows.map((row) => ({ id: row.id, from: row.from_name ?? 'user', body: row.body }));
    },
  };
}
