// Retrying a failed or cancelled session (POST /v1/sessions/:id/retry): a new session with the
// original's objective, settings and plan versions, whose tasks that succeeded are carried over with
// their results (not run again, not charged again) and whose other tasks run anew. The original is
// left as it ended: a session's terminal status never changes, so everything that read it (events,
// webhooks, metrics, usage) stays true. The new session then advances like any other one (advance-
// sessions.ts), so a retry whose tasks all succeeded goes straight on to its next phase gate,
// synthesis or completion.
//
// A decision of the orchestrator that was never carried out is made anew, with the roles and
// outputs of now: a session that never had a plan applied (it ended while planning: its plan named
// a custom role deleted meanwhile, or was no plan) runs its planning task again, also when that task
// succeeded, and a phase gate that succeeded but whose next phase was never written is left out, so
// the engine decides that phase again. Carried over, their answers were applied again and the retry
// failed at once with the same error, and neither can be named in `rerun`.
import type { Kysely } from 'kysely';
import type { Budget } from '../domain/budget.ts';
import type { NewEvent } from '../domain/events.ts';
import { transitionSession } from '../domain/session-state.ts';
import type { SessionSettings, SessionStatus } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import type { StoredTraceContext } from '../observability/tracing.ts';
import { insertEventRows } from '../store/event-store.ts';
import { newId } from '../store/ids.ts';
import { type DamagedJsonReport, newSessionRow, parseSessionJson } from '../store/rows.ts';
import type {
  Database,
  MessagesTable,
  SessionsTable,
  TaskDependenciesTable,
  TasksTable,
} from '../store/schema.ts';
import { lockSessions, lockTenantSubmissions } from '../store/session-locks.ts';
import { insertChunked, insertPlannedRows } from '../store/session-store.ts';
import { advanceSessions, type ContinueSession, zeroUsage } from './advance-sessions.ts';
import {
  assertTaskRolesExist,
  findIdempotentSession,
  insertIdempotencyKey,
  insertSessionSettings,
} from './create-session.ts';
import { INITIAL_PLAN_TASK_NAME } from './planner-continuation.ts';
import { loadApprovalMode, loadRequestedBudget, loadSessionSettings } from './session-settings.ts';

/** Statuses a session can be retried from: it ended without completing. */
const RETRYABLE: readonly SessionStatus[] = ['failed', 'cancelled'];

export interface SessionRetrySpec {
  tenantId: string;
  /** The failed or cancelled session to retry. */
  originalId: string;
  /** Id of the new session. */
  sessionId: string;
  maxAttempts: number;
  /**
   * The new session's settings from the original's (`requestedBudget`: the budget the original gave
   * itself, null for none), with the budget it asks for itself, kept for a retry of the retry.
   */
  settingsOf(
    original: SessionSettings,
    requestedBudget: Budget | null,
  ): { settings: SessionSettings; requestedBudget: Budget | null };
  /**
   * Refuses (throws) when a task to run again could not run on this server: its runner is no longer
   * declared, or it needs an LLM provider (or the orchestrator) that is not configured.
   */
  checkRunnable(tasks: ReadonlyArray<Pick<TasksTable, 'name' | 'kind' | 'runner'>>): void;
  /** Told of the original's stored budget that cannot be read (the retry then has none of it). */
  reportDamagedJson: DamagedJsonReport;
  /**
   * Tasks to run again although they succeeded (their dependants run again too); with any, a
   * completed session can be retried as well.
   */
  rerun?: readonly string[];
  traceContext?: StoredTraceContext;
  /** Tenant quotas, as at a submit (create-session.ts `admit`). */
  admit?: (trx: Kysely<Database>) => Promise<void>;
  continueSession?: ContinueSession;
}

export interface StoredRetry {
  sessionId: string;
  created: boolean;
  /** Tasks made ready for any worker to claim. */
  readied: number;
  /** Set when the retry ended at once (every task was carried over and nothing follows them). */
  finished: SessionStatus | null;
}

