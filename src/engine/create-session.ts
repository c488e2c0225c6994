// Turns a validated submission into the rows of a new session (plan, agents, tasks, dependencies,
// first events) and stores them in one transaction, honouring the Idempotency-Key. A session the
// orchestrator plans is stored with its `plan` task instead of a plan.
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { describeMissingRoles, findMissingRoles } from '../agents/roles/role-locks.ts';
import type { Budget } from '../domain/budget.ts';
import { type NewEvent, type SessionCreatedData, taskReadyEvent } from '../domain/events.ts';
import { transitionSession } from '../domain/session-state.ts';
import { transitionTask } from '../domain/task-state.ts';
import type { PlanBody, SessionDetail, SessionSettings, Strategy, TaskRecord } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import type { StoredTraceContext } from '../observability/tracing.ts';
import { insertEventRows } from '../store/event-store.ts';
import { newId } from '../store/ids.ts';
import {
  IGNORE_DAMAGED_JSON,
  newSessionRow,
  newTaskRow,
  toAgentRecords,
  toSessionRecord,
  toTaskRecord,
} from '../store/rows.ts';
import type { Database, SessionsTable, TasksTable } from '../store/schema.ts';
import { lockTenantSubmissions } from '../store/session-locks.ts';
import { insertSession, type PlannedRows } from '../store/session-store.ts';
import { INITIAL_PLAN_TASK_NAME, ORCHESTRATOR_ROLE } from './planner-continuation.ts';
import { NO_SETTINGS } from './session-settings.ts';

