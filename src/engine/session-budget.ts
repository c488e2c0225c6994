// Session budgets at run time: the engine's check when tasks finish (in the finishing transaction)
// and the guard the LLM runtime consults at every output flush to stop an agent mid-stream.
import type { Kysely } from 'kysely';
import {
  BUDGET_STOP_PREFIX,
  type Budget,
  type BudgetCheckResult,
  findBudgetOverrun,
} from '../domain/budget.ts';
import { isTerminalSessionStatus } from '../domain/session-state.ts';
import { addUsage, type SessionStatus, type Usage } from '../domain/types.ts';
import type { Logger } from '../observability/logger.ts';
import { precompileQuery } from '../store/compiled-query.ts';
import { createDamagedJsonReport, IGNORE_DAMAGED_JSON, toUsage } from '../store/rows.ts';
import type { Database } from '../store/schema.ts';
import type { Touched } from './advance-sessions.ts';
import { parseStoredBudget } from './session-settings.ts';
import { createTenantTokenGuard } from './tenant-token-guard.ts';

// Ids per `IN (…)` list: well below SQLite's bound-variable limit.
const ID_CHUNK = 500;

/** Sessions with their stored usage and budget (null when the session has none). */
function selectBudgetAndUsage(db: Kysely<Database>) {
  return db
    .selectFrom('sessions as s')
    .leftJoin('session_settings as b', 'b.session_id', 's.id')
    .select([
      's.id',
      's.status',
      's.created_at',
      's.input_tokens',
      's.output_tokens',
      's.cache_read_tokens',
      's.cost_usd',
      'b.budget',
    ]);
}

/** One session's usage and budget, when it has a budget (an agent step: no query building). */
const selectBudgetedSession = precompileQuery<
  Database,
  Awaited<ReturnType<ReturnType<typeof selectBudgetAndUsage>['executeTakeFirstOrThrow']>>
>(1, (db, [sessionId]) =>
  selectBudgetAndUsage(db)
    .where('s.id', '=', sessionId as string)
    .where('b.budget', 'is not', null),
);

/**
 * Sessions seen without a budget. A session's settings never change after submission, so neither
 * its finishes nor its agents' starts read its budget again (one statement per agent step each).
 * Ids are random UUIDv7s, so one set serves every database of the process. Bounded: emptied when
 * full.
 */
const unbudgetedSessions = new Set<string>();
const UNBUDGETED_MAX = 10_000;

function rememberUnbudgeted(sessionId: string): void {
  if (unbudgetedSessions.size >= UNBUDGETED_MAX) unbudgetedSessions.clear();
  unbudgetedSessions.add(sessionId);
}

/** Why a session must stop now: its budget (the reason) or its tenant's daily token quota. */
export interface SessionOverrun {
  code: 'BUDGET_EXCEEDED' | 'QUOTA_EXCEEDED';
  reason: string;
}

/** The session error for an overrun; the code leads so clients can match it. */
export function formatOverrun(overrun: SessionOverrun): string {
  return `${overrun.code}: ${overrun.reason}`;
}

/**
 * Sessions among `touched` that must stop now, with the reason: a task the runtime stopped for the
 * session's budget or the tenant's daily token quota, or the session's usage (stored + this batch)
 * over a limit of its budget.
 */
export async function findBudgetOverruns(
  trx: Kysely<Database>,
  touched: ReadonlyMap<string, Touched>,
  now: number,
): Promise<Map<string, SessionOverrun>> {
  const overruns = new Map<string, SessionOverrun>();
  for (const [sessionId, entry] of touched) {
    for (const event of entry.events) {
      if (event.type !== 'task.result') continue;
      // By code, not by text: a runner's error output could begin like a budget stop.
      const error = event.data.error ?? '';
      if (event.data.code === 'BUDGET_EXCEEDED') {
        const reason = error.startsWith(BUDGET_STOP_PREFIX) ? error.slice(BUDGET_STOP_PREFIX.length) : error;
        overruns.set(sessionId, { code: 'BUDGET_EXCEEDED', reason });
      } else if (event.data.code === 'QUOTA_EXCEEDED') {
        overruns.set(sessionId, { code: 'QUOTA_EXCEEDED', reason: error });
      }
    }
  }
  const ids = [...touched.keys()].filter((id) => !unbudgetedSessions.has(id));
  for (let i = 0; i < ids.length; i += ID_CHUNK) {
    const chunk = ids.slice(i, i + ID_CHUNK);
    const rows =
      chunk.length === 1
        ? (await selectBudgetedSession(trx, chunk[0]!)).rows
        : await selectBudgetAndUsage(trx)
            .where('s.id', 'in', chunk)
            .where('b.budget', 'is not', null)
            .execute();
    // No row: the session has no budget.
    const budgeted = new Set(rows.map((row) => row.id));
    for (const id of chunk) if (!budgeted.has(id)) rememberUnbudgeted(id);
    for (const row of rows) {
      if (overruns.has(row.id) || isTerminalSessionStatus(row.status as SessionStatus)) continue;
      const usage = toUsage(row);
      const batch = touched.get(row.id)?.usage;
      if (batch) addUsage(usage, batch);
      // A damaged budget is told by the budget guard and the session's reads, not at every finish.
      const budget = parseStoredBudget(
        row.budget as string,
        row.id,
        'session_settings.budget',
        IGNORE_DAMAGED_JSON,
      );
      if (budget === null) continue;
      // The deadline counts from submission: time waiting for approval counts (session-deadlines.ts).
      const reason = findBudgetOverrun(budget, usage, Number(row.created_at), now);
      if (reason) overruns.set(row.id, { code: 'BUDGET_EXCEEDED', reason });
    }
  }
  return overruns;
}

