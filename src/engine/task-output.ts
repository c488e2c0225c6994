// A run's output lines and spend as it goes: each flush appends `task.output` events (and records
// the spend so far) while the run's claim still holds, fenced by (owner, attempt) like every task write.
import type { Kysely } from 'kysely';
import type { NewEvent } from '../domain/events.ts';
import type { ModelUsage, Usage } from '../domain/types.ts';
import { appendEvents } from '../store/event-store.ts';
import type { Database } from '../store/schema.ts';
import { lockSessions } from '../store/session-locks.ts';
import { recordUnsettledUsage } from './run-spend.ts';
import type { Claim, TrailingOutput } from './task-outcome.ts';

/**
 * One output flush of a run: its spend so far (when it changed, with its split per provider and
 * model when known) and its output lines, if the claim still holds. The session row is locked
 * before the task row, as finishes and cancels lock them, so a flush and a cancel on two replicas
 * never wait for each other in a cycle.
 */
export async function recordRunProgress(
  trx: Kysely<Database>,
  claim: Claim,
  lines: NonNullable<TrailingOutput['lines']>,
  spend: Usage | undefined,
  now: number,
  models?: readonly ModelUsage[],
): Promise<boolean> {
  if (spend === undefined) return appendTaskOutput(trx, claim, lines, now);
  await lockSessions(trx, [claim.sessionId]);
  // Recording the spend checks the claim holds, as the output lines need.
  if (!(await recordUnsettledUsage(trx, claim, spend, now, models))) return false;
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
