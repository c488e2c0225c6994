// Sessions per status across the cluster, for the `maos_sessions` gauge: read at every scrape without
// counting the whole table each time. Unfinished sessions (few) are counted at every call, over a
// range of the `sessions_status` index; finished ones (nearly every row, only ever growing until
// retention deletes them) at most once per refresh interval, the count reused in between.
import type { Kysely } from 'kysely';
import { TERMINAL_SESSION_STATUSES } from '../domain/session-state.ts';
import { SESSION_STATUSES, type SessionStatus } from '../domain/types.ts';
import type { Database } from './schema.ts';

/** Statuses a session can still leave: pending, planning, awaiting_approval, running, paused. */
const UNFINISHED_STATUSES = SESSION_STATUSES.filter((status) => !TERMINAL_SESSION_STATUSES.includes(status));

/**
 * How long a count of finished sessions is reused. A minute: the figure grows by the sessions that
 * finish meanwhile (which the `maos_sessions_finished_total` counter shows at once) and is for
 * capacity and retention dashboards, while counting it reads an index entry per session ever kept
 * (100,000 sessions: tens of milliseconds on every scrape of every replica).
 */
export const FINISHED_COUNT_REFRESH_MS = 60_000;

export type SessionCounts = Partial<Record<SessionStatus, number>>;

export interface SessionCounterOptions {
  /** How long the count of finished sessions is reused (ms); FINISHED_COUNT_REFRESH_MS by default. */
  finishedRefreshMs?: number;
  /** The clock, in ms (tests); a monotonic one by default, performance.now. */
  now?: () => number;
}

/** Counts of `statuses`, one row per status present. */
async function countByStatus(
  db: Kysely<Database>,
  statuses: readonly SessionStatus[],
): Promise<SessionCounts> {
  const rows = await db
    .selectFrom('sessions')
    .select((eb) => ['status', eb.fn.countAll<number>().as('n')])
    .where('status', 'in', statuses)
    .groupBy('status')
    .execute();
  const counts: SessionCounts = {};
  for (const row of rows) counts[row.status as SessionStatus] = Number(row.n);
  return counts;
}

/**
 * A reader of sessions per status: unfinished statuses counted at each call, finished ones
 * (`completed`, `failed`, `cancelled`) as counted at most `finishedRefreshMs` ago. A failed count of
 * finished sessions is not reused: the next call counts again.
 */
export function createSessionCounter(
  db: Kysely<Database>,
  options: SessionCounterOptions = {},
): () => Promise<SessionCounts> {
  const refreshMs = options.finishedRefreshMs ?? FINISHED_COUNT_REFRESH_MS;
  // Monotonic: on the wall clock, a step back (NTP, a resumed VM) kept the count of finished
  // sessions until the clock had caught up again, for as long as the step.
  const now = options.now ?? (() => performance.now());
  let finished: { at: number; counts: Promise<SessionCounts> } | undefined;
  const readFinished = (): Promise<SessionCounts> => {
    const at = now();
    // A clock that went back (an injected one) counts again rather than keep the count longer.
    if (finished === undefined || at - finished.at >= refreshMs || at < finished.at) {
      const counts = countByStatus(db, TERMINAL_SESSION_STATUSES);
      const entry = { at, counts };
      finished = entry;
      counts.catch(() => {
        if (finished === entry) finished = undefined;
      });
    }
    return finished.counts;
  };
  return async () => {
    const [unfinished, done] = await Promise.all([countByStatus(db, UNFINISHED_STATUSES), readFinished()]);
    return { ...unfinished, ...done };
  };
}
