// Feeds the engine's metrics: an EngineObserver that records task and session events, and the
// scrape-time queue-depth / sessions-by-status gauges read from Engine.getQueueCounts().
import type { TaskStatus } from '../domain/types.ts';
import type { EngineObserver, QueueCounts } from '../engine/engine-observer.ts';
import type { Metrics, TaskOutcome } from './metrics.ts';

export interface EngineMetricsOptions {
  /** Task slots of this process (`workers.concurrency`), the denominator of slot utilisation. */
  slots: number;
}

/** Maps the state a task run ended in to the outcome label; any non-final state means "will run again". */
function toOutcome(status: TaskStatus): TaskOutcome {
  if (status === 'succeeded' || status === 'failed' || status === 'cancelled') return status;
  return 'retried';
}

/**
 * An EngineObserver that records into `metrics`. Busy slots are counted from claims and finishes
 * in this process, clamped to [0, slots] so a missed hook cannot drift the gauge out of range.
 */
export function createEngineMetricsObserver(metrics: Metrics, options: EngineMetricsOptions): EngineObserver {
  const slots = Math.max(0, options.slots);
  let busy = 0;
  const updateSlots = (delta: number) => {
    busy = Math.min(slots, Math.max(0, busy + delta));
    metrics.setWorkerSlots(busy, slots);
  };
  metrics.setWorkerSlots(0, slots);
  return {
    taskClaimed(info) {
      metrics.recordTaskQueueWait(info, info.queueWaitMs / 1000);
      updateSlots(1);
    },
    taskFinished(info) {
      metrics.recordTaskFinished(info, toOutcome(info.status), info.durationMs / 1000);
      updateSlots(-1);
    },
    leaseExpired() {
      metrics.recordLeaseExpired();
    },
    taskRetried() {
      metrics.recordTaskRetry();
    },
    sessionStarted() {
      metrics.recordSessionStarted();
    },
    sessionFinished(status) {
      if (status === 'completed' || status === 'failed' || status === 'cancelled') {
        metrics.recordSessionFinished(status);
      }
    },
    budgetExceeded(scope) {
      metrics.recordBudgetRejection(scope);
    },
    outputBatchFallback() {
      metrics.recordOutputBatchFallback();
    },
    outputFlushFailed() {
      metrics.recordOutputFlushFailure();
    },
  };
}

/**
 * Makes the queue-depth and sessions-by-status gauges read `getQueueCounts()` at scrape time.
 * One query serves both gauges of a scrape: the result is reused for `reuseMs`.
 */
export function connectQueueCounts(
  metrics: Metrics,
  getQueueCounts: () => Promise<QueueCounts>,
  reuseMs = 1000,
): void {
  let cached: { at: number; value: Promise<QueueCounts> } | undefined;
  const read = (): Promise<QueueCounts> => {
    const now = Date.now();
    if (cached === undefined || now - cached.at > reuseMs) {
      const value = getQueueCounts();
      cached = { at: now, value };
      // A failed query must not be reused by the next scrape.
      value.catch(() => {
        if (cached?.value === value) cached = undefined;
      });
    }
    return cached.value;
  };
  metrics.setSources({
    queueCounts: async () => (await read()).tasks,
    sessionCounts: async () => (await read()).sessions,
  });
}