export interface NewSessionSpec {
  /** Pre-allocated id (e.g. handed to the planner); a new UUIDv7 when absent. */
  sessionId?: string;
  tenantId: string;
  objective: string;
  strategy: Strategy;
  metadata: Record<string, unknown>;
  /**
   * The plan; null when the orchestrator plans the session: it is stored in status `planning` with
   * one `plan` task, whose result becomes plan version 1 (initial-plan.ts).
   */
  plan: PlanBody | null;
  maxAttempts: number;
  /** Stop in `awaiting_approval` with no task ready until a person approves the (first) plan. */
  awaitApproval?: boolean;
  /** Stored in `session_settings` when any is set (the engine reads the budget at each task finish). */
  settings?: SessionSettings;
  /** The budget the submission gave itself, before the tenant's default was merged in (for a retry). */
  requestedBudget?: Budget;
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

/** A plan's agents, tasks and dependencies for a session, with what its first events say about them. */
export interface PlannedSessionRows extends PlannedRows {
  /** Every planned task, for the `session.created` event. */
  created: SessionCreatedData['tasks'];
  /** The `task.status` events of the tasks made ready. */
  readyEvents: NewEvent[];
  /** Each task's record with its dependencies, in plan order. */
  taskRecords: TaskRecord[];
}

/**
 * Turns a plan's phases into the rows of its agents, tasks and dependencies: one agent per task,
 * tasks without dependencies ready unless the plan waits for approval. Shared by a session stored
 * with its plan and by one whose first plan the orchestrator's `plan` task just produced.
 */
export function buildPlannedRows(spec: {
  tenantId: string;
  sessionId: string;
  plan: PlanBody;
  maxAttempts: number;
  awaitApproval: boolean;
  runtimeOf(runner: string | undefined): string;
  /** Position of the first task (after the tasks the session already has). */
  firstPosition: number;
  now: number;
}): PlannedSessionRows {
  const { sessionId, now } = spec;
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
  const tasks: TasksTable[] = planned.map(({ task, phaseIndex }, index) => {
    const ready = !spec.awaitApproval && task.dependsOn.length === 0;
    return newTaskRow(owner, {
      id: idByName.get(task.name)!,
      kind: 'agent',
      name: task.name,
      role: task.role,
      agent_id: agents[index]!.id,
      instructions: task.instructions,
      runner: task.runner ?? null,
      phase: phaseIndex,
      position: spec.firstPosition + index,
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
  const readyEvents = tasks
    .filter((task) => task.status === 'ready')
    .map((task) => taskReadyEvent(task.id, task.name));
  // In plan order, as the session's detail and its task pages read them back (store/task-graph.ts).
  const indexByName = new Map(planned.map(({ task }, index) => [task.name, index]));
  const inPlanOrder = (names: readonly string[]) =>
    [...names].sort((a, b) => (indexByName.get(a) ?? 0) - (indexByName.get(b) ?? 0));
  const taskRecords = tasks.map((task, index) =>
    toTaskRecord(task, inPlanOrder(planned[index]!.task.dependsOn)),
  );
  return {
    agents,
    tasks,
    dependencies,
    created: planned.map(({ task }) => ({
      id: idByName.get(task.name)!,
      name: task.name,
      role: task.role,
      dependsOn: task.dependsOn,
    })),
    readyEvents,
    taskRecords,
  };
}

/**
 * The one task of a session the orchestrator plans: it runs like any task (lease, retries,
 * cancellation); its result is the first plan (initial-plan.ts applies it).
 */
function buildInitialPlanTask(spec: NewSessionSpec, sessionId: string, now: number): PlannedSessionRows {
  const task = newTaskRow(
    { tenantId: spec.tenantId, sessionId, maxAttempts: spec.maxAttempts, now },
    {
      id: newId(),
      kind: 'plan',
      name: INITIAL_PLAN_TASK_NAME,
      role: ORCHESTRATOR_ROLE,
      agent_id: null,
      instructions: 'Plan the objective.',
      runner: null,
      phase: 0,
      position: 0,
      status: transitionTask('pending', 'dependencies_met'),
    },
  );
  return {
    agents: [],
    tasks: [task],
    dependencies: [],
    created: [{ id: task.id, name: task.name, role: task.role, dependsOn: [] }],
    readyEvents: [taskReadyEvent(task.id, task.name)],
    taskRecords: [toTaskRecord(task, [])],
  };
}

/**
 * INVALID_ROLE (naming the roles and their tasks, and `why` they were looked up) unless every
 * task's role exists for the tenant: built in, or a custom role of the tenant. Locked until the
 * commit on PostgreSQL (role-locks.ts), so a delete of a role racing the write waits for it and is
 * then refused because a session uses the role.
 */
export async function assertTaskRolesExist(
  trx: Kysely<Database>,
  tenantId: string,
  tasks: ReadonlyArray<{ name: string; role: string }>,
  why: string,
): Promise<void> {
  const missing = await findMissingRoles(
    trx,
    tenantId,
    tasks.map((task) => task.role),
  );
  if (missing.length === 0) return;
  throw new AppError('INVALID_ROLE', `Unknown role ${describeMissingRoles(missing, tasks)}: ${why}`, {
    details: {
      roles: missing,
      tasks: tasks.filter((task) => missing.includes(task.role)).map((t) => t.name),
    },
  });
}

/**
 * Stores a session's settings; none when every one is the default (no row is read as defaults).
 * `requestedBudget`: the budget the session gave itself, kept for its retries (null: none, stored
 * as '{}': a NULL there is read as a row of a build older than the column, session-settings.ts).
 */
export async function insertSessionSettings(
  trx: Kysely<Database>,
  session: { id: string; tenantId: string },
  settings: SessionSettings,
  requestedBudget: Budget | null,
  now: number,
): Promise<void> {
  if (settings.approval === 'none' && settings.budget === null && settings.threadId === null) return;
  await trx
    .insertInto('session_settings')
    .values({
      session_id: session.id,
      tenant_id: session.tenantId,
      approval: settings.approval,
      budget: settings.budget === null ? null : JSON.stringify(settings.budget),
      requested_budget: JSON.stringify(requestedBudget ?? {}),
      thread_id: settings.threadId,
      created_at: now,
    })
    .execute();
}

/** Remembers the session an Idempotency-Key created (findIdempotentSession reads it). */
export async function insertIdempotencyKey(
  trx: Kysely<Database>,
  session: { id: string; tenantId: string },
  idempotency: { key: string; hash: string },
  now: number,
): Promise<void> {
  await trx
    .insertInto('idempotency_keys')
    .values({
      tenant_id: session.tenantId,
      key: idempotency.key,
      request_hash: idempotency.hash,
      session_id: session.id,
      created_at: now,
    })
    .execute();
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
  // The submit checked the roles before it queued the insert; a custom role deleted in between
  // would leave the session with tasks of an unknown role.
  if (spec.plan !== null) {
    await assertTaskRolesExist(
      trx,
      spec.tenantId,
      spec.plan.phases.flatMap((phase) => phase.tasks),
      'it was deleted while the session was being submitted; the roles are listed by GET /v1/roles (MCP: list_roles)',
    );
  }
  const sessionId = spec.sessionId ?? newId();
  const awaitApproval = spec.awaitApproval === true;
  // Without a plan the orchestrator plans in a task; approval, if required, comes after it.
  const status =
    spec.plan === null
      ? transitionSession('pending', 'plan')
      : awaitApproval
        ? transitionSession(transitionSession('pending', 'plan'), 'await_approval')
        : transitionSession('pending', 'start');
  const rows =
    spec.plan === null
      ? buildInitialPlanTask(spec, sessionId, now)
      : buildPlannedRows({
          tenantId: spec.tenantId,
          sessionId,
          plan: spec.plan,
          maxAttempts: spec.maxAttempts,
          awaitApproval,
          runtimeOf: spec.runtimeOf,
          firstPosition: 0,
          now,
        });
  const sessionRow: SessionsTable = {
    ...newSessionRow(
      {
        id: sessionId,
        tenant_id: spec.tenantId,
        objective: spec.objective,
        strategy: spec.strategy,
        status,
        metadata: JSON.stringify(spec.metadata),
        // A session starts when its plan's tasks may run: at once, once planned, or once approved
        // (initial-plan.ts and approvePlan set started_at then).
        started_at: status === 'running' ? now : null,
      },
      now,
    ),
    // Version 1 is the first plan: stored now, or when the orchestrator's plan task produced it.
    ...(spec.plan === null ? { plan_version: 0 } : {}),
    ...(spec.traceContext
      ? { trace_parent: spec.traceContext.traceparent, trace_state: spec.traceContext.tracestate ?? null }
      : {}),
  };
  const events: NewEvent[] = [
    {
      type: 'session.created',
      data: { objective: spec.objective, strategy: spec.strategy, tasks: rows.created },
    },
    ...(status === 'awaiting_approval'
      ? [
          { type: 'session.status', data: { from: 'pending', to: 'planning' } } as const,
          { type: 'session.status', data: { from: 'planning', to: status } } as const,
        ]
      : [{ type: 'session.status', data: { from: 'pending', to: status } } as const]),
    ...rows.readyEvents,
  ];
  // A new session's log starts at seq 1: the counter is written with the row, no UPDATE needed.
  sessionRow.last_seq = events.length;
  await insertSession(trx, { session: sessionRow, plan: spec.plan, ...rows });
  await insertEventRows(trx, { id: sessionId, tenantId: spec.tenantId }, 1, events, now);
  const settings = spec.settings;
  const owner = { id: sessionId, tenantId: spec.tenantId };
  if (settings) await insertSessionSettings(trx, owner, settings, spec.requestedBudget ?? null, now);
  if (idempotency) await insertIdempotencyKey(trx, owner, idempotency, now);
  // The caller gets the detail from the rows just written, sparing a read of what it wrote.
  const detail: SessionDetail = {
    // Its metadata was serialised just now: nothing there to be damaged.
    ...toSessionRecord(sessionRow, IGNORE_DAMAGED_JSON),
    plan: spec.plan,
    tasks: rows.taskRecords,
    agents: toAgentRecords(rows.agents, rows.taskRecords),
    settings: settings ?? NO_SETTINGS,
  };
  return {
    sessionId,
    created: true,
    readied: rows.tasks.filter((task) => task.status === 'ready').length,
    detail,
  };
}
