// The write operations of a task's life, each run inside a write-queue transaction: start,
// finish (result + state + usage + events + newly ready dependants + session outcome, atomically),
// lease expiry, release at shutdown and output lines. Every one is fenced by (owner, attempt),
// so a completion for a lease that is no longer held is rejected and never applied twice.
// Start and finish take many tasks at once (coalesced by the scheduler) to keep statements per task low.
import type { Kysely } from 'kysely';
import { advanceSession } from '../domain/advance.ts';
import type { NewEvent } from '../domain/events.ts';
import { isTerminalSessionStatus, transitionSession } from '../domain/session-state.ts';
import { transitionTask } from '../domain/task-state.ts';
import type { SessionStatus, TaskStatus, Usage } from '../domain/types.ts';
import { appendEvents, appendEventsMany, type SessionEvents } from '../store/event-store.ts';
import { toUsage } from '../store/rows.ts';
import type { Database, TasksTable } from '../store/schema.ts';
import { completeClaimedTasks, loadSessionGraphs } from '../store/task-store.ts';

/** Proof of a claim: only the holder of (owner, attempt) may change the task. */
export interface Claim {
  taskId: string;
  sessionId: string;
  tenantId: string;
  name: string;
  owner: string;
  attempt: number;
}

/**
 * Called in the finishing transaction when every task of a session has succeeded. Returning
 * non-null keeps the session running: the hook has inserted further (ready) tasks and returns how
 * many, plus events to append. Seam for orchestrator-planned sessions (phase gates, synthesis).
 */
export type ContinueSession = (
  trx: Kysely<Database>,
  session: { id: string; tenantId: string },
  now: number,
) => Promise<{ readied: number; events: NewEvent[] } | null>;

export type RunOutcome =
  | { ok: true; output: string; usage: Usage }
  | { ok: false; error: string; usage: Usage };

export interface FinishEffects {
  /** False when the lease was no longer held: nothing was written. */
  applied: boolean;
  /** Tasks that became ready (wake idle slots). */
  readied: number;
  /** Set when the session reached a terminal status in this transaction. */
  sessionFinished: SessionStatus | null;
}

const NOT_APPLIED: FinishEffects = { applied: false, readied: 0, sessionFinished: null };

/** leased → running for many claims; returns, per claim, false when its lease is gone. */
export async function markTasksRunning(
  trx: Kysely<Database>,
  claims: readonly Claim[],
  now: number,
): Promise<boolean[]> {
  if (claims.length === 0) return [];
  const to = transitionTask('leased', 'start');
  const held = new Set<string>();
  for (const owner of new Set(claims.map((claim) => claim.owner))) {
    const mine = claims.filter((claim) => claim.owner === owner);
    const rows = await trx
      .updateTable('tasks')
      .set({ status: to, started_at: now, updated_at: now })
      .where('status', '=', 'leased')
      .where('lease_owner', '=', owner)
      .where(
        'id',
        'in',
        mine.map((claim) => claim.taskId),
      )
      .returning(['id', 'attempts'])
      .execute();
    const attempts = new Map(rows.map((row) => [row.id, Number(row.attempts)]));
    for (const claim of mine) if (attempts.get(claim.taskId) === claim.attempt) held.add(claim.taskId);
  }
  await appendEventsMany(
    trx,
    claims
      .filter((claim) => held.has(claim.taskId))
      .map((claim) => ({
        session: { id: claim.sessionId, tenantId: claim.tenantId },
        events: [
          {
            type: 'task.status' as const,
            data: {
              taskId: claim.taskId,
              name: claim.name,
              from: 'leased' as const,
              to,
              attempt: claim.attempt,
            },
          },
        ],
      })),
    now,
  );
  return claims.map((claim) => held.has(claim.taskId));
}

