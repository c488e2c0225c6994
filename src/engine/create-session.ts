// Turns a validated submission into the rows of a new session (plan, agents, tasks, dependencies,
// first events) and stores them in one transaction, honouring the Idempotency-Key.
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { NewEvent } from '../domain/events.ts';
import { transitionSession } from '../domain/session-state.ts';
import { transitionTask } from '../domain/task-state.ts';
import type { PlanBody, SessionDetail, SessionSettings, Strategy } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import type { StoredTraceContext } from '../observability/tracing.ts';
import { insertEventRows } from '../store/event-store.ts';
import { newId } from '../store/ids.ts';
import { newSessionRow, newTaskRow, toAgentRecords, toSessionRecord, toTaskRecord } from '../store/rows.ts';
import type { Database, SessionsTable, TasksTable } from '../store/schema.ts';
import { lockTenantSubmissions } from '../store/session-locks.ts';
import { insertSession } from '../store/session-store.ts';
import { NO_SETTINGS } from './session-settings.ts';

export interface NewSessionSpec {
  /** Pre-allocated id (e.g. handed to the planner); a new UUIDv7 when absent. */
  sessionId?: string;
  tenantId: string;
  objective: string;
  strategy: Strategy;
  metadata: Record<string, unknown>;
  plan: PlanBody;
  maxAttempts: number;
  /** Stop in `awaiting_approval` with no task ready until a person approves the plan. */
  awaitApproval?: boolean;
  /** Stored in `session_settings` when any is set (the engine reads the budget at each task finish). */
  settings?: SessionSettings;
  runtimeOf(runner: string | undefined): string;
  /** W3C context of the session's workflow span (tracing on): its tasks continue this trace. */
  traceContext?: StoredTraceContext;
  /**
   * Admission check (tenant quotas) run in the insert's transaction, after the tenant's submissions
   * were serialised, so concurrent submits cannot all pass a count taken before any of them
   * inserted. Throws (e.g. QUOTA_EXCEEDED) to refuse; nothing is written then.
   */
  admit?: (trx: Kysely<Database>) => Promise<void>;
}

/** JSON with object keys sorted, so equal bodies hash equally whatever the key order. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function hashRequest(body: unknown): string {
  return createHash('sha256').update(stableStringify(body)).digest('hex');
}

/** The session an earlier request with this key created; IDEMPOTENCY_KEY_REUSED for another body. */
export async function findIdempotentSession(
  db: Kysely<Database>,
  tenantId: string,
  idempotency: { key: string; hash: string },
): Promise<string | null> {
  const row = await db
    .selectFrom('idempotency_keys')
    .select(['request_hash', 'session_id'])
    .where('tenant_id', '=', tenantId)
    .where('key', '=', idempotency.key)
    .executeTakeFirst();
  if (!row) return null;
  if (row.request_hash !== idempotency.hash) {
    throw new AppError(
      'IDEMPOTENCY_KEY_REUSED',
      'This Idempotency-Key was already used with a different request body',
    );
  }
  return row.session_id;
}

/**
 * Stores the session (or finds the one an earlier request with the same key created).
 * Returns its id and whether it was created now.
 */
