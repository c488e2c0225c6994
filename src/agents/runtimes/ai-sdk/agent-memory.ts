// An agent's memory from the store: its earlier finished tasks in the session (replayed as
// conversation turns, so it keeps context across phases) and messages other agents sent it since.

import { type Kysely, sql } from 'kysely';
import { precompileQuery } from '../../../store/compiled-query.ts';
import { findReadConnection, precompileReadQuery } from '../../../store/read-connection.ts';
import type { Database } from '../../../store/schema.ts';
import type { RuntimeTask } from '../runtime.ts';
import type { AgentTurn } from './build-prompt.ts';

/**
 * Turns replayed per agent. Older turns are dropped first: the latest work matters most and the
 * prompt must stay within the model's context window.
 */
export const MAX_HISTORY_TURNS = 10;

export interface AgentMemory {
  loadHistory(task: RuntimeTask): Promise<AgentTurn[]>;
  loadInbox(task: RuntimeTask): Promise<Array<{ from: string; body: string }>>;
}

/** The agent's finished tasks in the session other than this one (unordered). */
const buildAgentTurns = (db: Kysely<Database>, [tenantId, sessionId, agentId, taskId]: readonly string[]) =>
  db
    .selectFrom('tasks')
    .select(['instructions', 'result', 'finished_at'])
    .where('tenant_id', '=', tenantId as string)
    .where('session_id', '=', sessionId as string)
    .where('agent_id', '=', agentId as string)
    .where('id', '!=', taskId as string)
    .where('status', '=', sql.lit('succeeded'));

type TurnRow = { instructions: string; result: string | null; finished_at: number | null };
type InboxRow = { body: string; from_name: string | null };

/** Messages delivered into one turn at most: the rest wait for the agent's next turn. */
const INBOX_LIMIT = 50;

/** Messages to an agent after `since`, oldest first, with the sender's agent name (none: the user). */
const buildInbox = (db: Kysely<Database>, [tenantId, sessionId, agentId, since]: readonly string[]) =>
  db
    .selectFrom('messages')
    .leftJoin('agents', 'agents.id', 'messages.from_agent_id')
    .select(['messages.body', 'agents.name as from_name'])
    .where('messages.tenant_id', '=', tenantId as string)
    .where('messages.session_id', '=', sessionId as string)
    .where('messages.to_agent_id', '=', agentId as string)
    .where('messages.created_at', '>', since as never)
    .orderBy('messages.created_at')
    .limit(INBOX_LIMIT);

// Each read twice: on the read connection (SQLite) and through Kysely (PostgreSQL, tracing on).
const readAgentTurns = precompileReadQuery<Database, TurnRow>(4, buildAgentTurns);
const readInbox = precompileReadQuery<Database, InboxRow>(4, buildInbox);
const selectAgentTurns = precompileQuery<Database, TurnRow>(4, buildAgentTurns);
const selectInbox = precompileQuery<Database, InboxRow>(4, buildInbox);

interface Memory {
  turns: TurnRow[];
  inbox: InboxRow[];
}

/**
 * The latest MAX_HISTORY_TURNS turns, oldest first. Sorted here, not in SQL: the session's tasks
 * (index) hold few of one agent's, and an ORDER BY on finished_at made SQLite build a temporary
 * B-tree for every agent step.
 */
function latestTurns(rows: TurnRow[]): TurnRow[] {
  rows.sort((a, b) => Number(a.finished_at) - Number(b.finished_at));
  return rows.slice(-MAX_HISTORY_TURNS);
}

/**
 * Messages already seen in an earlier turn (the agent's latest finished task) are not delivered
 * again: the inbox starts after it.
 */
const inboxSince = (turns: readonly TurnRow[]) => turns.at(-1)?.finished_at ?? 0;

/** Reads agent memory from the tasks and messages tables, always scoped to the task's tenant. */
export function createAgentMemory(db: Kysely<Database>): AgentMemory {
  // The runtime asks for the history, then the inbox, of the same task: one read serves both.
  const memoryOfTask = new WeakMap<RuntimeTask, Promise<Memory>>();

  function memoryOf(task: RuntimeTask): Promise<Memory> {
    let memory = memoryOfTask.get(task);
    if (!memory) {
      memory = readMemory(task);
      memoryOfTask.set(task, memory);
    }
    return memory;
  }

  async function readMemory(task: RuntimeTask): Promise<Memory> {
    const agentId = task.agentId;
    if (agentId === null) return { turns: [], inbox: [] };
    const key = [task.tenantId, task.sessionId, agentId] as const;
    // SQLite: both reads on the read connection, in the read transaction of this turn of the event
    // loop (agents starting together share it), never behind the engine's open write batch. What
    // it sees is committed: an agent's task is started after the commit that finished the last one.
    const reader = findReadConnection(db);
    if (reader) {
      return reader.batch(() => {
        const turns = latestTurns(readAgentTurns(db, reader, ...key, task.taskId));
        return { turns, inbox: readInbox(db, reader, ...key, inboxSince(turns)) };
      });
    }
    const turns = latestTurns((await selectAgentTurns(db, ...key, task.taskId)).rows);
    const { rows: inbox } = await selectInbox(db, ...key, inboxSince(turns));
    return { turns, inbox };
  }

  return {
    async loadHistory(task) {
      const { turns } = await memoryOf(task);
      return turns.map((row) => ({ instructions: row.instructions, output: row.result ?? '' }));
    },

    async loadInbox(task) {
      const { inbox } = await memoryOf(task);
      return inbox.map((row) => ({ from: row.from_name ?? 'user', body: row.body }));
    },
  };
}