/** Applies each run's outcome whose claim still holds, then advances the sessions touched. */
export async function finishTasks(
  trx: Kysely<Database>,
  items: ReadonlyArray<{ claim: Claim; outcome: RunOutcome }>,
  now: number,
  continueSession?: ContinueSession,
): Promise<FinishEffects[]> {
  const touched = new Map<string, Touched>();
  const statusOf = (outcome: RunOutcome): TaskStatus =>
    outcome.ok ? transitionTask('running', 'succeed') : transitionTask('running', 'fail');
  const updated = new Set<string>();
  for (const owner of new Set(items.map((item) => item.claim.owner))) {
    const runs = items
      .filter((item) => item.claim.owner === owner)
      .map(({ claim, outcome }) => ({
        taskId: claim.taskId,
        attempt: claim.attempt,
        ok: outcome.ok,
        status: statusOf(outcome),
        result: outcome.ok ? outcome.output : null,
        error: outcome.ok ? null : outcome.error,
        usage: outcome.usage,
      }));
    for (const id of await completeClaimedTasks(trx, owner, runs, now)) updated.add(id);
  }
  const applied: boolean[] = [];
  for (const { claim, outcome } of items) {
    const to = statusOf(outcome);
    // `delete` makes a task listed twice count once.
    const wasUpdated = updated.delete(claim.taskId);
    applied.push(wasUpdated);
    if (!wasUpdated) continue;
    const entry = touch(touched, claim);
    addUsage(entry.usage, outcome.usage);
    entry.events.push(
      {
        type: 'task.status',
        data: {
          taskId: claim.taskId,
          name: claim.name,
          from: 'running',
          to,
          attempt: claim.attempt,
          ...(outcome.ok ? {} : { reason: outcome.error }),
        },
      },
      {
        type: 'task.result',
        data: {
          taskId: claim.taskId,
          name: claim.name,
          status: outcome.ok ? 'succeeded' : 'failed',
          ...(outcome.ok ? { output: outcome.output } : { error: outcome.error }),
          usage: outcome.usage,
        },
      },
    );
  }
  const effects = await advanceSessions(trx, touched, now, continueSession);
  // Session-level effects are reported once, on the first applied item of each session.
  const reported = new Set<string>();
  return items.map(({ claim }, index) => {
    if (!applied[index]) return NOT_APPLIED;
    if (reported.has(claim.sessionId)) return { applied: true, readied: 0, sessionFinished: null };
    reported.add(claim.sessionId);
    return { applied: true, ...(effects.get(claim.sessionId) ?? { readied: 0, sessionFinished: null }) };
  });
}

/** finishTasks for one task. */
export async function finishTask(
  trx: Kysely<Database>,
  claim: Claim,
  outcome: RunOutcome,
  now: number,
): Promise<FinishEffects> {
  const [effects] = await finishTasks(trx, [{ claim, outcome }], now);
  return effects!;
}

/** The reaper's step for one expired lease: retry (attempt + 1) or fail for good. */
export async function expireTaskLease(
  trx: Kysely<Database>,
  row: TasksTable,
  now: number,
): Promise<FinishEffects & { retried: boolean }> {
  const attempts = Number(row.attempts);
  const from = row.status as TaskStatus;
  const retry = attempts < Number(row.max_attempts);
  const reason = retry
    ? `lease expired (worker ${row.lease_owner ?? 'unknown'} lost); retrying`
    : `lease expired on attempt ${attempts} of ${row.max_attempts} (worker lost or stalled); giving up`;
  const to = transitionTask(from, retry ? 'retry' : 'fail');
  const updated = await trx
    .updateTable('tasks')
    .set({
      status: to,
      lease_owner: null,
      lease_expires_at: null,
      updated_at: now,
      ...(retry ? { ready_at: now, started_at: null } : { error: reason, finished_at: now }),
    })
    .where('id', '=', row.id)
    .where('status', '=', from)
    .where('attempts', '=', attempts)
    .where('lease_expires_at', '<', now)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) return { ...NOT_APPLIED, retried: false };
  const event: NewEvent = {
    type: 'task.status',
    data: { taskId: row.id, name: row.name, from, to, attempt: attempts, reason },
  };
  const session = { id: row.session_id, tenantId: row.tenant_id };
  if (retry) {
    await appendEvents(trx, session, [event], now);
    return { applied: true, readied: 1, sessionFinished: null, retried: true };
  }
  const touched = new Map<string, Touched>();
  const failure: NewEvent = {
    type: 'task.result',
    data: { taskId: row.id, name: row.name, status: 'failed', error: reason, usage: zeroUsage() },
  };
  touched.set(row.session_id, { tenantId: row.tenant_id, events: [event, failure], usage: zeroUsage() });
  const effects = (await advanceSessions(trx, touched, now)).get(row.session_id)!;
  return { applied: true, ...effects, retried: false };
}

