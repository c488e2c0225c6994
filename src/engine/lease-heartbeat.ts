// The scheduler's heartbeat: one write renews the leases of all of this process's running tasks,
// and tells which claims no longer hold (the lease expired in a stall and another attempt took over).
import { coerceError } from '../errors/app-error.ts';
import type { Logger } from '../observability/logger.ts';
import { extendLeases } from '../store/task-store.ts';
import { ENGINE_PROGRESS, type WriteQueue } from '../store/write-queue.ts';
import type { Claim } from './task-outcome.ts';

/**
 * Extends the leases of `claims` by `leaseMs`; resolves to the claims whose lease is gone, or to null
 * when the heartbeat failed (never rejects: it is logged and the next one tries again, within the
 * lease's margin).
 */
export async function renewLeases(
  deps: { queue: WriteQueue; logger: Logger; workerId: string; leaseMs: number },
  claims: readonly Claim[],
  now: number,
): Promise<Set<Claim> | null> {
  try {
    const held = await deps.queue.run(
      (trx) =>
        extendLeases(
          trx,
          deps.workerId,
          claims.map((claim) => claim.taskId),
          now,
          deps.leaseMs,
        ),
      ENGINE_PROGRESS,
    );
    return new Set(claims.filter((claim) => held.get(claim.taskId) !== claim.attempt));
  } catch (error) {
    deps.logger.warn({ err: coerceError(error) }, 'heartbeat failed');
    return null;
  }
}
