// Maps database rows to domain records (numbers from bigint columns, JSON text to objects).
import {
  type AgentRecord,
  addUsage,
  type PlanBody,
  type SessionRecord,
  type SessionStatus,
  type Strategy,
  type TaskKind,
  type TaskRecord,
  type TaskStatus,
  type Usage,
  ZERO_USAGE,
} from '../domain/types.ts';
import type { Logger } from '../observability/logger.ts';
import type { SessionsTable, TasksTable } from './schema.ts';
import { parseModelUsage } from './task-model-usage.ts';

type UsageColumns = Pick<SessionsTable, 'input_tokens' | 'output_tokens' | 'cache_read_tokens' | 'cost_usd'>;

function nullableNumber(value: number | null): number | null {
  return value === null ? null : Number(value);
}

/**
 * A stored row's usage. The database adds each charge to the cost as a float (0.1 + 0.2 is
 * 0.30000000000000004): it is read back to the millionth, as addUsage keeps it.
 */
export function toUsage(row: UsageColumns): Usage {
  return {
    inputTokens: Number(row.input_tokens),
    outputTokens: Number(row.output_tokens),
    cacheReadTokens: Number(row.cache_read_tokens),
    costUsd: Math.round(Number(row.cost_usd) * 1e6) / 1e6,
  };
}

/**
 * Tells the operator of a session's stored JSON that cannot be read (`column`: its table and
 * column). Each engine has its own, on its own logger: passed to every reader, so with two engines in
 * one process (tests, `maos mcp` beside a server) a warning goes to the engine that read the row.
 */
export type DamagedJsonReport = (sessionId: string, column: string) => void;

/** `<column> <session id>` already warned of, per report. Bounded. */
const MAX_WARNED_DAMAGED_JSON = 10_000;

/** A report warning on `logger`, once per session and column (the same row is read again and again). */
export function createDamagedJsonReport(logger: Logger): DamagedJsonReport {
  const warned = new Set<string>();
  return (sessionId, column) => {
    const key = `${column} ${sessionId}`;
    if (warned.has(key)) return;
    if (warned.size >= MAX_WARNED_DAMAGED_JSON) warned.clear();
    warned.add(key);
    logger.warn(
      { sessionId, column },
      "a session's stored JSON cannot be read (a hand edit gone wrong?); it is read as absent",
    );
  };
}

/**
 * For readers whose damage is told elsewhere: the deadline sweep, which reads every budget with a
 * deadline every second, and the reads of a session's budget and latest plan in its finishes,
 * approvals and steering; the session's document tells of it.
 */
export const IGNORE_DAMAGED_JSON: DamagedJsonReport = () => {};

/**
 * A JSON object stored for a session (`column`: its table and column), or undefined when it cannot
 * be read: not JSON, or not an object (a hand edit of the row gone wrong). The caller reads it as
 * absent, so a damaged value never makes the session unreadable (a 500 on its document, its list);
 * `report` is told of it.
 */
export function parseSessionJson(
  text: string,
  sessionId: string,
  column: string,
  report: DamagedJsonReport,
): object | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value;
  } catch {
    // Reported below.
  }
  report(sessionId, column);
  return undefined;
}

/**
 * A plan version's stored body (`plans.body`), or undefined when it cannot be read: not JSON, or
 * not a plan as the API shows one (phases of named tasks, each with its role, instructions and
 * dependencies as text). Such a plan is read as absent, as parseSessionJson's values are (a hand
 * edit of the row gone wrong); `report` is told of it. Checked by hand, not with a schema: the
 * session's document reads its latest plan at every read of a running session.
 */
export function parseStoredPlan(
  text: string,
  sessionId: string,
  report: DamagedJsonReport,
): PlanBody | undefined {
  const value = parseSessionJson(text, sessionId, 'plans.body', report);
  if (value === undefined) return undefined;
  const phases = (value as { phases?: unknown }).phases;
  if (Array.isArray(phases) && phases.every(isStoredPhase)) return value as PlanBody;
  report(sessionId, 'plans.body');
  return undefined;
}

function isStoredPhase(phase: unknown): boolean {
  if (typeof phase !== 'object' || phase === null) return false;
  const { name, tasks } = phase as { name?: unknown; tasks?: unknown };
  return typeof name === 'string' && Array.isArray(tasks) && tasks.every(isStoredTask);
}

function isStoredTask(task: unknown): boolean {
  if (typeof task !== 'object' || task === null) return false;
  const { name, role, instructions, dependsOn, runner, agent } = task as Record<string, unknown>;
  return (
    typeof name === 'string' &&
    typeof role === 'string' &&
    typeof instructions === 'string' &&
    Array.isArray(dependsOn) &&
    dependsOn.every((dependency) => typeof dependency === 'string') &&
    (runner === undefined || typeof runner === 'string') &&
    (agent === undefined || typeof agent === 'string')
  );
}

