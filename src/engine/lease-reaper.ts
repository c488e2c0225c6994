// One pass of the lease reaper: tasks whose lease ran out are retried (attempt + 1) or failed for
// good, in one write operation; in cluster mode one replica reaps at a time. Run by the scheduler
// every third of a lease.

import { coerceError } from '../errors/app-error.ts';
import type { Logger } from '../observability/logger.ts';
import { LOCK_KEYS, tryTransactionLock } from '../store/advisory-lock.ts';
import { lockSessions } from '../store/session-locks.ts';
import { findExpiredLeases } from '../store/task-store.ts';
import { ENGINE_PROGRESS, type WriteQueue } from '../store/write-queue.ts';
import { type EngineObserver, notifyObserver } from './engine-observer.ts';
import { expireTaskLease } from './lease-expiry.ts';
import { type Notifier, READY_CHANNEL, sessionChannel } from './notifier.ts';

/** Expired leases handled per reaper pass (the rest wait for the next pass). */
const REAP_BATCH = 200;

export interface ReaperDeps {
  queue: WriteQueue;
  notifier: Notifier;
  logger: Logger;
  observer?: EngineObserver;
  now: () => number;
  /** Called when retried tasks became ready (wake idle slots). */
  onReadied(): void;
  /**
   * Called for a session a pass ended (the lost run's spend put it over its budget): its open tasks
   * were cancelled, so this process's runs of them stop now, not at their next lease renewal.
   */
  onSessionEnded?(sessionId: string): void;
}

/** Runs one pass; never throws (a failed pass is logged and the next one tries again). */
export async function reapExpiredLeases(deps: ReaperDeps): Promise<void> {
  const { now } = deps;
  try {
    const results = await deps.queue.run(async (trx) => {
      // Cluster mode: one replica reaps at a time (the others skip this pass).
      if (!(await tryTransactionLock(trx, LOCK_KEYS.leaseReaper))) return [];
      const expired = await findExpiredLeases(trx, now(), REAP_BATCH);
      // Their sessions locked up front, in id order as every transaction that locks several does:
      // locked one by one in expiry order, they could deadlock with another replica's finish.
      await lockSessions(
        trx,
        expired.map((row) => row.session_id),
      );
      const out = [];
      for (const row of expired) out.push({ row, effects: await expireTaskLease(trx, row, now()) });
      return out;
    }, ENGINE_PROGRESS);
    let readied = 0;
    for (const { row, effects } of results) {
      if (!effects.applied) continue;
      notifyObserver(deps.observer, 'leaseExpired');
      if (effects.retried) notifyObserver(deps.observer, 'taskRetried');
      if (effects.sessionFinished) {
        deps.onSessionEnded?.(row.session_id);
        notifyObserver(deps.observer, 'sessionFinished', effects.sessionFinished);
      }
      // The lost run's recorded spend, charged now, can put its session over its budget.
      if (effects.budgetStop) notifyObserver(deps.observer, 'budgetExceeded', effects.budgetStop);
      readied += effects.readied;
      deps.notifier.publish(sessionChannel(row.session_id));
      deps.logger.warn({ taskId: row.id, retried: effects.retried }, 'task lease expired');
    }
    if (readied > 0) {
      deps.onReadied();
      // Announced to the other replicas too: this one's slots may all be busy (its reaper runs all
      // the same), and an idle replica elsewhere would otherwise wait for its next poll.
      deps.notifier.publish(READY_CHANNEL);
    }
  } catch (error) {
    deps.logger.warn({ err: coerceError(error) }, 'reaper pass failed');
  }
}
