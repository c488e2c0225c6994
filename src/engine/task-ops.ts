// The write operations of a task's life, each run inside a write-queue transaction: start,
// finish (result + state + usage + events + newly ready dependants + session outcome, atomically),
// lease expiry, release at shutdown and output lines. Every one is fenced by (owner, attempt),
// so a completion for a lease that is no longer held is rejected and never applied twice.
// Start and finish take many tasks at once (coalesced by the scheduler) to keep statements per task low.
import type { Kysely } from 'kysely';
import type { NewEvent } from '../domain/events.ts';
import { transitionTask } from '../domain/task-state.ts';
import { addUsage, isZeroUsage, type SessionStatus, type TaskStatus, type Usage } from '../domain/types.ts';
import { appendEvents, appendEventsMany } from '../store/event-store.ts';
import { leaseNow } from '../store/lease-clock.ts';
import { markMessagesDelivered } from '../store/message-store.ts';
import type { Database, TasksTable } from '../store/schema.ts';
import { lockSessions } from '../store/session-locks.ts';
import { completeClaimedTasks } from '../store/task-store.ts';
import {
  advanceSessions,
  type ContinueSession,
  chargeSessionUsage,
  type HandOff,
  type Touched,
  touch,
  zeroUsage,
} from './advance-sessions.ts';
import {
  addTaskUsage,
  parseUnsettledUsage,
  recordUnsettledUsage,
  settleStoppedRun,
  takeUnsettledUsage,
} from './run-spend.ts';

/** Proof of a claim: only the holder of (owner, attempt) may change the task. */
export interface Claim {
  taskId: string;
  sessionId: string;
  tenantId: string;
  name: string;
  owner: string;
  attempt: number;
}

export type { ContinueSession, HandOff } from './advance-sessions.ts';

/** Output lines of a run not stored yet: the finish appends them, before the result, in its own transaction. */
export interface TrailingOutput {
  lines?: ReadonlyArray<{ stream: 'stdout' | 'stderr' | 'text'; line: string; partial?: true }>;
  /** The spend the run last recorded on its task while it ran (engine/run-spend.ts), if any. */
  spendOnRecord?: Usage;
}

export type RunOutcome = (
  | {
      ok: true;
      output: string;
      usage: Usage;
      /** Messages the turn received (store/message-store.ts): marked delivered with the finish. */
      deliveredMessageIds?: string[];
    }
  | {
      ok: false;
      error: string;
      usage: Usage;
      /** The AppError code the run failed with (e.g. BUDGET_EXCEEDED from the runtime's budget guard). */
      code?: string;
    }
) &
  TrailingOutput;

export interface FinishEffects {
  /** False when the lease was no longer held: nothing was written. */
  applied: boolean;
  /** Tasks that became ready (wake idle slots). */
  readied: number;
  /** Set when the session reached a terminal status in this transaction. */
  sessionFinished: SessionStatus | null;
  /** True when the session failed for its budget in this transaction (metrics). */
  budgetExceeded?: boolean;
}

const NOT_APPLIED: FinishEffects = { applied: false, readied: 0, sessionFinished: null };

