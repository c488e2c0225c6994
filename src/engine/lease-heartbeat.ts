// The scheduler's heartbeat: one write renews the leases of all of this process's running tasks,
// and tells which claims no longer hold (the lease expired in a stall and another attempt took over).
// On PostgreSQL it runs on the pool, not through the write queue (store/postgres-lease-renewal.ts).
import type { Kysely } from 'kysely';
import { coerceError } from '../errors/app-error.ts';
import type { Logger } from '../observability/logger.ts';
import type { DialectName } from '../store/db.ts';
import { renewLeasesPostgres } from '../store/postgres-lease-renewal.ts';
import type { Database } from '../store/schema.ts';
import { extendLeases } from '../store/task-store.ts';
import { ENGINE_PROGRESS, type WriteQueue } from '../store/write-queue.ts';
import { isStoreUnavailable, noteOutageEnd, noteOutageFailure, type StoreOutage } from './store-outage.ts';
import type { Claim } from './task-outcome.ts';

/**
 * Extends the leases of `claims` by `leaseMs`; resolves to the claims whose lease is gone, or to null
 * when the heartbeat failed (never rejects: it is logged and the next one tries again, within the
 * lease's margin). `outage`, kept by the scheduler across beats: while the database cannot be reached
 * it is logged once when it starts and once when a heartbeat works again, not at every beat.
 * Heartbeats run only while this process runs tasks: the second line waits for one.
 */
export async function renewLeases(
  deps: {
    queue: WriteQueue;
    logger: Logger;
    workerId: string;
    leaseMs: number;
    outage: StoreOutage;
    /** PostgreSQL: the renewal runs on `db`'s pool, beside the write queue. */
    db?: Kysely<Database>;
    dialect?: DialectName;
  },
  claims: readonly Claim[],
  now: number,
): Promise<Set<Claim> | null> {
  const taskIds = claims.map((claim) => claim.taskId);
  try {
    const held =
      deps.dialect === 'postgres' && deps.db
        ? await renewLeasesPostgres(deps.db, deps.workerId, taskIds, now, deps.leaseMs)
        : await deps.queue.run(
            (trx) => extendLeases(trx, deps.workerId, taskIds, now, deps.leaseMs),
            ENGINE_PROGRESS,
          );
    noteOutageEnd(
      deps.outage,
      deps.logger,
      'failedHeartbeats',
      'heartbeats work again: the database can be reached',
      now,
    );
    return new Set(claims.filter((claim) => held.get(claim.taskId) !== claim.attempt));
  } catch (error) {
    const err = coerceError(error);
    if (!isStoreUnavailable(error)) {
      deps.logger.warn({ err }, 'heartbeat failed');
      return null;
    }
    noteOutageFailure(
      deps.outage,
      deps.logger,
      { err },
      'heartbeat failed: the database cannot be reached; running tasks may lose their leases, logged again when heartbeats work',
      now,
    );
    return null;
  }
}
