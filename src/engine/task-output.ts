// A run's output lines and spend as it goes: each flush appends `task.output` events (and records
// the spend so far) while the run's claim still holds, fenced by (owner, attempt) like every task write.
import type { Kysely } from 'kysely';
import type { NewEvent } from '../domain/events.ts';
import type { ModelUsage, Usage } from '../domain/types.ts';
import { appendEvents, appendEventsMany } from '../store/event-store.ts';
import type { Database } from '../store/schema.ts';
import { lockSessions } from '../store/session-locks.ts';
import { findHeldClaims, holdsClaim } from '../store/task-claims.ts';
import { recordUnsettledUsage } from './run-spend.ts';
import type { Claim, TrailingOutput } from './task-outcome.ts';

/** One output flush of a run: its output lines, and its spend so far when that changed. */
export interface RunProgress {
  claim: Claim;
  lines: NonNullable<TrailingOutput['lines']>;
  spend?: Usage | undefined;
  /** `spend` per provider and model, when known. */
  models?: readonly ModelUsage[] | undefined;
}

/**
 * Output flushes of many runs (of one or many sessions) in the caller's transaction: each run's
 * spend (checking its claim) and its lines, if its claim still holds; returns, per flush in order,
 * whether it did. The sessions' rows are locked first, in id order, before any task row, as
 * finishes and cancels lock them, so a flush and a cancel on two replicas never wait for each
 * other in a cycle; the claims are then checked under that lock. The lines of all runs are
 * appended with one seq-reserving UPDATE and one INSERT; a session's lines keep the order of
 * `progress` (a run's two flushes may both be in it when the queue was busy), and each run's lines
 * their own.
 */
export async function recordRunsProgress(
  trx: Kysely<Database>,
  progress: readonly RunProgress[],
  now: number,
): Promise<boolean[]> {
  const writing = await lockProgressSessions(trx, progress);
  const held = await findHeldClaims(
    trx,
    writing.filter((item) => item.spend === undefined).map((item) => item.claim),
  );
  const stored: boolean[] = [];
  for (const item of progress) {
    if (item.spend !== undefined) {
      // Recording the spend checks the claim holds, as the output lines need.
      stored.push(await recordUnsettledUsage(trx, item.claim, item.spend, now, item.models));
    } else {
      stored.push(item.lines.length === 0 || held.has(item.claim));
    }
  }
  await appendEventsMany(
    trx,
    progress
      .filter((item, index) => stored[index] && item.lines.length > 0)
      .map((item) => ({
        session: { id: item.claim.sessionId, tenantId: item.claim.tenantId },
        events: toOutputEvents(item.claim, item.lines),
      })),
    now,
  );
  return stored;
}

/**
 * Locks, in id order, the sessions of the flushes that write something (lines or spend), and
 * returns those flushes. Locks taken again by the same transaction cost nothing more.
 */
export async function lockProgressSessions(
  trx: Kysely<Database>,
  progress: readonly RunProgress[],
): Promise<RunProgress[]> {
  const writing = progress.filter((item) => item.lines.length > 0 || item.spend !== undefined);
  await lockSessions(
    trx,
    writing.map((item) => item.claim.sessionId),
  );
  return writing;
}

/** Appends output lines while the claim still holds (never after the session's final event). */
export async function appendTaskOutput(
  trx: Kysely<Database>,
  claim: Claim,
  lines: NonNullable<TrailingOutput['lines']>,
  now: number,
): Promise<boolean> {
  if (lines.length === 0) return true;
  // The session first, as a flush (recordRunsProgress) and a cancel lock it: checked before, the
  // claim could read the task still running while a cancel on another replica was uncommitted, and
  // the lines went in after its session.finished once it committed (PostgreSQL).
  await lockSessions(trx, [claim.sessionId]);
  if (!(await holdsClaim(trx, claim))) return false;
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

/** The lines as `task.output` events of the claim's attempt. */
export function toOutputEvents(claim: Claim, lines: NonNullable<TrailingOutput['lines']>): NewEvent[] {
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
