// Hooks the engine calls as work flows through it; the observability area implements them
// (Prometheus counters and histograms). All optional, all synchronous and cheap.
import type { SessionStatus, TaskStatus } from '../domain/types.ts';

/** Engine callbacks for metrics. Must never throw (the engine ignores exceptions from them). */
export interface EngineObserver {
  /** A task was claimed; `queueWaitMs` = ready → claimed. */
  taskClaimed?(info: { queueWaitMs: number; role: string; runtime: string }): void;
  /** A run of a task ended (success, failure, or cancellation). */
  taskFinished?(info: { status: TaskStatus; durationMs: number; role: string; runtime: string }): void;
  /** The reaper found a task whose lease had expired. */
  leaseExpired?(): void;
  /** A task is going to be run again (after an expired lease). */
  taskRetried?(): void;
  sessionStarted?(): void;
  sessionFinished?(status: SessionStatus): void;
  /**
   * A session was failed for a budget: `session` its own (tokens, cost or deadline), `tenant` its
   * tenant's daily token quota (QUOTA_EXCEEDED). Once per session.
   */
  budgetExceeded?(scope: BudgetStopScope): void;
  /**
   * A write shared by several runs' output flushes failed as a whole (a flush its session's store
   * refused) and its flushes were written again one by one (progress-recorder.ts). Once per write
   * that committed.
   */
  outputBatchFallback?(): void;
  /** A run's output flush could not be stored: its lines are lost (logged `could not store task output`). */
  outputFlushFailed?(): void;
}

/** Whose budget stopped a session: its own, or its tenant's daily token quota. */
export type BudgetStopScope = 'session' | 'tenant';

/** Cheap snapshot for gauges: task counts by queue state and session counts by status. */
export interface QueueCounts {
  tasks: { ready: number; leased: number; running: number };
  sessions: Partial<Record<SessionStatus, number>>;
}

export { notifyObserver } from '../observability/notify-observer.ts';