/** Stores the retry of `spec.originalId` in the caller's transaction (or finds the one the key made). */
export async function storeSessionRetry(
  trx: Kysely<Database>,
  spec: SessionRetrySpec,
  idempotency: { key: string; hash: string } | undefined,
  now: number,
): Promise<StoredRetry> {
  if (spec.admit) await lockTenantSubmissions(trx, spec.tenantId);
  // PostgreSQL: a deletion of the original waits for this copy (or this finds it gone).
  await lockSessions(trx, [spec.originalId]);
  if (idempotency) {
    const existing = await findIdempotentSession(trx, spec.tenantId, idempotency);
    if (existing) return { sessionId: existing, created: false, readied: 0, finished: null };
  }
  const original = await trx
    .selectFrom('sessions')
    .selectAll()
    .where('id', '=', spec.originalId)
    .where('tenant_id', '=', spec.tenantId)
    .executeTakeFirst();
  if (!original) {
    throw new AppError('SESSION_NOT_FOUND', `Session ${spec.originalId} not found`, {
      details: { id: spec.originalId },
    });
  }
  await assertNotBeingDeleted(trx, original);
  const named = spec.rerun ?? [];
  await assertRetryable(trx, original, named.length > 0, spec.reportDamagedJson);
  // A refusal waits for the outcome: a retry that is complete the moment it is stored (every task
  // carried over, nothing following them) starts no work and is never unfinished, so no quota
  // stops it; any other is refused with it (the transaction is rolled back).
  const refusal = await admitOrRefusal(trx, spec);
  const allTasks = await trx
    .selectFrom('tasks')
    .selectAll()
    .where('session_id', '=', original.id)
    .orderBy('position')
    .execute();
  const allEdges = await trx
    .selectFrom('task_dependencies')
    .selectAll()
    .where('session_id', '=', original.id)
    .execute();
  // No plan applied (plan version 0): the session plans anew.
  const runAgain = tasksToRunAgain(original.id, allTasks, allEdges, named, original.plan_version === 0);
  // A phase gate to plan anew is not copied (see gatesToPlanAgain): the engine adds it again once
  // the tasks before it have succeeded, as it did in the original.
  const replanned = gatesToPlanAgain(allTasks, runAgain);
  const tasks = allTasks.filter((task) => !replanned.has(task.id));
  const edges = allEdges.filter(
    (edge) => !replanned.has(edge.task_id) && !replanned.has(edge.depends_on_task_id),
  );
  const rerun = tasks.filter((task) => runAgain.has(task.id));
  spec.checkRunnable(rerun);
  await assertTaskRolesExist(
    trx,
    spec.tenantId,
    rerun.filter((task) => task.kind === 'agent'),
    'it was deleted since the session ran, so its tasks cannot run again',
  );

  const sessionId = spec.sessionId;
  const owner = { id: sessionId, tenantId: spec.tenantId };
  const agentIds = new Map<string, string>();
  const agents = (
    await trx.selectFrom('agents').selectAll().where('session_id', '=', original.id).execute()
  ).map((agent) => {
    const id = newId();
    agentIds.set(agent.id, id);
    return { ...agent, id, session_id: sessionId, created_at: now };
  });
  const taskIds = new Map(tasks.map((task) => [task.id, newId()]));
  const newTasks = tasks.map((task) =>
    copyTask(task, runAgain.has(task.id), { spec, sessionId, taskIds, agentIds, now }),
  );
  const dependencies = edges.map((edge) => ({
    task_id: taskIds.get(edge.task_id)!,
    depends_on_task_id: taskIds.get(edge.depends_on_task_id)!,
    session_id: sessionId,
    tenant_id: spec.tenantId,
  }));
  const nameOf = new Map(newTasks.map((task) => [task.id, task.name]));
  const dependsOnNames = new Map<string, string[]>();
  for (const edge of dependencies) {
    const names = dependsOnNames.get(edge.task_id) ?? [];
    names.push(nameOf.get(edge.depends_on_task_id)!);
    dependsOnNames.set(edge.task_id, names);
  }
  const carried = tasks.filter((task) => !runAgain.has(task.id));
  const status: SessionStatus =
    original.plan_version === 0
      ? transitionSession('pending', 'plan')
      : transitionSession('pending', 'start');
  const events: NewEvent[] = [
    {
      type: 'session.created',
      data: {
        objective: original.objective,
        strategy: original.strategy,
        tasks: newTasks.map((task) => ({
          id: task.id,
          name: task.name,
          role: task.role,
          dependsOn: dependsOnNames.get(task.id) ?? [],
        })),
        retryOf: original.id,
        carried: carried.map((task) => task.name),
        ...(named.length > 0 ? { rerun: [...named] } : {}),
      },
    },
    { type: 'session.status', data: { from: 'pending', to: status } },
  ];
  const sessionRow: SessionsTable = {
    ...newSessionRow(
      {
        id: sessionId,
        tenant_id: spec.tenantId,
        objective: original.objective,
        strategy: original.strategy,
        status,
        metadata: original.metadata,
        started_at: status === 'running' ? now : null,
      },
      now,
    ),
    plan_version: original.plan_version,
    last_seq: events.length,
    retry_of: original.id,
    ...(spec.traceContext
      ? { trace_parent: spec.traceContext.traceparent, trace_state: spec.traceContext.tracestate ?? null }
      : {}),
  };
  await trx.insertInto('sessions').values(sessionRow).execute();
  const plans = await trx.selectFrom('plans').selectAll().where('session_id', '=', original.id).execute();
  await insertChunked(
    trx,
    'plans',
    plans.map((plan) => ({ ...plan, session_id: sessionId })),
  );
  await insertPlannedRows(trx, { agents, tasks: newTasks, dependencies });
  await copyMessages(trx, original.id, {
    sessionId,
    taskIds,
    agentIds,
    carried: new Set(carried.map((t) => t.id)),
  });
  await insertEventRows(trx, owner, 1, events, now);
  const settings = spec.settingsOf(
    await loadSessionSettings(trx, original.id, spec.reportDamagedJson),
    await loadRequestedBudget(trx, original.id, spec.reportDamagedJson),
  );
  await insertSessionSettings(trx, owner, settings.settings, settings.requestedBudget, now);
  if (idempotency) await insertIdempotencyKey(trx, owner, idempotency, now);
  // The tasks whose dependencies all succeeded become ready, or, when nothing is left to run, the
  // session goes on (phase gate, synthesis) or ends, exactly as after its last task's finish.
  const touched = new Map([[sessionId, { tenantId: spec.tenantId, events: [], usage: zeroUsage() }]]);
  const effect = (await advanceSessions(trx, touched, now, spec.continueSession)).get(sessionId);
  if (refusal && effect?.sessionFinished !== 'completed') throw refusal;
  return {
    sessionId,
    created: true,
    readied: effect?.readied ?? 0,
    finished: effect?.sessionFinished ?? null,
  };
}

