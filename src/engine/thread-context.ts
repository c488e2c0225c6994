// Reads the earlier sessions of a conversation thread (`thread_id`) and condenses them into the
// bounded summary the orchestrator gets when it plans a follow-up session.
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import { DEFAULT_THREAD_SUMMARY_CHARS, summariseThread } from './planner-thread.ts';

/**
 * The thread summary for a session's planning and phase gates: the sessions of its thread submitted
 * before it, if it has a thread. Later ones are left out: a phase gate of a long session runs after
 * follow-ups were submitted, and they are not earlier work this session builds on. A retry
 * (retry-session.ts) reads what the session it retries read: the sessions before the first of its
 * retry chain, not that session (its tasks are the retry's own) nor what came after it.
 */
export async function loadThreadSummaryFor(
  db: Kysely<Database>,
  tenantId: string,
  sessionId: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('session_settings as b')
    .innerJoin('sessions as s', 's.id', 'b.session_id')
    .select(['b.thread_id', 'b.created_at', 's.retry_of'])
    .where('b.session_id', '=', sessionId)
    .where('b.tenant_id', '=', tenantId)
    .executeTakeFirst();
  if (!row?.thread_id) return undefined;
  let before = { sessionId, createdAt: Number(row.created_at) };
  let retryOf = row.retry_of ?? null;
  for (let hops = 0; retryOf !== null && hops < MAX_THREAD_SESSIONS; hops++) {
    const original = await db
      .selectFrom('session_settings as b')
      .innerJoin('sessions as s', 's.id', 'b.session_id')
      .select(['b.created_at', 's.retry_of'])
      .where('b.session_id', '=', retryOf)
      .where('b.tenant_id', '=', tenantId)
      .executeTakeFirst();
    // Deleted since: the sessions of the thread before the last one still there.
    if (!original) break;
    before = { sessionId: retryOf, createdAt: Number(original.created_at) };
    retryOf = original.retry_of ?? null;
  }
  return loadThreadSummary(db, tenantId, row.thread_id, before);
}

/** Earlier sessions read per thread; older ones would be dropped from the summary anyway. */
const MAX_THREAD_SESSIONS = 20;

/**
 * The summary of the thread's sessions, or undefined when none: all of them, or with `before` only
 * those submitted before that session (ties of the same millisecond by id, which grows with time).
 */
export async function loadThreadSummary(
  db: Kysely<Database>,
  tenantId: string,
  threadId: string,
  before?: { sessionId: string; createdAt: number },
): Promise<string | undefined> {
  let query = db
    .selectFrom('session_settings as b')
    .innerJoin('sessions as s', 's.id', 'b.session_id')
    .select(['s.objective', 's.status', 's.result', 's.error', 's.created_at'])
    .where('b.tenant_id', '=', tenantId)
    .where('b.thread_id', '=', threadId)
    .orderBy('b.created_at', 'desc')
    .limit(MAX_THREAD_SESSIONS);
  if (before !== undefined) {
    query = query.where((eb) =>
      eb.or([
        eb('b.created_at', '<', before.createdAt),
        eb.and([eb('b.created_at', '=', before.createdAt), eb('b.session_id', '<', before.sessionId)]),
      ]),
    );
  }
  const rows = await query.execute();
  if (rows.length === 0) return undefined;
  // Older sessions than those read are omitted too: counted, so the summary says so.
  let notRead = 0;
  if (rows.length === MAX_THREAD_SESSIONS) {
    const { total } = await query
      .clearSelect()
      .clearOrderBy()
      .clearLimit()
      .select((eb) => eb.fn.countAll<number | string>().as('total'))
      .executeTakeFirstOrThrow();
    notRead = Number(total) - rows.length;
  }
  return summariseThread(
    rows.map((row) => ({
      objective: row.objective,
      status: row.status,
      result: row.result ?? (row.error ? `(error) ${row.error}` : null),
      createdAt: Number(row.created_at),
    })),
    DEFAULT_THREAD_SUMMARY_CHARS,
    notRead,
  );
}