/** A session row as a record; `report` is told of damaged metadata (read as none). */
export function toSessionRecord(row: SessionsTable, report: DamagedJsonReport): SessionRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    objective: row.objective,
    strategy: row.strategy as Strategy,
    status: row.status as SessionStatus,
    metadata: (parseSessionJson(row.metadata, row.id, 'sessions.metadata', report) ?? {}) as Record<
      string,
      unknown
    >,
    planVersion: Number(row.plan_version),
    usage: toUsage(row),
    error: row.error,
    result: row.result,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    startedAt: nullableNumber(row.started_at),
    finishedAt: nullableNumber(row.finished_at),
    retryOf: row.retry_of ?? null,
  };
}

export function toTaskRecord(row: TasksTable, dependsOn: string[]): TaskRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    sessionId: row.session_id,
    kind: row.kind as TaskKind,
    name: row.name,
    role: row.role,
    agentId: row.agent_id,
    instructions: row.instructions,
    runner: row.runner,
    phase: Number(row.phase),
    status: row.status as TaskStatus,
    dependsOn,
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    leaseOwner: row.lease_owner,
    leaseExpiresAt: nullableNumber(row.lease_expires_at),
    result: row.result,
    error: row.error,
    usage: toUsage(row),
    ...(row.model_usage ? { models: parseModelUsage(row.model_usage) } : {}),
    createdAt: Number(row.created_at),
    readyAt: nullableNumber(row.ready_at),
    startedAt: nullableNumber(row.started_at),
    finishedAt: nullableNumber(row.finished_at),
  };
}

/**
 * The agents with the usage of their tasks summed, in the order of each one's first task (plan
 * order); an agent without a task (none is created so) comes last.
 */
export function toAgentRecords(
  agents: ReadonlyArray<{ id: string; name: string; role: string }>,
  tasks: ReadonlyArray<Pick<TaskRecord, 'agentId' | 'usage'>>,
): AgentRecord[] {
  // Insertion order: agents in the order of their first task.
  const usageOf = new Map<string, Usage>();
  for (const task of tasks) {
    if (task.agentId === null) continue;
    const usage = usageOf.get(task.agentId) ?? { ...ZERO_USAGE };
    addUsage(usage, task.usage);
    usageOf.set(task.agentId, usage);
  }
  for (const agent of agents) if (!usageOf.has(agent.id)) usageOf.set(agent.id, { ...ZERO_USAGE });
  const byId = new Map(agents.map((agent) => [agent.id, agent]));
  return [...usageOf].flatMap(([id, usage]) => {
    const agent = byId.get(id);
    return agent ? [{ id, name: agent.name, role: agent.role, usage }] : [];
  });
}

/** The columns a caller decides when it adds a session; everything else starts at its initial value. */
export type NewSessionFields = Pick<
  SessionsTable,
  'id' | 'tenant_id' | 'objective' | 'strategy' | 'status' | 'metadata' | 'started_at'
>;

/** A session row as first inserted: plan version 1, no usage, events, result or error yet. */
export function newSessionRow(fields: NewSessionFields, now: number): SessionsTable {
  return {
    ...fields,
    plan_version: 1,
    input_tokens: 0,
    output_tokens: 0,
    cache_read_tokens: 0,
    cost_usd: 0,
    error: null,
    result: null,
    last_seq: 0,
    created_at: now,
    updated_at: now,
    finished_at: null,
  };
}

/** The columns a caller decides when it adds a task; everything else starts at its initial value. */
export type NewTaskFields = Pick<
  TasksTable,
  'id' | 'kind' | 'name' | 'role' | 'agent_id' | 'instructions' | 'runner' | 'phase' | 'position' | 'status'
>;

/** A task row as first inserted: no attempts, lease, result or usage yet; ready_at set when ready. */
export function newTaskRow(
  owner: { tenantId: string; sessionId: string; maxAttempts: number; now: number },
  fields: NewTaskFields,
): TasksTable {
  return {
    ...fields,
    tenant_id: owner.tenantId,
    session_id: owner.sessionId,
    attempts: 0,
    max_attempts: owner.maxAttempts,
    lease_owner: null,
    lease_expires_at: null,
    result: null,
    error: null,
    input_tokens: 0,
    output_tokens: 0,
    cache_read_tokens: 0,
    cost_usd: 0,
    created_at: owner.now,
    updated_at: owner.now,
    ready_at: fields.status === 'ready' ? owner.now : null,
    started_at: null,
    finished_at: null,
  };
}
