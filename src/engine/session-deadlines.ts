// Session deadlines (`budget.deadlineSeconds`) enforced by a periodic sweep: a session past its
// deadline fails with BUDGET_EXCEEDED even when nothing else happens to it (waiting for approval,
// paused, or one long task). The deadline is stored data (created_at + budget), so a restarted
// server, or another replica, expires it just the same.
import type { Kysely } from 'kysely';
import { findBudgetOverrun } from '../domain/budget.ts';
import type { NewEvent } from '../domain/events.ts';
import { isTerminalSessionStatus, transitionSession } from '../domain/session-state.ts';
import { addUsage, type SessionStatus } from '../domain/types.ts';
import { coerceError } from '../errors/app-error.ts';
import type { Logger } from '../observability/logger.ts';
import { LOCK_KEYS, tryTransactionLock } from '../store/advisory-lock.ts';
import { appendEvents } from '../store/event-store.ts';
import { IGNORE_DAMAGED_JSON, toUsage } from '../store/rows.ts';
import type { Database } from '../store/schema.ts';
import { lockSessions } from '../store/session-locks.ts';
import { ENGINE_PROGRESS, type WriteQueue } from '../store/write-queue.ts';
import { cancelOpenTasks, zeroUsage } from './advance-sessions.ts';
import { formatOverrun } from './session-budget.ts';
import { parseStoredBudget } from './session-settings.ts';

/** Statuses in which a session's clock runs: every unfinished one. */
const OPEN_STATUSES: SessionStatus[] = ['pending', 'planning', 'awaiting_approval', 'running', 'paused'];

/** Sessions expired per sweep (the rest wait for the next one, a second later). */
const SWEEP_BATCH = 200;

/**
 * How often the sweep runs. A deadline is given in whole seconds, so a session ends at most about
 * a second after it; the query reads only unfinished sessions whose budget has a deadline.
 */
export const DEADLINE_SWEEP_MS = 1000;

/** A session the sweep ended. */
export interface ExpiredSession {
  id: string;
  tenantId: string;
}

/**
 * Fails every unfinished session whose deadline has passed, inside the caller's write transaction:
 * open tasks cancelled, status `failed` with `BUDGET_EXCEEDED: deadline exceeded: …`, and the
 * `session.status` and `session.finished` (with usage) events. Returns the sessions it ended.
 */
export async function expireSessionDeadlines(trx: Kysely<Database>, now: number): Promise<ExpiredSession[]> {
  const candidates = await trx
    .selectFrom('sessions as s')
    .innerJoin('session_settings as b', 'b.session_id', 's.id')
    .select(['s.id', 's.tenant_id', 's.created_at', 'b.budget'])
    .where('s.status', 'in', OPEN_STATUSES)
    // Only budgets with a deadline (stored as JSON.stringify output): cost- or token-only budgets,
    // e.g. from a tenant default, are not read and parsed every second.
    .where('b.budget', 'like', '%"deadlineSeconds"%')
    .execute();
  // The deadline alone is checked here (the clock starts at submission); tokens and cost are checked
  // where usage grows (advance-sessions.ts). Budgets and created_at never change: no re-check below.
  const due = candidates.flatMap((row) => {
    const deadlineSeconds = readDeadline(row.id, row.budget);
    if (deadlineSeconds === undefined) return [];
    const reason = findBudgetOverrun({ deadlineSeconds }, zeroUsage(), Number(row.created_at), now);
    return reason === null ? [] : [{ ...row, reason }];
  });
  const expired: ExpiredSession[] = [];
  const batch = due.slice(0, SWEEP_BATCH);
  // Locked up front, in id order as every transaction that locks several sessions does: locked one
  // by one in the scan's order, they could deadlock with another replica's finish (PostgreSQL).
  await lockSessions(
    trx,
    batch.map((row) => row.id),
  );
  for (const row of batch) {
    if (await failPastDeadline(trx, { id: row.id, tenantId: row.tenant_id }, row.reason, now)) {
      expired.push({ id: row.id, tenantId: row.tenant_id });
    }
  }
  return expired;
}

/**
 * The deadline of a stored budget, or undefined when it has none or it cannot be read: one damaged
 * row (a hand edit gone wrong) must not fail the sweep, every second, for every other session. The
 * sweep reads every such budget every second: the damage is told by the session's reads instead.
 */