/** The `leased → running` events of claims that started. */
export async function appendStartEvents(
  trx: Kysely<Database>,
  claims: readonly Claim[],
  now: number,
): Promise<void> {
  await appendEventsMany(
    trx,
    claims.map((claim) => ({
      session: { id: claim.sessionId, tenantId: claim.tenantId },
      events: [
        {
          type: 'task.status' as const,
          data: {
            taskId: claim.taskId,
            name: claim.name,
            from: 'leased' as const,
            to: transitionTask('leased', 'start'),
            attempt: claim.attempt,
          },
        },
      ],
    })),
    now,
  );
}

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
  await appendStartEvents(
    trx,
    claims.filter((claim) => held.has(claim.taskId)),
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
  handOff?: HandOff,
): Promise<FinishEffects[]> {
  // Cluster mode: finishes of one session on two replicas must see each other (last task wins).
  await lockSessions(
    trx,
    items.map((item) => item.claim.sessionId),
  );
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
  // Tasks of this batch already settled: a task listed twice (a replayed completion) counts once.
  const settled = new Set<string>();
  for (const { claim, outcome } of items) {
    const to = statusOf(outcome);
    const wasUpdated = updated.delete(claim.taskId);
    applied.push(wasUpdated);
    const first = !settled.has(claim.taskId);
    settled.add(claim.taskId);
    if (!wasUpdated) {
      // The claim no longer held (the task was cancelled, or its lease expired and another attempt
      // took over), but the run's model calls were made and paid for: charged all the same.
      if (first) await chargeUnappliedRun(trx, claim, outcome, now);
      continue;
    }
    const entry = touch(touched, claim);
    addUsage(entry.usage, outcome.usage);
    if (outcome.ok && outcome.deliveredMessageIds) {
      await markMessagesDelivered(trx, claim, outcome.deliveredMessageIds);
    }
    // The run's last output lines share the finish's commit (one fsync per step, not two).
    if (outcome.lines) entry.events.push(...toOutputEvents(claim, outcome.lines));
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
          ...(!outcome.ok && outcome.code ? { code: outcome.code } : {}),
          usage: outcome.usage,
        },
      },
    );
  }
  const effects = await advanceSessions(trx, touched, now, continueSession, handOff);
  // Session-level effects are reported once, on the first applied item of each session.
  const reported = new Set<string>();
  return items.map(({ claim }, index) => {
    if (!applied[index]) return NOT_APPLIED;
    if (reported.has(claim.sessionId)) return { applied: true, readied: 0, sessionFinished: null };
    reported.add(claim.sessionId);
    return { applied: true, ...(effects.get(claim.sessionId) ?? { readied: 0, sessionFinished: null }) };
  });
}

/**
 * Adds what a run spent to its task (whatever its state now) and session: for a run whose claim no
 * longer held when it ended (cancelled, lease lost, given back at shutdown). Once per run.
 */
export async function chargeUnappliedRun(
  trx: Kysely<Database>,
  claim: Claim,
  outcome: Pick<RunOutcome, 'usage' | 'spendOnRecord'>,
  now: number,
): Promise<void> {
  // Session before task, as finishes and cancels lock them (no lock cycle between replicas).
  await lockSessions(trx, [claim.sessionId]);
  // Less what a cancel or the lease reaper already charged from the spend this run recorded.
  const usage = await settleStoppedRun(trx, claim, outcome.usage, outcome.spendOnRecord);
  await chargeTaskAndSession(trx, claim, usage, now);
}

/** Adds `usage` to the task's and its session's usage (nothing to write when it is zero). */
async function chargeTaskAndSession(
  trx: Kysely<Database>,
  task: { taskId: string; sessionId: string },
  usage: Usage,
  now: number,
): Promise<void> {
  if (isZeroUsage(usage)) return;
  await addTaskUsage(trx, task.taskId, usage, now);
  await chargeSessionUsage(trx, task.sessionId, usage, now);
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
  await lockSessions(trx, [row.session_id]);
  const attempts = Number(row.attempts);
  const from = row.status as TaskStatus;
  const retry = attempts < Number(row.max_attempts);
  const reason = retry
    ? `lease expired (worker ${row.lease_owner ?? 'unknown'} lost); retrying`
    : `lease expired on attempt ${attempts} of ${row.max_attempts} (worker lost or stalled); giving up`;
  const to = transitionTask(from, retry ? 'retry' : 'fail');
  // What the lost run recorded having spent: its process is gone, so it is charged here. Read
  // again under the session lock: a flush may have recorded more since the scan (PostgreSQL).
  const current = await trx
    .selectFrom('tasks')
    .select('unsettled_usage')
    .where('id', '=', row.id)
    .executeTakeFirst();
  const record = parseUnsettledUsage(current?.unsettled_usage);
  const lost = record?.attempt === attempts && record.owner === row.lease_owner ? record.usage : zeroUsage();
  const updated = await trx
    .updateTable('tasks')
    .set((eb) => ({
      status: to,
      lease_owner: null,
      lease_expires_at: null,
      updated_at: now,
      unsettled_usage: null,
      input_tokens: eb('input_tokens', '+', lost.inputTokens),
      output_tokens: eb('output_tokens', '+', lost.outputTokens),
      cache_read_tokens: eb('cache_read_tokens', '+', lost.cacheReadTokens),
      cost_usd: eb('cost_usd', '+', lost.costUsd),
      ...(retry ? { ready_at: now, started_at: null } : { error: reason, finished_at: now }),
    }))
    .where('id', '=', row.id)
    .where('status', '=', from)
    .where('attempts', '=', attempts)
    .where('lease_expires_at', '<', leaseNow(trx, now))
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) return { ...NOT_APPLIED, retried: false };
  const event: NewEvent = {
    type: 'task.status',
    data: { taskId: row.id, name: row.name, from, to, attempt: attempts, reason },
  };
  const session = { id: row.session_id, tenantId: row.tenant_id };
  if (retry) {
    if (!isZeroUsage(lost)) await chargeSessionUsage(trx, row.session_id, lost, now);
    await appendEvents(trx, session, [event], now);
    return { applied: true, readied: 1, sessionFinished: null, retried: true };
  }
  const touched = new Map<string, Touched>();
  const failure: NewEvent = {
    type: 'task.result',
    data: { taskId: row.id, name: row.name, status: 'failed', error: reason, usage: lost },
  };
  touched.set(row.session_id, { tenantId: row.tenant_id, events: [event, failure], usage: { ...lost } });
  const effects = (await advanceSessions(trx, touched, now)).get(row.session_id)!;
  return { applied: true, ...effects, retried: false };
}

