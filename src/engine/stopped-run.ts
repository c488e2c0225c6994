// The end of a run the scheduler stopped before it finished (its session cancelled, its lease lost,
// the process shutting down or abandoning its work): the task is no longer the run's to finish, but
// what its model calls cost was spent and is charged; at shutdown the task is also given back.

import { coerceError } from '../errors/app-error.ts';
import type { Logger } from '../observability/logger.ts';
import { ENGINE_PROGRESS, type WriteQueue } from '../store/write-queue.ts';
import { type Notifier, READY_CHANNEL, sessionChannel } from './notifier.ts';
import { chargeUnappliedRun, releaseTask } from './task-ops.ts';
import type { Claim, RunOutcome } from './task-outcome.ts';
import { appendTaskOutput } from './task-output.ts';

/** Why the scheduler stopped a run. */
export type StopReason = 'cancel' | 'lease_lost' | 'shutdown' | 'abandon';

/**
 * Charges a stopped run's spend; at shutdown also stores its last output lines and releases the task
 * (→ ready, attempt given back). A failed charge is logged; a failed release throws.
 */
export async function endStoppedRun(
  deps: { queue: WriteQueue; logger: Logger; notifier: Notifier },
  claim: Claim,
  outcome: RunOutcome,
  reason: StopReason,
  now: () => number,
): Promise<void> {
  if (reason !== 'shutdown') {
    const announced = await deps.queue
      .run((trx) => chargeUnappliedRun(trx, claim, outcome, now()), ENGINE_PROGRESS)
      .catch((error: unknown) => {
        deps.logger.warn({ err: coerceError(error), taskId: claim.taskId }, 'could not charge a stopped run');
        return false;
      });
    // Its `task.usage` event: the session's event streams read it now, not at their next wake-up.
    if (announced) deps.notifier.publish(sessionChannel(claim.sessionId));
    return;
  }
  // The next run of the task writes under this attempt again (the release gives it back): a line
  // left unfinished ends here instead of being continued by that run's output.
  const lines = [
    ...(outcome.lines ?? []),
    ...(outcome.openStreams ?? []).map((stream) => ({ stream, line: '' })),
  ];
  const { released, announced } = await deps.queue.run(async (trx) => {
    if (lines.length > 0) await appendTaskOutput(trx, claim, lines, now());
    const announced = await chargeUnappliedRun(trx, claim, outcome, now());
    return { released: await releaseTask(trx, claim, now()), announced };
  }, ENGINE_PROGRESS);
  // Other replicas claim it at once, not at their next poll.
  if (released) deps.notifier.publish(READY_CHANNEL);
  if (released || announced) deps.notifier.publish(sessionChannel(claim.sessionId));
}

/**
 * At stop, for runs that ignored their abort past the wait: their tasks are given back (→ ready) so
 * that other replicas, or this one after a restart, run them; failures are left to the lease reaper.
 */
export async function releaseIgnoredRuns(
  deps: { queue: WriteQueue; logger: Logger; notifier: Notifier },
  claims: readonly Claim[],
  now: () => number,
): Promise<void> {
  deps.logger.warn({ tasks: claims.map((claim) => claim.taskId) }, 'tasks ignored abort; releasing leases');
  await Promise.allSettled(
    claims.map((claim) => deps.queue.run((trx) => releaseTask(trx, claim, now()), ENGINE_PROGRESS)),
  );
  deps.notifier.publish(READY_CHANNEL);
}