/** Runs the tenant quotas' check; its QUOTA_EXCEEDED is returned, not thrown. */
async function admitOrRefusal(trx: Kysely<Database>, spec: SessionRetrySpec): Promise<AppError | undefined> {
  try {
    await spec.admit?.(trx);
    return undefined;
  } catch (error) {
    if (error instanceof AppError && error.code === 'QUOTA_EXCEEDED') return error;
    throw error;
  }
}

/** INVALID_STATE unless the session ended failed or cancelled (or completed, with tasks named to run again). */
export function assertRetryableStatus(sessionId: string, status: SessionStatus, rerunNamed: boolean): void {
  if (RETRYABLE.includes(status) || (status === 'completed' && rerunNamed)) return;
  throw new AppError(
    'INVALID_STATE',
    status === 'completed'
      ? `Session ${sessionId} completed: there is nothing to retry unless tasks are named to run again (rerun)`
      : `Session ${sessionId} is ${status}: only a failed or cancelled session can be retried (cancel it first)`,
    { details: { status } },
  );
}

/**
 * The ids of the tasks a retry runs again: those that did not succeed, those `named`, the first
 * planning task when `planAnew` (no plan of it was applied), and every task that depends on one of
 * them, directly or not (its input changes). VALIDATION_FAILED for a name the session has no task
 * of, or that names the orchestrator's planning or a phase gate.
 */
