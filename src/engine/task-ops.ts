// The write operations of a task's life, each run inside a write-queue transaction: start,
// finish (result + state + usage + events + newly ready dependants + session outcome, atomically),
// lease expiry, release at shutdown and output lines. Every one is fenced by (owner, attempt),
// so a completion for a lease that is no longer held is rejected and never applied twice.
import type { Kysely } from 'kysely';
import { advanceSession } from '../domain/advance.ts';
import type { NewEvent } from '../domain/events.ts';
import { isTerminalSessionStatus, transitionSession } from '../domain/session-state.ts';
import { transitionTask } from '../domain/task-state.ts';
import type { SessionStatus, TaskStatus, Usage } from '../domain/types.ts';
import { appendEvents } from '../store/event-store.ts';
import type { Database, TasksTable } from '../store/schema.ts';
import { loadSessionGraph } from '../store/task-store.ts';

/** Proof of a claim: only the holder of (owner, attempt) may change the task. */
export interface Claim {
  taskId: string;
  sessionId: string;
  tenantId: string;
  name: string;
  owner: string;
  attempt: number;
}

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

/** leased → running. Returns false when the lease is gone (cancelled, expired, re-claimed). */
export async function markTaskRunning(trx: Kysely<Database>, claim: Claim, now: number): Promise<boolean> {
  const to = transitionTask('leased', 'start');
  const updated = await trx
    .updateTable('tasks')
    .set({ status: to, started_at: now, updated_at: now })
    .where('id', '=', claim.taskId)
    .where('status', '=', 'leased')
    .where('lease_owner', '=', claim.owner)
    .where('attempts', '=', claim.attempt)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) return false;
  await appendEvents(
    trx,
    { id: claim.sessionId, tenantId: claim.tenantId },
    [
      {
        type: 'task.status',
        data: { taskId: claim.taskId, name: claim.name, from: 'leased', to, attempt: claim.attempt },
      },
    ],
    now,
  );
  return true;
}

/** Applies a run's outcome if the claim still holds, then advances the session. */
export async function finishTask(
  trx: Kysely<Database>,
  claim: Claim,
  outcome: RunOutcome,
  now: number,
): Promise<FinishEffects> {
  const to: TaskStatus = outcome.ok
    ? transitionTask('running', 'succeed')
    : transitionTask('running', 'fail');
  const updated = await trx
    .updateTable('tasks')
    .set({
      status: to,
      result: outcome.ok ? outcome.output : null,
      error: outcome.ok ? null : outcome.error,
      input_tokens: outcome.usage.inputTokens,
      output_tokens: outcome.usage.outputTokens,
      cache_read_tokens: outcome.usage.cacheReadTokens,
      cost_usd: outcome.usage.costUsd,
      lease_owner: null,
      lease_expires_at: null,
      finished_at: now,
      updated_at: now,
    })
    .where('id', '=', claim.taskId)
    .where('status', 'in', outcome.ok ? ['running'] : ['leased', 'running'])
    .where('lease_owner', '=', claim.owner)
    .where('attempts', '=', claim.attempt)
    .returning('status')
    .executeTakeFirst();
  if (!updated) return NOT_APPLIED;
  const events: NewEvent[] = [
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
  ];
  return advanceAfter(trx, claim, events, outcome.usage, now);
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
  const claim: Claim = {
    taskId: row.id,
    sessionId: row.session_id,
    tenantId: row.tenant_id,
    name: row.name,
    owner: row.lease_owner ?? '',
    attempt: attempts,
  };
  const failure: NewEvent = {
    type: 'task.result',
    data: { taskId: row.id, name: row.name, status: 'failed', error: reason, usage: zeroUsage() },
  };
  const effects = await advanceAfter(trx, claim, [event, failure], zeroUsage(), now);
  return { ...effects, retried: false };
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

/** Runs advance on the session after a task reached a terminal state and writes its decisions. */
async function advanceAfter(
  trx: Kysely<Database>,
  claim: Claim,
  events: NewEvent[],
  usage: Usage,
  now: number,
): Promise<FinishEffects> {
  const graph = await loadSessionGraph(trx, claim.sessionId);
  const decision = advanceSession(graph);
  const byId = new Map(graph.map((task) => [task.id, task]));
  if (decision.ready.length > 0) {
    await trx
      .updateTable('tasks')
      .set({ status: transitionTask('pending', 'dependencies_met'), ready_at: now, updated_at: now })
      .where('id', 'in', decision.ready)
      .where('status', '=', 'pending')
      .execute();
    for (const id of decision.ready) {
      events.push({
        type: 'task.status',
        data: { taskId: id, name: byId.get(id)!.name, from: 'pending', to: 'ready', attempt: 0 },
      });
    }
  }
  for (const { id, reason } of decision.cancel) {
    await trx
      .updateTable('tasks')
      .set({ status: transitionTask('pending', 'cancel'), error: reason, finished_at: now, updated_at: now })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .execute();
    events.push({
      type: 'task.status',
      data: { taskId: id, name: byId.get(id)!.name, from: 'pending', to: 'cancelled', attempt: 0, reason },
    });
  }
  const session = await trx
    .updateTable('sessions')
    .set((eb) => ({
      input_tokens: eb('input_tokens', '+', usage.inputTokens),
      output_tokens: eb('output_tokens', '+', usage.outputTokens),
      cache_read_tokens: eb('cache_read_tokens', '+', usage.cacheReadTokens),
      cost_usd: eb('cost_usd', '+', usage.costUsd),
      updated_at: now,
    }))
    .where('id', '=', claim.sessionId)
    .returning(['status', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cost_usd'])
    .executeTakeFirstOrThrow();
  let sessionFinished: SessionStatus | null = null;
  const outcome = decision.outcome;
  const from = session.status as SessionStatus;
  if (outcome && !isTerminalSessionStatus(from)) {
    const to = transitionSession(from, outcome.status === 'completed' ? 'complete' : 'fail');
    await trx
      .updateTable('sessions')
      .set({
        status: to,
        result: outcome.status === 'completed' ? outcome.result : null,
        error: outcome.status === 'failed' ? outcome.error : null,
        finished_at: now,
      })
      .where('id', '=', claim.sessionId)
      .execute();
    events.push(
      { type: 'session.status', data: { from, to } },
      {
        type: 'session.finished',
        data: {
          status: outcome.status,
          error: outcome.status === 'failed' ? outcome.error : null,
          result: outcome.status === 'completed' ? outcome.result : null,
          usage: {
            inputTokens: Number(session.input_tokens),
            outputTokens: Number(session.output_tokens),
            cacheReadTokens: Number(session.cache_read_tokens),
            costUsd: Number(session.cost_usd),
          },
        },
      },
    );
    sessionFinished = to;
  }
  await appendEvents(trx, { id: claim.sessionId, tenantId: claim.tenantId }, events, now);
  return { applied: true, readied: decision.ready.length, sessionFinished };
}
