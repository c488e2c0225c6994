// Read-through cache of the plan and tasks of finished sessions for GET /v1/sessions/:id: a
// finished session whose tasks are all finished no longer changes, so its detail needs one row read.
import type { Kysely } from 'kysely';
import { isTerminalSessionStatus } from '../domain/session-state.ts';
import { isTerminalTaskStatus } from '../domain/task-state.ts';
import type { SessionDetail, SessionStatus } from '../domain/types.ts';
import { toSessionRecord } from '../store/rows.ts';
import type { Database, SessionsTable } from '../store/schema.ts';
import { getSessionRow, loadSessionContents, type SessionContents } from '../store/session-store.ts';

/** Sessions kept; at a few KB each this bounds the cache to a few MB. */
const DEFAULT_CAPACITY = 1000;

interface Entry {
  /** The row fields that change whenever anything about the session changes (status, plan). */
  updatedAt: number;
  planVersion: number;
  status: string;
  contents: SessionContents;
}

/** Reads session details, serving the plan and tasks of finished sessions from memory. */
export interface SessionDetailReader {
  read(db: Kysely<Database>, tenantId: string, sessionId: string): Promise<SessionDetail>;
}

/**
 * The session row is always read (tenant check, and it carries status, usage and timings), so a
 * session that is reopened, re-planned or otherwise updated (which bumps `updated_at`) or that
 * another replica changed is never served stale. Only sessions in a terminal status whose tasks
 * are all terminal are cached: nothing advances them any more.
 */
export function createSessionDetailReader(capacity = DEFAULT_CAPACITY): SessionDetailReader {
  const entries = new Map<string, Entry>();
  return {
    async read(db, tenantId, sessionId) {
      const row = await getSessionRow(db, tenantId, sessionId);
      const cached = entries.get(sessionId);
      let contents: SessionContents;
      if (cached && matches(cached, row)) {
        contents = cached.contents;
      } else {
        contents = await loadSessionContents(db, sessionId);
        if (cached) entries.delete(sessionId);
        if (isSettled(row, contents)) {
          if (entries.size >= capacity) entries.delete(entries.keys().next().value as string);
          entries.set(sessionId, {
            updatedAt: Number(row.updated_at),
            planVersion: Number(row.plan_version),
            status: row.status,
            contents,
          });
        }
      }
      return { ...toSessionRecord(row), plan: contents.plan, tasks: [...contents.tasks] };
    },
  };
}

function matches(entry: Entry, row: SessionsTable): boolean {
  return (
    entry.status === row.status &&
    entry.updatedAt === Number(row.updated_at) &&
    entry.planVersion === Number(row.plan_version)
  );
}

function isSettled(row: SessionsTable, contents: SessionContents): boolean {
  return (
    isTerminalSessionStatus(row.status as SessionStatus) &&
    contents.tasks.every((task) => isTerminalTaskStatus(task.status))
  );
}
