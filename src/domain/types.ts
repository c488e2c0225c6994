// Domain vocabulary shared by the engine, the store and every interface (REST, CLI, MCP).
// Pure types: no I/O here.
import type { Budget } from './budget.ts';

export const SESSION_STATUSES = [
  'pending',
  'planning',
  'awaiting_approval',
  'running',
  'paused',
  'completed',
  'failed',
  'cancelled',
] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

export const TASK_STATUSES = [
  'pending',
  'ready',
  'leased',
  'running',
  'succeeded',
  'failed',
  'cancelled',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const STRATEGIES = ['parallel', 'sequential', 'pipeline', 'adaptive'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const TASK_KINDS = ['plan', 'agent', 'synthesize'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

/** Token and cost usage, summed per task, agent and session. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  costUsd: number;
}

/** Usage of one provider and model (a task's spend per model that served it). */
export interface ModelUsage extends Usage {
  /** The provider's name in the server config (the `provider` metric label). */
  provider: string;
  /** The model id (the `model` metric label). */
  model: string;
}

export const ZERO_USAGE: Readonly<Usage> = Object.freeze({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  costUsd: 0,
});

/**
 * Adds `more` into `total`, field by field. The cost is kept to the millionth of a dollar costs are
 * priced in, so sums over many calls do not drift with floating-point noise.
 */
export function addUsage(total: Usage, more: Readonly<Usage>): void {
  total.inputTokens += more.inputTokens;
  total.outputTokens += more.outputTokens;
  total.cacheReadTokens += more.cacheReadTokens;
  total.costUsd = Math.round((total.costUsd + more.costUsd) * 1e6) / 1e6;
}

/**
 * Costs are kept to the millionth of a dollar: one cost above another by less than half of one is
 * the rounding of sums taken in another order, not spend.
 */
export const COST_EPSILON = 0.0000005;

/** The figures of `entries` added up (as addUsage adds them). */
export function sumUsage(entries: readonly Readonly<Usage>[]): Usage {
  const sum: Usage = { ...ZERO_USAGE };
  for (const entry of entries) addUsage(sum, entry);
  return sum;
}

/** True when no figure of `part` is more than `whole`'s, the cost within rounding (COST_EPSILON). */
export function isUsageWithin(part: Readonly<Usage>, whole: Readonly<Usage>): boolean {
  return (
    part.inputTokens <= whole.inputTokens &&
    part.outputTokens <= whole.outputTokens &&
    part.cacheReadTokens <= whole.cacheReadTokens &&
    part.costUsd <= whole.costUsd + COST_EPSILON
  );
}

/** True when nothing was spent. */
export function isZeroUsage(usage: Readonly<Usage>): boolean {
  return (
    usage.inputTokens === 0 && usage.outputTokens === 0 && usage.cacheReadTokens === 0 && usage.costUsd === 0
  );
}

/** True when both are the same figures (or both absent). */
export function isSameUsage(a: Readonly<Usage> | undefined, b: Readonly<Usage> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.inputTokens === b.inputTokens &&
    a.outputTokens === b.outputTokens &&
    a.cacheReadTokens === b.cacheReadTokens &&
    a.costUsd === b.costUsd
  );
}

/** The larger of each figure of `a` and `b` (`a` when `b` is absent). */
export function maxUsage(a: Readonly<Usage>, b: Readonly<Usage> | undefined): Usage {
  if (!b) return { ...a };
  return {
    inputTokens: Math.max(a.inputTokens, b.inputTokens),
    outputTokens: Math.max(a.outputTokens, b.outputTokens),
    cacheReadTokens: Math.max(a.cacheReadTokens, b.cacheReadTokens),
    costUsd: Math.max(a.costUsd, b.costUsd),
  };
}

/** `total` less `part`, field by field, never below zero; the cost kept to the millionth as in addUsage. */
export function subtractUsage(total: Readonly<Usage>, part: Readonly<Usage>): Usage {
  return {
    inputTokens: Math.max(0, total.inputTokens - part.inputTokens),
    outputTokens: Math.max(0, total.outputTokens - part.outputTokens),
    cacheReadTokens: Math.max(0, total.cacheReadTokens - part.cacheReadTokens),
    costUsd: Math.max(0, Math.round((total.costUsd - part.costUsd) * 1e6) / 1e6),
  };
}

/** One planned unit of work, as submitted or as produced by the orchestrator. */
export interface PlannedTask {
  /** Unique within the plan; other tasks refer to it in `dependsOn`. */
  name: string;
  role: string;
  instructions: string;
  /** Runner name for the `command` runtime; absent = the role's LLM runtime. */
  runner?: string;
  dependsOn: string[];
}

/** A versioned plan: phases of tasks. Foundation plans have exactly one phase. */
export interface PlanBody {
  phases: Array<{ name: string; tasks: PlannedTask[] }>;
}

export interface SessionRecord {
  id: string;
  tenantId: string;
  objective: string;
  strategy: Strategy;
  status: SessionStatus;
  metadata: Record<string, unknown>;
  planVersion: number;
  usage: Usage;
  error: string | null;
  result: string | null;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** The failed or cancelled session this one retries (POST /v1/sessions/:id/retry); null otherwise. */
  retryOf: string | null;
}

export interface TaskRecord {
  id: string;
  tenantId: string;
  sessionId: string;
  kind: TaskKind;
  name: string;
  role: string;
  agentId: string | null;
  instructions: string;
  runner: string | null;
  phase: number;
  status: TaskStatus;
  dependsOn: string[];
  attempts: number;
  maxAttempts: number;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  result: string | null;
  error: string | null;
  usage: Usage;
  /** `usage` per provider and model that served the task, by name; absent when none did. */
  models?: ModelUsage[];
  createdAt: number;
  readyAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
}

/** An agent of a session: it worked on the tasks whose `agentId` is its id; `usage` sums theirs. */
export interface AgentRecord {
  id: string;
  name: string;
  role: string;
  usage: Usage;
}

/** An entry of a session's append-only, ordered event log. */
export interface SessionEvent {
  sessionId: string;
  seq: number;
  type: string;
  data: Record<string, unknown>;
  createdAt: number;
}

/** Orchestration settings fixed at submission (table `session_settings`); they never change. */
export interface SessionSettings {
  approval: 'required' | 'none';
  /** The effective budget (the session's merged with its tenant's default), or null without one. */
  budget: Budget | null;
  threadId: string | null;
}

/** A session with everything `GET /v1/sessions/:id` shows. */
export interface SessionDetail extends SessionRecord {
  plan: PlanBody | null;
  tasks: TaskRecord[];
  /** In the order of their first task in the plan. */
  agents: AgentRecord[];
  /** Absent where only the row and tasks were read; shown as no approval, budget or thread. */
  settings?: SessionSettings;
}

/**
 * A session as `GET /v1/sessions/:id?tasks=none` shows it: the detail without its tasks, read without
 * their results (store/session-store.ts loadSessionOverviewContents).
 */
export interface SessionOverview extends SessionRecord {
  plan: PlanBody | null;
  /** In the order of their first task in the plan. */
  agents: AgentRecord[];
  settings?: SessionSettings;
  /** The first phase with a pending task (the one waiting for approval while the session does), or null. */
  pendingPhase: number | null;
}