function tasksToRunAgain(
  sessionId: string,
  tasks: ReadonlyArray<Pick<TasksTable, 'id' | 'name' | 'kind' | 'status'>>,
  edges: ReadonlyArray<Pick<TaskDependenciesTable, 'task_id' | 'depends_on_task_id'>>,
  named: readonly string[],
  planAnew: boolean,
): Set<string> {
  const byName = new Map(tasks.map((task) => [task.name, task]));
  const unknown = named.filter((name) => !byName.has(name));
  if (unknown.length > 0) {
    throw new AppError(
      'VALIDATION_FAILED',
      `Session ${sessionId} has no task ${unknown.join(', ')} to run again`,
      {
        details: { rerun: unknown },
      },
    );
  }
  const deciding = named.filter((name) => byName.get(name)!.kind === 'plan');
  if (deciding.length > 0) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${deciding.join(', ')} cannot run again: the orchestrator's plan and phase gates decided the tasks the session has (name the agents' tasks, or orchestrator:synthesis)`,
      { details: { rerun: deciding } },
    );
  }
  const dependants = new Map<string, string[]>();
  for (const edge of edges) {
    const list = dependants.get(edge.depends_on_task_id) ?? [];
    list.push(edge.task_id);
    dependants.set(edge.depends_on_task_id, list);
  }
  const ids = new Set<string>();
  const pending = [
    ...tasks.filter((task) => task.status !== 'succeeded').map((task) => task.id),
    ...named.map((name) => byName.get(name)!.id),
    ...tasks
      .filter((task) => planAnew && task.kind === 'plan' && task.name === INITIAL_PLAN_TASK_NAME)
      .map((task) => task.id),
  ];
  while (pending.length > 0) {
    const id = pending.pop()!;
    if (ids.has(id)) continue;
    ids.add(id);
    pending.push(...(dependants.get(id) ?? []));
  }
  return ids;
}

/**
 * The phase gates to decide anew, left out of the retry: a gate has no dependencies, the engine
 * adds it when every task of the session has succeeded (planner-continuation.ts), so a gate left
 * out is added again after the tasks before it, and decides from their outputs and the roles of
 * then. Those are:
 * - a gate that did not succeed (the one the original stopped at) while a task of an earlier phase
 *   runs again (named in `rerun`, or a dependant of one): copied as a task to run again, it was
 *   ready at once and decided the next phase while those tasks ran, without their new outputs;
 * - a gate that succeeded but whose decision no task carries out (no task of its phase or a later
 *   one: writing the phase it decided failed, e.g. the phase named a custom role deleted while the
 *   gate decided): copied, its decision was applied again and failed alike.
 */
function gatesToPlanAgain(
  tasks: ReadonlyArray<Pick<TasksTable, 'id' | 'kind' | 'name' | 'phase' | 'status'>>,
  runAgain: ReadonlySet<string>,
): Set<string> {
  const gates = tasks.filter((task) => task.kind === 'plan' && task.name !== INITIAL_PLAN_TASK_NAME);
  const after = (gate: { id: string; phase: number }) =>
    tasks.some((task) => task.id !== gate.id && task.phase >= gate.phase);
  return new Set(
    gates
      .filter((gate) =>
        runAgain.has(gate.id)
          ? tasks.some((task) => task.id !== gate.id && task.phase < gate.phase && runAgain.has(task.id))
          : gate.status === 'succeeded' && !after(gate),
      )
      .map((gate) => gate.id),
  );
}

/**
 * INVALID_STATE when a deletion of the session has begun (store/session-deletion.ts records it at
 * its first step): the deletion goes in steps, so its messages and events may already be partly
 * gone, and a copy would silently lack them. A deletion cut short leaves it so until it is deleted
 * again. The row lock taken before (PostgreSQL) keeps a deletion from starting during the copy.
 */
async function assertNotBeingDeleted(trx: Kysely<Database>, original: SessionsTable): Promise<void> {
  const deleting = await trx
    .selectFrom('deleted_sessions')
    .select('id')
    .where('id', '=', original.id)
    .executeTakeFirst();
  if (!deleting) return;
  throw new AppError(
    'INVALID_STATE',
    `Session ${original.id} is being deleted, so it cannot be retried (a deletion that was cut short is finished by deleting it again)`,
    { details: { status: original.status, deleting: true } },
  );
}

/**
 * INVALID_STATE unless the session ended failed or cancelled, and not while its plan waited for
 * approval: the tasks of a plan nobody approved must not start because the session was retried.
 */
async function assertRetryable(
  trx: Kysely<Database>,
  original: SessionsTable,
  rerunNamed: boolean,
  report: DamagedJsonReport,
): Promise<void> {
  const status = original.status as SessionStatus;
  assertRetryableStatus(original.id, status, rerunNamed);
  const last = await trx
    .selectFrom('events')
    .select('data')
    .where('session_id', '=', original.id)
    .where('type', '=', 'session.status')
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  // An event whose data cannot be read (a hand edit gone wrong) tells nothing, as one removed by
  // retention: JSON.parse made such a retry a 500.
  const data = last ? parseSessionJson(last.data, original.id, 'events.data', report) : undefined;
  const from = (data as { from?: unknown } | undefined)?.from;
  if (from === undefined && (await loadApprovalMode(trx, original.id)) === 'required') {
    // Retention removed its events (retention.eventsDays), or its last status change cannot be read:
    // whether it ended waiting cannot be told. Which one is said, so no one looks for the other.
    const why = last
      ? 'its last status change cannot be read (the database was edited)'
      : 'its events were removed by retention';
    throw new AppError(
      'INVALID_STATE',
      `Session ${original.id} needed plan approval and ${why}, so whether its plan was approved cannot be told: submit the objective again`,
      { details: { status } },
    );
  }
  if (from === 'awaiting_approval') {
    throw new AppError(
      'INVALID_STATE',
      `Session ${original.id} ended while its plan waited for approval: submit the objective again`,
      { details: { status, endedWhile: 'awaiting_approval' } },
    );
  }
}

/**
 * A task of the retry: a succeeded one as it ended (result, timings) but with no usage, which stays
 * the original's; any other one pending with no attempt, as if newly planned (advance readies it).
 */
function copyTask(
  task: TasksTable,
  runAgain: boolean,
  ctx: {
    spec: SessionRetrySpec;
    sessionId: string;
    taskIds: ReadonlyMap<string, string>;
    agentIds: ReadonlyMap<string, string>;
    now: number;
  },
): TasksTable {
  const base = {
    id: ctx.taskIds.get(task.id)!,
    tenant_id: task.tenant_id,
    session_id: ctx.sessionId,
    kind: task.kind,
    name: task.name,
    role: task.role,
    agent_id: task.agent_id === null ? null : (ctx.agentIds.get(task.agent_id) ?? null),
    instructions: task.instructions,
    runner: task.runner,
    phase: task.phase,
    position: task.position,
    lease_owner: null,
    lease_expires_at: null,
    input_tokens: 0,
    output_tokens: 0,
    cache_read_tokens: 0,
    cost_usd: 0,
    unsettled_usage: null,
    model_usage: null,
    created_at: ctx.now,
    updated_at: ctx.now,
  };
  if (!runAgain) {
    return {
      ...base,
      status: 'succeeded',
      attempts: task.attempts,
      max_attempts: task.max_attempts,
      result: task.result,
      error: null,
      ready_at: task.ready_at,
      started_at: task.started_at,
      finished_at: task.finished_at,
    };
  }
  return {
    ...base,
    status: 'pending',
    attempts: 0,
    max_attempts: ctx.spec.maxAttempts,
    result: null,
    error: null,
    ready_at: null,
    started_at: null,
    finished_at: null,
  };
}

/**
 * The original's messages (agents' `send_message`s, a person's steering), so the tasks run again
 * and the orchestrator's next phase gate or synthesis read what they read before. A message
 * delivered into a task that runs again is delivered again (into its new run).
 */
async function copyMessages(
  trx: Kysely<Database>,
  originalId: string,
  ctx: {
    sessionId: string;
    taskIds: ReadonlyMap<string, string>;
    agentIds: ReadonlyMap<string, string>;
    carried: ReadonlySet<string>;
  },
): Promise<void> {
  const messages = await trx
    .selectFrom('messages')
    .selectAll()
    .where('session_id', '=', originalId)
    .execute();
  const mapAgent = (id: string | null) => (id === null ? null : (ctx.agentIds.get(id) ?? null));
  const rows: MessagesTable[] = messages.map((message) => ({
    ...message,
    id: newId(),
    session_id: ctx.sessionId,
    from_agent_id: mapAgent(message.from_agent_id),
    to_agent_id: mapAgent(message.to_agent_id),
    delivered_task_id:
      message.delivered_task_id != null && ctx.carried.has(message.delivered_task_id)
        ? ctx.taskIds.get(message.delivered_task_id)!
        : null,
  }));
  await insertChunked(trx, 'messages', rows);
}