/** Graceful shutdown: gives a claimed task back (→ ready) without counting the attempt. */
export async function releaseTask(trx: Kysely<Database>, claim: Claim, now: number): Promise<boolean> {
  const row = await trx
    .updateTable('tasks')
    .set({
      status: 'ready',
      lease_owner: null,
      lease_expires_at: null,
      attempts: claim.attempt - 1,
      ready_at: now,
      started_at: null,
      updated_at: now,
    })
    .where('id', '=', claim.taskId)
    .where('status', 'in', ['leased', 'running'])
    .where('lease_owner', '=', claim.owner)
    .where('attempts', '=', claim.attempt)
    .returning('status')
    .executeTakeFirst();
  if (!row) return false;
  await appendEvents(
    trx,
    { id: claim.sessionId, tenantId: claim.tenantId },
    [
      {
        type: 'task.status',
        data: {
          taskId: claim.taskId,
          name: claim.name,
          from: 'running',
          to: transitionTask('running', 'release'),
          attempt: claim.attempt,
          reason: 'released at shutdown',
        },
      },
    ],
    now,
  );
  return true;
}

/** Appends output lines while the claim still holds (never after the session's final event). */
export async function appendTaskOutput(
  trx: Kysely<Database>,
  claim: Claim,
  lines: ReadonlyArray<{ stream: 'stdout' | 'stderr' | 'text'; line: string }>,
  now: number,
): Promise<boolean> {
  if (lines.length === 0) return true;
  const held = await trx
    .selectFrom('tasks')
    .select('id')
    .where('id', '=', claim.taskId)
    .where('status', 'in', ['leased', 'running'])
    .where('lease_owner', '=', claim.owner)
    .where('attempts', '=', claim.attempt)
    .executeTakeFirst();
  if (!held) return false;
  await appendEvents(
    trx,
    { id: claim.sessionId, tenantId: claim.tenantId },
    lines.map((entry) => ({
      type: 'task.output' as const,
      data: { taskId: claim.taskId, name: claim.name, stream: entry.stream, line: entry.line },
    })),
    now,
  );
  return true;
}

function zeroUsage(): Usage {
  return { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 };
}

interface Touched {
  tenantId: string;
  events: NewEvent[];
  usage: Usage;
}

function touch(touched: Map<string, Touched>, claim: Claim): Touched {
  let entry = touched.get(claim.sessionId);
  if (!entry) {
    entry = { tenantId: claim.tenantId, events: [], usage: zeroUsage() };
    touched.set(claim.sessionId, entry);
  }
  return entry;
}

function addUsage(total: Usage, more: Usage): void {
  total.inputTokens += more.inputTokens;
  total.outputTokens += more.outputTokens;
  total.cacheReadTokens += more.cacheReadTokens;
  total.costUsd += more.costUsd;
}

function isZero(usage: Usage): boolean {
  return (
    usage.inputTokens === 0 && usage.outputTokens === 0 && usage.cacheReadTokens === 0 && usage.costUsd === 0
  );
}

// Ids per `IN (…)` list: well below SQLite's bound-variable limit.
const ID_CHUNK = 500;

/**
 * Runs advance on every session in `touched` (some of whose tasks just reached a terminal state)
 * and writes the decisions: newly ready tasks, cancelled dependants, usage, session outcome, events.
 */
