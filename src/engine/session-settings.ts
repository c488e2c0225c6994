// A session's orchestration settings (approval, budget, thread) for the session document. They are
// fixed at submission, so a bounded in-memory cache serves them: reading a session's detail again
// costs no query for them.
import type { Kysely } from 'kysely';
import type { Budget } from '../domain/budget.ts';
import type { SessionSettings } from '../domain/types.ts';
import { type DamagedJsonReport, parseSessionJson } from '../store/rows.ts';
import type { Database } from '../store/schema.ts';

/** What a session without a `session_settings` row has. */
export const NO_SETTINGS: Readonly<SessionSettings> = Object.freeze({
  approval: 'none',
  budget: null,
  threadId: null,
});

/**
 * Reads the stored settings of a session (the caller has checked the tenant); `report` is told of a
 * budget that cannot be read (the session then has none).
 */
export async function loadSessionSettings(
  db: Kysely<Database>,
  sessionId: string,
  report: DamagedJsonReport,
): Promise<SessionSettings> {
  const row = await db
    .selectFrom('session_settings')
    .select(['approval', 'budget', 'thread_id'])
    .where('session_id', '=', sessionId)
    .executeTakeFirst();
  if (!row) return NO_SETTINGS;
  return Object.freeze({
    approval: row.approval === 'required' ? 'required' : 'none',
    budget:
      row.budget === null
        ? null
        : parseStoredBudget(row.budget, sessionId, 'session_settings.budget', report),
    threadId: row.thread_id,
  });
}

/** Whether the session's plans wait for a person's approval (its settings' `approval`). */
export async function loadApprovalMode(
  db: Kysely<Database>,
  sessionId: string,
): Promise<'required' | 'none'> {
  const row = await db
    .selectFrom('session_settings')
    .select('approval')
    .where('session_id', '=', sessionId)
    .executeTakeFirst();
  return row?.approval === 'required' ? 'required' : 'none';
}

/**
 * The budget a session gave itself (before its tenant's default was merged in), or null when it gave
 * none; a retry caps it by the tenant's budget again. Not cached: only a retry reads it.
 *
 * A session stored by this build always has `requested_budget` in its settings row ('{}': it gave
 * none). NULL there means the row was written by a build older than migration 0023's column (one
 * replica of a rolling upgrade still running the old code after the migration ran): such a session
 * cannot tell its own limits from its tenant's, so it falls back to its effective budget, as the
 * migration does for the sessions stored before it; its retry is then as strict as the original,
 * never looser, instead of losing its own limits.
 */
export async function loadRequestedBudget(
  db: Kysely<Database>,
  sessionId: string,
  report: DamagedJsonReport,
): Promise<Budget | null> {
  const row = await db
    .selectFrom('session_settings')
    .select(['budget', 'requested_budget'])
    .where('session_id', '=', sessionId)
    .executeTakeFirst();
  if (!row) return null;
  if (row.requested_budget === null) {
    return row.budget === null
      ? null
      : parseStoredBudget(row.budget, sessionId, 'session_settings.budget', report);
  }
  const budget = parseStoredBudget(
    row.requested_budget,
    sessionId,
    'session_settings.requested_budget',
    report,
  );
  return budget === null || Object.keys(budget).length === 0 ? null : budget;
}

/**
 * A stored budget (frozen), or null when it cannot be read (a hand edit of session_settings gone
 * wrong; `report` is told of it): the session is then treated as having none wherever its settings
 * are read. A damaged row must not fail the lease reaper's pass (every pass, cluster-wide: the row
 * sorts first), a batch of finishes that includes it (of any session), the deadline sweep or a
 * request reading the session. The one reader of stored budgets.
 */
export function parseStoredBudget(
  text: string,
  sessionId: string,
  column: string,
  report: DamagedJsonReport,
): Budget | null {
  const budget = parseSessionJson(text, sessionId, column, report);
  return budget === undefined ? null : (Object.freeze(budget) as Budget);
}

/** Sessions whose settings are kept; a few hundred bytes each. */
const DEFAULT_CAPACITY = 10_000;

export interface SessionSettingsCache {
  /** The session's settings, from memory after the first read (they never change). Frozen. */
  get(db: Kysely<Database>, sessionId: string): Promise<SessionSettings>;
  /** Drops a session's settings (it was deleted). */
  forget(sessionId: string): void;
}

/** A bounded cache (oldest entry out first) of immutable settings; `report` is told of damaged ones. */
export function createSessionSettingsCache(
  report: DamagedJsonReport,
  capacity = DEFAULT_CAPACITY,
): SessionSettingsCache {
  const entries = new Map<string, SessionSettings>();
  return {
    async get(db, sessionId) {
      const hit = entries.get(sessionId);
      if (hit) return hit;
      const settings = await loadSessionSettings(db, sessionId, report);
      if (entries.size >= capacity) entries.delete(entries.keys().next().value as string);
      entries.set(sessionId, settings);
      return settings;
    },
    forget(sessionId) {
      entries.delete(sessionId);
    },
  };
}