/** Graceful shutdown: gives a claimed task back (→ ready) without counting the attempt. */
export async function releaseTask(trx: Kysely<Database>, claim: Claim, now: number): Promise<boolean> {
  await lockSessions(trx, [claim.sessionId]);
  // A run that ignored its abort has not charged its spend: its record is charged now, before the
  // attempt number is given back (the next claim reuses it).
  const record = await takeUnsettledUsage(trx, claim);
  if (record) await chargeTaskAndSession(trx, claim, record.usage, now);
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

/**
 * One output flush of a run: its spend so far (when it changed) and its output lines, if the claim
 * still holds. The session row is locked before the task row, as finishes and cancels lock them,
 * so a flush and a cancel on two replicas never wait for each other in a cycle.
 */
export async function recordRunProgress(
  trx: Kysely<Database>,
  claim: Claim,
  lines: NonNullable<TrailingOutput['lines']>,
  spend: Usage | undefined,
  now: number,
): Promise<boolean> {
  if (spend === undefined) return appendTaskOutput(trx, claim, lines, now);
  await lockSessions(trx, [claim.sessionId]);
  // Recording the spend checks the claim holds, as the output lines need.
  if (!(await recordUnsettledUsage(trx, claim, spend, now))) return false;
  await appendOutputEvents(trx, claim, lines, now);
  return true;
}

/** Appends output lines while the claim still holds (never after the session's final event). */
export async function appendTaskOutput(
  trx: Kysely<Database>,
  claim: Claim,
  lines: NonNullable<TrailingOutput['lines']>,
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
  await appendOutputEvents(trx, claim, lines, now);
  return true;
}

/** The lines as `task.output` events of the claim's attempt (the claim is known to hold). */
async function appendOutputEvents(
  trx: Kysely<Database>,
  claim: Claim,
  lines: NonNullable<TrailingOutput['lines']>,
  now: number,
): Promise<void> {
  if (lines.length === 0) return;
  await appendEvents(
    trx,
    { id: claim.sessionId, tenantId: claim.tenantId },
    toOutputEvents(claim, lines),
    now,
  );
}

function toOutputEvents(claim: Claim, lines: NonNullable<TrailingOutput['lines']>): NewEvent[] {
  return lines.map((entry) => ({
    type: 'task.output' as const,
    data: {
      taskId: claim.taskId,
      name: claim.name,
      stream: entry.stream,
      line: entry.line,
      ...(entry.partial ? { partial: true as const } : {}),
      attempt: claim.attempt,
    },
  }));
}