async function advanceSessions(
  trx: Kysely<Database>,
  touched: Map<string, Touched>,
  now: number,
  continueSession?: ContinueSession,
): Promise<Map<string, { readied: number; sessionFinished: SessionStatus | null }>> {
  const result = new Map<string, { readied: number; sessionFinished: SessionStatus | null }>();
  if (touched.size === 0) return result;
  const graphs = await loadSessionGraphs(trx, [...touched.keys()]);
  const ready: string[] = [];
  const outcomes = new Map<string, NonNullable<ReturnType<typeof advanceSession>['outcome']>>();
  for (const [sessionId, entry] of touched) {
    const graph = graphs.get(sessionId) ?? [];
    const decision = advanceSession(graph);
    const byId = new Map(graph.map((task) => [task.id, task]));
    ready.push(...decision.ready);
    for (const id of decision.ready) {
      entry.events.push({
        type: 'task.status',
        data: { taskId: id, name: byId.get(id)!.name, from: 'pending', to: 'ready', attempt: 0 },
      });
    }
    for (const { id, reason } of decision.cancel) {
      await trx
        .updateTable('tasks')
        .set({
          status: transitionTask('pending', 'cancel'),
          error: reason,
          finished_at: now,
          updated_at: now,
        })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .execute();
      entry.events.push({
        type: 'task.status',
        data: { taskId: id, name: byId.get(id)!.name, from: 'pending', to: 'cancelled', attempt: 0, reason },
      });
    }
    let readied = decision.ready.length;
    let outcome = decision.outcome;
    if (outcome?.status === 'completed' && continueSession) {
      // Orchestrated sessions continue (phase gate, next phase, synthesis) instead of completing.
      const next = await continueSession(trx, { id: sessionId, tenantId: entry.tenantId }, now);
      if (next) {
        outcome = null;
        readied += next.readied;
        entry.events.push(...next.events);
      }
    }
    if (outcome) outcomes.set(sessionId, outcome);
    result.set(sessionId, { readied, sessionFinished: null });
  }
  for (let i = 0; i < ready.length; i += ID_CHUNK) {
    await trx
      .updateTable('tasks')
      .set({ status: transitionTask('pending', 'dependencies_met'), ready_at: now, updated_at: now })
      .where('id', 'in', ready.slice(i, i + ID_CHUNK))
      .where('status', '=', 'pending')
      .execute();
  }
  for (const [sessionId, entry] of touched) {
    const outcome = outcomes.get(sessionId);
    if (!outcome && isZero(entry.usage)) continue;
    const session = await trx
      .updateTable('sessions')
      .set((eb) => ({
        input_tokens: eb('input_tokens', '+', entry.usage.inputTokens),
        output_tokens: eb('output_tokens', '+', entry.usage.outputTokens),
        cache_read_tokens: eb('cache_read_tokens', '+', entry.usage.cacheReadTokens),
        cost_usd: eb('cost_usd', '+', entry.usage.costUsd),
        updated_at: now,
      }))
      .where('id', '=', sessionId)
      .returning(['status', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cost_usd'])
      .executeTakeFirstOrThrow();
    const from = session.status as SessionStatus;
    if (!outcome || isTerminalSessionStatus(from)) continue;
    const to = transitionSession(from, outcome.status === 'completed' ? 'complete' : 'fail');
    await trx
      .updateTable('sessions')
      .set({
        status: to,
        result: outcome.status === 'completed' ? outcome.result : null,
        error: outcome.status === 'failed' ? outcome.error : null,
        finished_at: now,
      })
      .where('id', '=', sessionId)
      .execute();
    entry.events.push(
      { type: 'session.status', data: { from, to } },
      {
        type: 'session.finished',
        data: {
          status: outcome.status,
          error: outcome.status === 'failed' ? outcome.error : null,
          result: outcome.status === 'completed' ? outcome.result : null,
          usage: toUsage(session),
        },
      },
    );
    result.get(sessionId)!.sessionFinished = to;
  }
  const batches: SessionEvents[] = [...touched].map(([sessionId, entry]) => ({
    session: { id: sessionId, tenantId: entry.tenantId },
    events: entry.events,
  }));
  await appendEventsMany(trx, batches, now);
  return result;
}