export async function storeNewSession(
  trx: Kysely<Database>,
  spec: NewSessionSpec,
  idempotency: { key: string; hash: string } | undefined,
  now: number,
): Promise<{ sessionId: string; created: boolean; readied: number; detail: SessionDetail | null }> {
  // Locked before the idempotency lookup: a replay of a submit that took the last slot finds its
  // session instead of being refused by the quota it counts in.
  if (spec.admit) await lockTenantSubmissions(trx, spec.tenantId);
  if (idempotency) {
    const existing = await findIdempotentSession(trx, spec.tenantId, idempotency);
    if (existing) return { sessionId: existing, created: false, readied: 0, detail: null };
  }
  await spec.admit?.(trx);
  const sessionId = spec.sessionId ?? newId();
  const status = spec.awaitApproval
    ? transitionSession(transitionSession('pending', 'plan'), 'await_approval')
    : transitionSession('pending', 'start');
  const planned = spec.plan.phases.flatMap((phase, phaseIndex) =>
    phase.tasks.map((task) => ({ task, phaseIndex })),
  );
  const idByName = new Map(planned.map(({ task }) => [task.name, newId()]));
  const agents = planned.map(({ task }) => ({
    id: newId(),
    tenant_id: spec.tenantId,
    session_id: sessionId,
    name: task.name,
    role: task.role,
    runtime: spec.runtimeOf(task.runner),
    created_at: now,
  }));
  const owner = { tenantId: spec.tenantId, sessionId, maxAttempts: spec.maxAttempts, now };
  const tasks: TasksTable[] = planned.map(({ task, phaseIndex }, position) => {
    const ready = !spec.awaitApproval && task.dependsOn.length === 0;
    return newTaskRow(owner, {
      id: idByName.get(task.name)!,
      kind: 'agent',
      name: task.name,
      role: task.role,
      agent_id: agents[position]!.id,
      instructions: task.instructions,
      runner: task.runner ?? null,
      phase: phaseIndex,
      position,
      status: ready ? transitionTask('pending', 'dependencies_met') : 'pending',
    });
  });
  const dependencies = planned.flatMap(({ task }) =>
    task.dependsOn.map((dep) => ({
      task_id: idByName.get(task.name)!,
      depends_on_task_id: idByName.get(dep)!,
      session_id: sessionId,
      tenant_id: spec.tenantId,
    })),
  );
  const sessionRow: SessionsTable = {
    ...newSessionRow(
      {
        id: sessionId,
        tenant_id: spec.tenantId,
        objective: spec.objective,
        strategy: spec.strategy,
        status,
        metadata: JSON.stringify(spec.metadata),
        // A session waiting for approval starts when it is approved (approvePlan sets started_at).
        started_at: spec.awaitApproval ? null : now,
      },
      now,
    ),
    ...(spec.traceContext
      ? { trace_parent: spec.traceContext.traceparent, trace_state: spec.traceContext.tracestate ?? null }
      : {}),
  };
  const events: NewEvent[] = [
    {
      type: 'session.created',
      data: {
        objective: spec.objective,
        strategy: spec.strategy,
        tasks: planned.map(({ task }) => ({
          id: idByName.get(task.name)!,
          name: task.name,
          role: task.role,
          dependsOn: task.dependsOn,
        })),
      },
    },
    ...(spec.awaitApproval
      ? [
          { type: 'session.status', data: { from: 'pending', to: 'planning' } } as const,
          { type: 'session.status', data: { from: 'planning', to: status } } as const,
        ]
      : [{ type: 'session.status', data: { from: 'pending', to: status } } as const]),
  ];
  for (const task of tasks) {
    if (task.status !== 'ready') continue;
    events.push({
      type: 'task.status',
      data: { taskId: task.id, name: task.name, from: 'pending', to: 'ready', attempt: 0 },
    });
  }
  // A new session's log starts at seq 1: the counter is written with the row, no UPDATE needed.
  sessionRow.last_seq = events.length;
  await insertSession(trx, { session: sessionRow, plan: spec.plan, agents, tasks, dependencies });
  await insertEventRows(trx, { id: sessionId, tenantId: spec.tenantId }, 1, events, now);
  const settings = spec.settings;
  if (settings && (settings.approval !== 'none' || settings.budget !== null || settings.threadId !== null)) {
    await trx
      .insertInto('session_settings')
      .values({
        session_id: sessionId,
        tenant_id: spec.tenantId,
        approval: settings.approval,
        budget: settings.budget === null ? null : JSON.stringify(settings.budget),
        thread_id: settings.threadId,
        created_at: now,
      })
      .execute();
  }
  if (idempotency) {
    await trx
      .insertInto('idempotency_keys')
      .values({
        tenant_id: spec.tenantId,
        key: idempotency.key,
        request_hash: idempotency.hash,
        session_id: sessionId,
        created_at: now,
      })
      .execute();
  }
  // The caller gets the detail from the rows just written, sparing a read of what it wrote.
  const taskRecords = tasks.map((task, position) =>
    toTaskRecord(task, [...planned[position]!.task.dependsOn]),
  );
  const detail: SessionDetail = {
    ...toSessionRecord(sessionRow),
    plan: spec.plan,
    tasks: taskRecords,
    agents: toAgentRecords(agents, taskRecords),
    settings: settings ?? NO_SETTINGS,
  };
  return {
    sessionId,
    created: true,
    readied: tasks.filter((task) => task.status === 'ready').length,
    detail,
  };
}
