// The write operations of a task's life, each run inside a write-queue transaction: start,
// finish (result + state + usage + events + newly ready dependants + session outcome, atomically)
// and release at shutdown (lease expiry: lease-expiry.ts; output lines: task-output.ts). Every one
// is fenced by (owner, attempt), so a completion for a lease that is no longer held is rejected and
// never applied twice. Start and finish take many tasks at once (coalesced by the scheduler) to keep
// statements per task low.
import type { Kysely } from 'kysely';
import { isTerminalSessionStatus } from '../domain/session-state.ts';
import { transitionTask } from '../domain/task-state.ts';
import { addUsage, isZeroUsage, type SessionStatus, type TaskStatus } from '../domain/types.ts';
import { appendEvents, appendEventsMany } from '../store/event-store.ts';
import { markMessagesDelivered } from '../store/message-store.ts';
import type { Database } from '../store/schema.ts';
import { lockSessions } from '../store/session-locks.ts';
import { toStorableText } from '../store/storable-text.ts';
import { sortModelUsage } from '../store/task-model-usage.ts';
import { completeClaimedTasks } from '../store/task-store.ts';
import {
  advanceSessions,
  type ContinueSession,
  chargeSessionUsage,
  type HandOff,
  type Touched,
  touch,
} from './advance-sessions.ts';
import {
  addTaskUsage,
  claimUnappliedCharge,
  recordCharge,
  type SpendCharge,
  settleStoppedRun,
  takeUnsettledUsage,
} from './run-spend.ts';
import { type Claim, type FinishEffects, NOT_APPLIED, type RunOutcome } from './task-outcome.ts';
import { toOutputEvents } from './task-output.ts';

export type { ContinueSession, HandOff } from './advance-sessions.ts';

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
        ...(outcome.modelUsage ? { modelUsage: outcome.modelUsage } : {}),
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
          // The run's usage per provider and model, as the task's `models` show it.
          ...(outcome.modelUsage?.length ? { models: sortModelUsage([...outcome.modelUsage]) } : {}),
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
 * The runs among `items` whose finish is stored already: the task ended at the run's attempt with the
 * run's own result or error, and no lease (a later claim would show another attempt). For a finish
 * tried again after its first try failed without an answer from the database, whose commit may have
 * happened all the same: applying it again would charge the run's usage a second time as unapplied.
 */
export async function findFinishedRuns<T extends { claim: Claim; outcome: RunOutcome }>(
  trx: Kysely<Database>,
  items: readonly T[],
): Promise<Set<T>> {
  if (items.length === 0) return new Set();
  const rows = await trx
    .selectFrom('tasks')
    .select(['id', 'attempts', 'status', 'result', 'error', 'lease_owner'])
    .where(
      'id',
      'in',
      items.map((item) => item.claim.taskId),
    )
    .execute();
  const byId = new Map(rows.map((row) => [row.id, row]));
  const done = new Set<T>();
  for (const item of items) {
    const row = byId.get(item.claim.taskId);
    if (!row || Number(row.attempts) !== item.claim.attempt || row.lease_owner !== null) continue;
    const { outcome } = item;
    // Compared as the store keeps text (U+0000 and unpaired surrogates as U+FFFD): as given, an
    // output holding either was never found, and its usage charged again as an unapplied run's.
    const stored = outcome.ok
      ? row.status === 'succeeded' && row.result === asStored(outcome.output)
      : row.status === 'failed' && row.error === asStored(outcome.error);
    if (stored) done.add(item);
  }
  return done;
}

/** `text` as the store keeps it (both drivers write an unpaired surrogate as U+FFFD). */
function asStored(text: string): string {
  return toStorableText(text.toWellFormed());
}

/**
 * Adds what a run spent to its task (whatever its state now) and session: for a run whose claim no
 * longer held when it ended (cancelled, lease lost, given back at shutdown). Once per run, also
 * when its finish is tried again after a commit whose answer was lost (claimUnappliedCharge).
 * A charge is announced by a `task.usage` event naming the task, unless the session has ended
 * (`session.finished` stays its last event; its detail shows the charge): no other event of the run
 * says that the task's usage changed. Returns whether that event was appended.
 */
export async function chargeUnappliedRun(
  trx: Kysely<Database>,
  claim: Claim,
  outcome: Pick<RunOutcome, 'usage' | 'spendOnRecord' | 'modelUsage' | 'modelsOnRecord'>,
  now: number,
): Promise<boolean> {
  // Session before task, as finishes and cancels lock them (no lock cycle between replicas).
  await lockSessions(trx, [claim.sessionId]);
  // Once per run: a finish tried again after its first try committed (only the COMMIT's answer was
  // lost) finds that try's charge recorded.
  if (!(await claimUnappliedCharge(trx, claim))) return false;
  // Less what a cancel or the lease reaper already charged from the spend this run recorded; per
  // model as well, so the stopped run counts under the models that served it.
  const charge = await settleStoppedRun(trx, claim, outcome.usage, outcome.spendOnRecord, {
    ...(outcome.modelUsage ? { spent: outcome.modelUsage } : {}),
    ...(outcome.modelsOnRecord ? { onRecord: outcome.modelsOnRecord } : {}),
  });
  const status = await chargeTaskAndSession(trx, claim, charge, now);
  // Nothing charged, the session gone (deleted) or ended: no event.
  if (status === undefined || isTerminalSessionStatus(status)) return false;
  await appendEvents(
    trx,
    { id: claim.sessionId, tenantId: claim.tenantId },
    [
      {
        type: 'task.usage',
        data: {
          taskId: claim.taskId,
          name: claim.name,
          attempt: claim.attempt,
          usage: charge.usage,
          ...(charge.models.length > 0 ? { models: sortModelUsage([...charge.models]) } : {}),
        },
      },
    ],
    now,
  );
  return true;
}

/**
 * Adds a charge to the task's and its session's usage, its models to the task's (nothing to write
 * when it is zero). Returns the session's status then; undefined when nothing was charged or the
 * session row is gone.
 */
async function chargeTaskAndSession(
  trx: Kysely<Database>,
  task: { taskId: string; sessionId: string; tenantId: string },
  charge: SpendCharge,
  now: number,
): Promise<SessionStatus | undefined> {
  if (isZeroUsage(charge.usage)) return undefined;
  await addTaskUsage(trx, task.taskId, charge.usage, now, charge.models);
  // The tenant's day is charged also when the session was deleted while the run was stopping.
  return chargeSessionUsage(trx, task.sessionId, charge.usage, now, task.tenantId);
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

/** Graceful shutdown: gives a claimed task back (→ ready) without counting the attempt. */
export async function releaseTask(trx: Kysely<Database>, claim: Claim, now: number): Promise<boolean> {
  await lockSessions(trx, [claim.sessionId]);
  // A run that ignored its abort has not charged its spend: its record is charged now, before the
  // attempt number is given back (the next claim reuses it).
  const record = await takeUnsettledUsage(trx, claim);
  if (record) await chargeTaskAndSession(trx, claim, recordCharge(record), now);
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
