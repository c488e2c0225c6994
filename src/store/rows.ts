// Maps database rows to domain records (numbers from bigint columns, JSON text to objects).
import type {
  SessionRecord,
  SessionStatus,
  Strategy,
  TaskKind,
  TaskRecord,
  TaskStatus,
  Usage,
} from '../domain/types.ts';
import type { SessionsTable, TasksTable } from './schema.ts';

type UsageColumns = Pick<SessionsTable, 'input_tokens' | 'output_tokens' | 'cache_read_tokens' | 'cost_usd'>;

function nullableNumber(value: number | null): number | null {
  return value === null ? null : Number(value);
}

export function toUsage(row: UsageColumns): Usage {
  return {
    inputTokens: Number(row.input_tokens),
    outputTokens: Number(row.output_tokens),
    cacheReadTokens: Number(row.cache_read_tokens),
    costUsd: Number(row.cost_usd),
  };
}

export function toSessionRecord(row: SessionsTable): SessionRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    objective: row.objective,
    strategy: row.strategy as Strategy,
    status: row.status as SessionStatus,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    planVersion: Number(row.plan_version),
    usage: toUsage(row),
    error: row.error,
    result: row.result,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    startedAt: nullableNumber(row.started_at),
    finishedAt: nullableNumber(row.finished_at),
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
    createdAt: Number(row.created_at),
    readyAt: nullableNumber(row.ready_at),
    startedAt: nullableNumber(row.started_at),
    finishedAt: nullableNumber(row.finished_at),
  };
}
