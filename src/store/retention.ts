// The retention job: deletes finished sessions' old rows in bounded batches, and short-TTL rows
// (MCP replay messages) on a faster cadence of their own. Every replica runs it on timers; advisory
// locks make each kind of pass single-flight across the cluster (PostgreSQL).
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { isPostgres, LOCK_KEYS, runIfLockFree } from './advisory-lock.ts';
import { startPeriodicJob } from './periodic-job.ts';
import {
  type AnyDb,
  type AnyRetentionTarget,
  buildRetentionTargets,
  type RetentionBatchResult,
  type RetentionTable,
  type RetentionTarget,
} from './retention-targets.ts';

export interface RetentionPassOptions {
  /** Rows per delete statement (one transaction each). */
  batchSize: number;
  /** Epoch ms the TTLs are measured from; fixed for the whole pass so it always ends. */
  now?: number;
  /** Called after every batch that deleted rows (metrics). */
  onDeleted?: (table: RetentionTable, count: number) => void;
  /** Checked between batches: true stops the pass (shutdown). */
  shouldStop?: () => boolean;
  /** Advisory lock each batch takes (single-flight across replicas); `LOCK_KEYS.retention` by default. */
  lockKey?: number;
  /**
   * Called after every batch that deleted whole sessions (`retention.sessionsDays`), with their ids:
   * the composition root wakes each one's readers (MCP resource subscriptions, event streams), on
   * every replica, as DELETE /v1/sessions/:id does, so they find it gone. Also after a batch that
   * failed, with the sessions it deleted before the failure (SQLite commits each on its own; on
   * PostgreSQL the wake of a session whose deletion was rolled back costs its readers one read).
   */
  onSessionsDeleted?: (sessionIds: readonly string[]) => void;
}

export interface RetentionPassResult {
  /** True when another replica held the retention lock, so this one stopped. */
  skipped: boolean;
  /** Rows deleted by this pass, per table. */
  deleted: Partial<Record<RetentionTable, number>>;
}

/**
 * Runs every target until it has nothing left. Each batch is one short transaction that first takes
 * the retention advisory lock (`runIfLockFree`): when another replica holds it, this pass stops and
 * leaves the work to that replica, so two replicas never delete at the same moment and every row is
 * deleted once. No statement deletes more than `batchSize` rows, so locks on hot tables stay short.
 */
export async function runRetentionPass(
  db: AnyDb,
  targets: readonly AnyRetentionTarget[],
  options: RetentionPassOptions,
): Promise<RetentionPassResult> {
  const now = options.now ?? Date.now();
  const deleted: RetentionPassResult['deleted'] = {};
  for (const target of targets) {
    for (;;) {
      if (options.shouldStop?.()) return { skipped: false, deleted };
      const deletedSessions: string[] = [];
      let batch: Awaited<ReturnType<typeof runIfLockFree<RetentionBatchResult>>>;
      try {
        batch = await runIfLockFree(db, options.lockKey ?? LOCK_KEYS.retention, (trx) =>
          target.deleteBatch(trx, now, options.batchSize, deletedSessions),
        );
      } finally {
        // One call per batch (at most its sessions per batch, 50): on PostgreSQL the notifier sends
        // the wake-ups published in one tick in one NOTIFY.
        if (deletedSessions.length > 0) options.onSessionsDeleted?.(deletedSessions);
      }
      if (!batch.ran) return { skipped: true, deleted };
      const counts = typeof batch.value === 'number' ? { [target.table]: batch.value } : batch.value;
      let total = 0;
      for (const [table, n] of Object.entries(counts) as [RetentionTable, number][]) {
        if (n <= 0) continue;
        total += n;
        deleted[table] = (deleted[table] ?? 0) + n;
        options.onDeleted?.(table, n);
      }
      // Only an empty batch means done: a batch is also cut short by the sessions it looked at.
      if (total === 0) break;
      // Let requests and the engine's writes in between batches.
      await yieldToEventLoop();
    }
  }
  return { skipped: false, deleted };
}

export interface RetentionJobOptions {
  db: AnyDb;
  config: Config['retention'];
  logger: Logger;
  onDeleted?: (table: RetentionTable, count: number) => void;
  /** The ids of the whole sessions each batch deleted (RetentionPassOptions.onSessionsDeleted). */
  onSessionsDeleted?: (sessionIds: readonly string[]) => void;
  /**
   * Targets whose TTL is minutes, not days (the MCP replay rows, `mcp.replayRetentionSeconds`):
   * pruned by passes of their own every `intervalSeconds`, single-flight under their own advisory
   * lock (`LOCK_KEYS.frequentRetention`), so a long main pass (a backlog of days of events) never
   * makes them skip or wait, and the hourly cadence of the main pass does not let them pile up.
   */
  frequent?: { targets: readonly RetentionTarget[]; intervalSeconds: number };
  /** Other areas' targets run with the main pass (webhook deliveries: `webhooks.deliveryRetentionDays`). */
  targets?: readonly RetentionTarget[];
}

export interface RetentionJob {
  /** Runs one pass now (tests, `maos` tooling); resolves when it ends. */
  runOnce(): Promise<RetentionPassResult>;
  /** Stops the timer and waits for a running pass to reach its next batch boundary. */
  stop(): Promise<void>;
}

/**
 * Starts the periodic job: the first pass one interval after start (a restarting replica does not
 * add load at boot), then every `intervalSeconds`; the `frequent` targets likewise on their own
 * interval. Failures (database down) are logged and retried at the next interval; the timers never
 * keep the process alive.
 */
export function startRetentionJob(options: RetentionJobOptions): RetentionJob {
  const { db, config, logger } = options;
  const loop = (targets: readonly AnyRetentionTarget[], intervalSeconds: number, lockKey: number) => {
    // The frequent passes delete something every minute on a busy /mcp: debug, not info.
    const logLevel = lockKey === LOCK_KEYS.retention ? 'info' : 'debug';
    return startPeriodicJob<RetentionPassResult>({
      run: (shouldStop) =>
        runRetentionPass(db, targets, {
          batchSize: config.batchSize,
          lockKey,
          shouldStop,
          ...(options.onDeleted ? { onDeleted: options.onDeleted } : {}),
          ...(options.onSessionsDeleted ? { onSessionsDeleted: options.onSessionsDeleted } : {}),
        }),
      intervalMs: intervalSeconds * 1000,
      onResult: (result) => {
        const total = Object.values(result.deleted).reduce((sum, n) => sum + n, 0);
        if (total > 0) logger[logLevel]({ deleted: result.deleted }, 'retention pass deleted old rows');
      },
      onError: (error) => logger.warn({ err: error }, 'retention pass failed; retrying next interval'),
    });
  };
  const loops = [
    loop(
      [...buildRetentionTargets(config, { postgres: isPostgres(db) }), ...(options.targets ?? [])],
      config.intervalSeconds,
      LOCK_KEYS.retention,
    ),
    ...(options.frequent && options.frequent.targets.length > 0
      ? [loop(options.frequent.targets, options.frequent.intervalSeconds, LOCK_KEYS.frequentRetention)]
      : []),
  ];
  return {
    async runOnce() {
      const result: RetentionPassResult = { skipped: false, deleted: {} };
      for (const each of loops) {
        const pass = await each.runOnce();
        result.skipped ||= pass.skipped;
        for (const [table, n] of Object.entries(pass.deleted) as [RetentionTable, number][]) {
          result.deleted[table] = (result.deleted[table] ?? 0) + n;
        }
      }
      return result;
    },
    async stop() {
      await Promise.all(loops.map((each) => each.stop()));
    },
  };
}