/** A session with a budget, as the guard last read it. */
interface GuardEntry {
  budget: Budget;
  usage: Usage;
  /** Where the deadline counts from: the session's submission. */
  createdAt: number;
  loadedAt: number;
}

/** A running task, as the guard tells its streams apart. */
export interface GuardedTask {
  tenantId: string;
  sessionId: string;
  taskId: string;
}

export interface BudgetGuard {
  /**
   * Loads the session's budget and usage before an agent starts (awaited by the runtime); throws
   * QUOTA_EXCEEDED when the tenant's daily token quota is used up (the agent must not start).
   */
  prepare(task: GuardedTask): Promise<void>;
  /**
   * The overrun reason for this task's session, or null: its stored usage plus what this task and
   * the session's other running tasks in this process have streamed so far (`partialUsage` is this
   * task's); or the tenant's QUOTA_EXCEEDED (tenant-token-guard.ts).
   */
  check(task: GuardedTask, partialUsage: Usage): BudgetCheckResult;
  /** The task's run has ended: its streamed usage stops counting (its finish stores what it spent). */
  release(task: GuardedTask): void;
}

/**
 * Guard for the LLM runtime's synchronous `checkBudget`: session budget and usage are cached per
 * session and refreshed in the background (every `refreshMs`), so a flush never waits on the store.
 * With `maxDailyTokensPerTenant` (> 0) it also holds the tenant's daily token quota.
 */
export function createBudgetGuard(
  db: Kysely<Database>,
  options: {
    refreshMs?: number;
    now?: () => number;
    maxDailyTokensPerTenant?: number;
    /** Told (warn) of a session whose stored budget cannot be read, once per session. */
    logger?: Logger;
  } = {},
): BudgetGuard {
  const refreshMs = options.refreshMs ?? 250;
  const now = options.now ?? Date.now;
  const tenantTokens =
    (options.maxDailyTokensPerTenant ?? 0) > 0
      ? createTenantTokenGuard(db, options.maxDailyTokensPerTenant as number, { refreshMs, now })
      : undefined;
  const reportDamaged = options.logger ? createDamagedJsonReport(options.logger) : IGNORE_DAMAGED_JSON;
  const cache = new Map<string, GuardEntry>();
  const loading = new Map<string, Promise<void>>();
  // Per session, the usage each of its running tasks has streamed so far: parallel agents each
  // under the budget may be over it together.
  const streaming = new Map<string, Map<string, Usage>>();
  let sweptAt = now();

  /** Forgets sessions not seen for a while (at most once a minute: the sweep walks the whole cache). */
  function sweep(): void {
    const at = now();
    if (at - sweptAt < 60_000) return;
    sweptAt = at;
    const stale = at - 10 * 60_000;
    for (const [id, entry] of cache) if (entry.loadedAt < stale) cache.delete(id);
  }

  async function load(sessionId: string): Promise<void> {
    const row = await selectBudgetAndUsage(db).where('s.id', '=', sessionId).executeTakeFirst();
    if (!row?.budget) {
      cache.delete(sessionId);
      if (row) rememberUnbudgeted(sessionId);
      return;
    }
    const budget = parseStoredBudget(row.budget, sessionId, 'session_settings.budget', reportDamaged);
    if (budget === null) {
      // Treated as none, as the finishes and the reaper do: remembered, so it is read (and told) once.
      cache.delete(sessionId);
      rememberUnbudgeted(sessionId);
      return;
    }
    cache.set(sessionId, {
      budget,
      usage: toUsage(row),
      createdAt: Number(row.created_at),
      loadedAt: now(),
    });
  }

  function refresh(sessionId: string): Promise<void> {
    let pending = loading.get(sessionId);
    if (!pending) {
      pending = load(sessionId)
        .catch(() => {})
        .finally(() => loading.delete(sessionId));
      loading.set(sessionId, pending);
    }
    return pending;
  }

  /** The session budget's overrun reason, or null. */
  function checkSession(task: GuardedTask, partialUsage: Usage): string | null {
    const entry = cache.get(task.sessionId);
    if (!entry) {
      // Swept while this run was silent for ten minutes (a model thinking before it answers, a
      // long tool call), or the read at its start failed: read it again, so the next flush checks
      // the budget instead of none until the run ends. Sessions known without one are not read.
      if (!unbudgetedSessions.has(task.sessionId)) void refresh(task.sessionId);
      return null;
    }
    if (now() - entry.loadedAt > refreshMs) void refresh(task.sessionId);
    let running = streaming.get(task.sessionId);
    if (!running) {
      running = new Map();
      streaming.set(task.sessionId, running);
    }
    running.set(task.taskId, partialUsage);
    const usage = { ...entry.usage };
    for (const streamed of running.values()) addUsage(usage, streamed);
    return findBudgetOverrun(entry.budget, usage, entry.createdAt, now());
  }

  return {
    async prepare(task) {
      await tenantTokens?.prepare(task);
      // A session's budget never changes: one without a budget needs no usage either.
      if (unbudgetedSessions.has(task.sessionId)) return;
      // The cache stays bounded by the budgeted sessions active in the last minutes.
      sweep();
      await refresh(task.sessionId);
    },
    check(task, partialUsage) {
      return checkSession(task, partialUsage) ?? tenantTokens?.check(task, partialUsage) ?? null;
    },
    release(task) {
      tenantTokens?.release(task);
      const running = streaming.get(task.sessionId);
      if (!running) return;
      running.delete(task.taskId);
      if (running.size === 0) streaming.delete(task.sessionId);
    },
  };
}
