// The shape of the engine as the composition root (src/app.ts) sees it: what it needs and what it offers.
import type { Kysely } from 'kysely';
import type { RoleDefinition } from '../agents/roles/role.ts';
import type { RuntimeRegistry } from '../agents/runtimes/runtime.ts';
import type { Config } from '../config/schema.ts';
import type { Budget, BudgetCheckResult } from '../domain/budget.ts';
import type { PlanBody, Usage } from '../domain/types.ts';
import type { GenAiTracer } from '../observability/genai-spans.ts';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../store/schema.ts';
import type { EngineObserver, QueueCounts } from './engine-observer.ts';
import type { SessionService } from './session-service.ts';
import type { ContinueSession } from './task-ops.ts';

/**
 * The orchestrator that plans sessions the caller did not plan (strategy `adaptive`, or no
 * `agents`). Such a session is stored at once in status `planning` with one `plan` task; the
 * orchestrator runtime runs that task through `planInitial`, and its result becomes plan version 1
 * (initial-plan.ts). Without a planner such sessions are rejected at submit time.
 */
export interface Planner {
  /**
   * The first plan for the objective (one phase when adaptive), marked with the orchestrator's
   * origin, and the usage of every call it took (repairs included). Throws AppError (INVALID_PLAN
   * when the plan stays invalid after the repairs).
   */
  planInitial(input: {
    tenantId: string;
    sessionId: string;
    objective: string;
    /** Adaptive sessions get one phase now and the rest at phase gates. */
    adaptive: boolean;
    /** Summary of earlier sessions in the same thread (`thread_id`), when there are any. */
    threadSummary?: string;
    /** Steering messages sent while the session was planning. */
    userMessages?: readonly string[];
    signal?: AbortSignal;
    /** Told what the calls made so far have spent, after each round (RuntimeContext.reportSpend). */
    onSpend?(usage: Usage): void;
    /**
     * The session's budget overrun with the rounds' usage added, or null; asked before a repair
     * round, which is not made once the budget is crossed (BUDGET_EXCEEDED) or the tenant's daily
     * token quota is used up (QUOTA_EXCEEDED).
     */
    checkBudget?(usage: Usage): BudgetCheckResult;
  }): Promise<{ plan: PlanBody; usage: Usage; rounds: number }>;
}

/** A tenant's defaults for sessions that do not set them (config `llm.approval`, `llm.budgets`). */
export interface SessionDefaults {
  approval: 'required' | 'none';
  budget?: Budget;
}

export interface EngineDeps {
  config: Pick<Config, 'workers' | 'tasks' | 'runners'>;
  db: Kysely<Database>;
  logger: Logger;
  runtimes: RuntimeRegistry;
  observer?: EngineObserver;
  planner?: Planner;
  /** A tenant's custom role by name (roles/role-service.ts findRole); built-in roles need no lookup. */
  findRole?: (tenantId: string, name: string) => Promise<RoleDefinition | undefined>;
  /** Tenant defaults for approval and budget; none = no approval, no budget. */
  sessionDefaults?: (tenantId: string) => SessionDefaults;
  /** Continues orchestrator-planned sessions when all their tasks succeeded (see task-ops.ts). */
  continueSession?: ContinueSession;
  /** Identifies this process's leases; defaults to `<hostname>:<pid>:<random>`. */
  workerId?: string;
  /**
   * Session traces (observability/session-trace.ts): a workflow span per new session, stored with
   * it, and an agent span per task attempt in that trace. Absent when tracing is off: no span work.
   */
  genAi?: GenAiTracer;
  /**
   * Admission check of a new session (tenant quotas), run inside the transaction that inserts it,
   * with the tenant's submissions serialised; throws an AppError to refuse. None = no check.
   */
  admitSession?: (trx: Kysely<Database>, tenantId: string) => Promise<void>;
  /**
   * Run after a session was deleted through the service (DELETE /v1/sessions/:id), before the call
   * returns: removes what of it lives outside the database on this replica (its command workspace).
   * A rejection is logged as a warning; the deletion stands and the call still succeeds.
   */
  onSessionDeleted?: (sessionId: string) => Promise<void>;
  /**
   * Run before a retry of session `fromId` is stored as `toId`: copies what of the original lives
   * outside the database on this replica (its command workspace) and returns how to undo that when
   * the retry is not stored (refused, or the replay of an Idempotency-Key).
   */
  onSessionRetry?: (fromId: string, toId: string) => Promise<() => Promise<void>>;
}

export interface StopOptions {
  /** How long running tasks may finish before they are aborted and their leases released. */
  graceMs: number;
}

export interface Engine {
  service: SessionService;
  /**
   * Starts the worker slots, the reaper and the heartbeats (none with `workers.concurrency = 0`), and
   * the budget deadline sweep (every replica; one sweeps at a time).
   */
  start(): void;
  /** Stops claiming, waits up to `graceMs` for running tasks, then aborts them and releases their leases. */
  stop(options: StopOptions): Promise<void>;
  /** Task and session counts for gauges (one cheap query). */
  getQueueCounts(): Promise<QueueCounts>;
  /** Unix ms of the worker loop's last tick (readiness `worker` check); undefined before start. */
  lastHeartbeatAt?(): number | undefined;
}