function readDeadline(sessionId: string, text: string | null): number | undefined {
  if (text === null) return undefined;
  const deadline = parseStoredBudget(
    text,
    sessionId,
    'session_settings.budget',
    IGNORE_DAMAGED_JSON,
  )?.deadlineSeconds;
  return typeof deadline === 'number' && Number.isFinite(deadline) ? deadline : undefined;
}

/**
 * Why the session's deadline has passed at `now` (the reason `findBudgetOverrun` gives), or null:
 * not passed, or no deadline. Reads the session's stored budget; the caller holds the session lock.
 */
export async function findPassedDeadline(
  trx: Kysely<Database>,
  session: { id: string; createdAt: number },
  now: number,
): Promise<string | null> {
  const row = await trx
    .selectFrom('session_settings')
    .select('budget')
    .where('session_id', '=', session.id)
    .executeTakeFirst();
  const deadlineSeconds = readDeadline(session.id, row?.budget ?? null);
  if (deadlineSeconds === undefined) return null;
  return findBudgetOverrun({ deadlineSeconds }, zeroUsage(), session.createdAt, now);
}

/**
 * Ends an unfinished session whose deadline has passed as the sweep does (the caller holds its
 * lock): open tasks cancelled, status `failed` with `BUDGET_EXCEEDED: <reason>`, and the
 * `session.status` and `session.finished` (with usage) events appended. False when it had already
 * finished. Also used by an approval that comes after the deadline, before the sweep saw it.
 */
export async function failPastDeadline(
  trx: Kysely<Database>,
  session: { id: string; tenantId: string },
  reason: string,
  now: number,
): Promise<boolean> {
  // Re-read under the lock: another transaction may have finished it since the caller looked.
  const row = await trx
    .selectFrom('sessions')
    .select(['status', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cost_usd'])
    .where('id', '=', session.id)
    .executeTakeFirst();
  if (!row || isTerminalSessionStatus(row.status as SessionStatus)) return false;
  const usage = toUsage(row);
  const error = formatOverrun({ code: 'BUDGET_EXCEEDED', reason });
  const from = row.status as SessionStatus;
  const to = transitionSession(from, 'fail');
  const events: NewEvent[] = [];
  addUsage(usage, await cancelOpenTasks(trx, session.id, error, now, events));
  await trx
    .updateTable('sessions')
    .set({ status: to, error, result: null, finished_at: now, updated_at: now })
    .where('id', '=', session.id)
    .execute();
  events.push(
    { type: 'session.status', data: { from, to } },
    { type: 'session.finished', data: { status: 'failed', error, result: null, usage } },
  );
  await appendEvents(trx, session, events, now);
  return true;
}

export interface DeadlineSweeperDeps {
  queue: WriteQueue;
  logger: Logger;
  /** Called for each session the sweep ended (abort its runs here, wake its readers). */
  onExpired(session: ExpiredSession): void;
  intervalMs?: number;
  now?: () => number;
}

export interface DeadlineSweeper {
  /** Sweeps at once (a restarted server expires what passed while it was down), then periodically. */
  start(): void;
  /** Stops sweeping; resolves when a sweep in progress has finished. */
  stop(): Promise<void>;
}

/** The periodic sweep; one replica at a time sweeps in cluster mode (advisory lock). */
export function createDeadlineSweeper(deps: DeadlineSweeperDeps): DeadlineSweeper {
  const now = deps.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;

  function sweep(): void {
    // A slow store must not stack sweeps on top of each other.
    if (running) return;
    running = deps.queue
      .run(
        async (trx) => {
          if (!(await tryTransactionLock(trx, LOCK_KEYS.sessionDeadlines))) return [];
          return expireSessionDeadlines(trx, now());
        },
        // Engine progress like the lease reaper's: an ordinary op would make the batch it joins
        // (every second) wait for the disk (store/write-queue.ts, "Deferred durability").
        ENGINE_PROGRESS,
      )
      .then((expired) => {
        for (const session of expired) {
          deps.logger.info({ sessionId: session.id }, 'session deadline passed; session failed');
          deps.onExpired(session);
        }
      })
      .catch((error: unknown) => deps.logger.warn({ err: coerceError(error) }, 'deadline sweep failed'))
      .finally(() => {
        running = null;
      });
  }

  return {
    start() {
      if (timer) return;
      timer = setInterval(sweep, deps.intervalMs ?? DEADLINE_SWEEP_MS);
      timer.unref();
      sweep();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}
