// What the engine's task operations exchange: the proof of a claim, a run's outcome with its
// trailing output, and what a finish changed (engine/task-ops.ts, task-output.ts, lease-expiry.ts).
import type { ModelUsage, SessionStatus, Usage } from '../domain/types.ts';
import type { BudgetStopScope } from './engine-observer.ts';

/** Proof of a claim: only the holder of (owner, attempt) may change the task. */
export interface Claim {
  taskId: string;
  sessionId: string;
  tenantId: string;
  name: string;
  owner: string;
  attempt: number;
}

/** Output lines of a run not stored yet: the finish appends them, before the result, in its own transaction. */
export interface TrailingOutput {
  lines?: ReadonlyArray<{ stream: 'stdout' | 'stderr' | 'text'; line: string; partial?: true }>;
  /** The spend the run last recorded on its task while it ran (engine/run-spend.ts), if any. */
  spendOnRecord?: Usage;
  /** `spendOnRecord` per provider and model, when the run recorded it so. */
  modelsOnRecord?: ModelUsage[];
  /** What the run spent per provider and model (LLM runtime): stored on the task by its finish. */
  modelUsage?: ModelUsage[];
  /**
   * A stopped run only: the streams whose output ends in an unfinished line (its last piece
   * partial). A release at shutdown ends those lines, as the next run writes under the same attempt.
   */
  openStreams?: ReadonlyArray<'stdout' | 'stderr' | 'text'>;
}

export type RunOutcome = (
  | {
      ok: true;
      output: string;
      usage: Usage;
      /** Messages the turn received (store/message-store.ts): marked delivered with the finish. */
      deliveredMessageIds?: string[];
    }
  | {
      ok: false;
      error: string;
      usage: Usage;
      /** The AppError code the run failed with (e.g. BUDGET_EXCEEDED from the runtime's budget guard). */
      code?: string;
    }
) &
  TrailingOutput;

export interface FinishEffects {
  /** False when the lease was no longer held: nothing was written. */
  applied: boolean;
  /** Tasks that became ready (wake idle slots). */
  readied: number;
  /** Set when the session reached a terminal status in this transaction. */
  sessionFinished: SessionStatus | null;
  /** Set when the session failed in this transaction for its budget or its tenant's quota (metrics). */
  budgetStop?: BudgetStopScope;
}

/** A finish or expiry whose claim no longer held: nothing was written. */
export const NOT_APPLIED: FinishEffects = { applied: false, readied: 0, sessionFinished: null };

/** The claim a task's run holds: `owner` is the worker that claimed it, at the task's attempt. */
export function claimOf(
  task: { taskId: string; sessionId: string; tenantId: string; name: string; attempt: number },
  owner: string,
): Claim {
  return {
    taskId: task.taskId,
    sessionId: task.sessionId,
    tenantId: task.tenantId,
    name: task.name,
    owner,
    attempt: task.attempt,
  };
}
