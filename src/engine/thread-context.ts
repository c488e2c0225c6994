// Reads the earlier sessions of a conversation thread (`thread_id`) and condenses them into the
// bounded summary the orchestrator gets when it plans a follow-up session.
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import { summariseThread } from './planner-thread.ts';

/** The thread summary for a session's phase gates: its thread's other sessions, if it has a thread. */
export async function loadThreadSummaryFor(
  db: Kysely<Database>,
  tenantId: string,
  sessionId: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('session_settings')
    .select('thread_id')
    .where('session_id', '=', sessionId)
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst();
  if (!row?.thread_id) return undefined;
  return loadThreadSummary(db, tenantId, row.thread_id, sessionId);
}

/** Earlier sessions read per thread; older ones would be dropped from the summary anyway. */
const MAX_THREAD_SESSIONS = 20;

/** The summary of the thread's earlier sessions (all but `excludeSessionId`), or undefined when none. */
export async function loadThreadSummary(
  db: Kysely<Database>,
  tenantId: string,
  threadId: string,
  excludeSessionId?: string,
): Promise<string | undefined> {
  let query = db
    .selectFrom('session_settings as b')
    .innerJoin('sessions as s', 's.id', 'b.session_id')
    .select(['s.objective', 's.status', 's.result', 's.error', 's.created_at'])
    .where('b.tenant_id', '=', tenantId)
    .where('b.thread_id', '=', threadId)
    .orderBy('b.created_at', 'desc')
    .limit(MAX_THREAD_SESSIONS);
  if (excludeSessionId !== undefined) query = query.where('b.session_id', '!=', excludeSessionId);
  const rows = await query.execute();
  if (rows.length === 0) return undefined;
  return summariseThread(
    rows.map((row) => ({
      objective: row.objective,
      status: row.status,
      result: row.result ?? (row.error ? `(error) ${row.error}` : null),
      createdAt: Number(row.created_at),
    })),
  );
}
