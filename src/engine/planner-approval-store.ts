// Approving or rejecting a plan that waits for a person (session status `awaiting_approval`):
// approval optionally replaces the not-yet-started tasks with an edited plan (stored as a new plan
// version) and starts the session; rejection ends it. Runs inside the engine's write transaction.

import type { Kysely } from 'kysely';
import { type NewEvent, taskReadyEvent } from '../domain/events.ts';
import { checkRunnerAccess } from '../domain/runner-access.ts';
import { transitionSession } from '../domain/session-state.ts';
import type { PlanBody, SessionStatus } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import { newId } from '../store/ids.ts';
import { newTaskRow, toUsage } from '../store/rows.ts';
import type { Database } from '../store/schema.ts';
import { lockSessions } from '../store/session-locks.ts';
import { getSessionRow } from '../store/session-store.ts';
import { insertTaskDependencies } from '../store/task-store.ts';
import {
  type CurrentTask,
  checkEditedPlan,
  type EditedPlanRules,
  type EditedPlanSession,
} from './planner-approval.ts';
import {
  isOrchestratorPlanned,
  ORCHESTRATOR_PLAN_ORIGIN,
  type OrchestratedPlanBody,
} from './planner-continuation.ts';
import { loadLatestPlan, storePlanVersion } from './planner-plan-versions.ts';
import type { ExistingAgent, GeneratedTask } from './planner-validate.ts';
import { formatOverrun } from './session-budget.ts';
import { failPastDeadline, findPassedDeadline } from './session-deadlines.ts';

export interface ApprovalOptions {
  /** The edited plan from the request body; absent = approve the plan as it is. */
  editedPlan?: unknown;
  /** The plan version the caller decided on; another one waiting is INVALID_STATE. Absent: any. */
  planVersion?: number;
  rules: EditedPlanRules;
  maxAttempts: number;
}

export interface ApprovalResult {
  /** Tasks made ready (wake idle worker slots). */
  readied: number;
  /** Events for the engine to append. */
  events: NewEvent[];
  planVersion: number;
  /**
   * Task names of an edited plan written another way, as written → as used ("Design API" →
   * "Design-API"); empty when none was (or the plan was approved as it is).
   */
  renamedTasks: Record<string, string>;
  /**
   * Set when the session's deadline had passed before the approval (the sweep had not ended it yet):
   * the session was ended as the sweep ends it (its events appended already, `events` empty) and did
   * not start; the session's error (`BUDGET_EXCEEDED: deadline exceeded: …`).
   */
  expired?: string;
}

interface SessionRef {
  id: string;
  tenantId: string;
}

/**
 * The session, locked for the rest of the transaction (PostgreSQL), which must be waiting for
 * approval. The lock makes approve, reject, cancel and the deadline sweep decide one after the
 * other: without it two of them, on two connections or replicas, each read `awaiting_approval`
 * under READ COMMITTED and both went ahead (a rejected session started, two `session.finished`).
 */
async function loadAwaiting(trx: Kysely<Database>, session: SessionRef, planVersion?: number) {
  await lockSessions(trx, [session.id], session.tenantId);
  const row = await getSessionRow(trx, session.tenantId, session.id);
  if (row.status !== 'awaiting_approval') {
    throw new AppError('INVALID_STATE', `The session is ${row.status}, not awaiting approval`, {
      details: { status: row.status },
    });
  }
  // A decision on the plan version its caller read decides that plan only: at an adaptive session's
  // next gate another plan waits (someone else decided the one read, and its phase ran meanwhile).
  const waiting = Number(row.plan_version);
  if (planVersion !== undefined && planVersion !== waiting) {
    throw new AppError(
      'INVALID_STATE',
      `The plan waiting for approval is version ${waiting}, not ${planVersion}: nothing was decided; read the session again and decide on the plan that waits`,
      { details: { status: row.status, planVersion: waiting } },
    );
  }
  return row;
}

async function loadTasks(trx: Kysely<Database>, sessionId: string) {
  const tasks = await trx
    .selectFrom('tasks')
    .leftJoin('agents', 'agents.id', 'tasks.agent_id')
    .select([
      'tasks.id',
      'tasks.kind',
      'tasks.name',
      'tasks.role',
      'tasks.instructions',
      'tasks.runner',
      'tasks.status',
      'tasks.phase',
      'tasks.position',
      'tasks.agent_id',
      'agents.name as agent_name',
      'agents.role as agent_role',
      'agents.runtime as agent_runtime',
    ])
    .where('tasks.session_id', '=', sessionId)
    .orderBy('tasks.position')
    .execute();
  const deps = await trx
    .selectFrom('task_dependencies as d')
    .innerJoin('tasks as t', 't.id', 'd.depends_on_task_id')
    .select(['d.task_id', 't.name'])
    .where('d.session_id', '=', sessionId)
    .execute();
  const depsOf = new Map<string, string[]>();
  for (const dep of deps) depsOf.set(dep.task_id, [...(depsOf.get(dep.task_id) ?? []), dep.name]);
  return tasks.map((task) => ({ ...task, dependsOn: depsOf.get(task.id) ?? [] }));
}

type TaskRow = Awaited<ReturnType<typeof loadTasks>>[number];

/** The session as an edit meets it: its agent tasks with their agents, and the agents that worked. */
function describeSession(tasks: readonly TaskRow[]): EditedPlanSession {
  const current = new Map<string, CurrentTask>();
  const agents = new Map<string, ExistingAgent>();
  for (const task of tasks) {
    if (task.kind !== 'agent') continue;
    const started = task.status !== 'pending';
    const entry: CurrentTask = {
      name: task.name,
      role: task.role,
      instructions: task.instructions,
      dependsOn: task.dependsOn,
      agent: task.agent_name ?? task.name,
      started,
      phase: task.phase,
    };
    if (task.runner !== null) entry.runner = task.runner;
    current.set(task.name, entry);
    // Only an LLM agent has a history worth continuing; a command agent just runs its command.
    if (started && task.agent_name !== null && task.agent_role !== null && task.agent_runtime === 'llm')
      agents.set(task.agent_name, { name: task.agent_name, role: task.agent_role });
  }
  // The phase waiting for approval is the first one with a task not started yet.
  const waiting = tasks.filter((task) => task.kind === 'agent' && task.status === 'pending');
  const pendingPhase = waiting.length > 0 ? Math.min(...waiting.map((task) => task.phase)) : undefined;
  return {
    tasks: current,
    agents: [...agents.values()],
    ...(pendingPhase === undefined ? {} : { pendingPhase }),
  };
}

/** Approves the waiting plan (as is, or edited), stores the version, and starts the session. */
export async function approvePlan(
  trx: Kysely<Database>,
  session: SessionRef,
  options: ApprovalOptions,
  now: number,
): Promise<ApprovalResult> {
  const row = await loadAwaiting(trx, session, options.planVersion);
  // An approval in the moment between the deadline and the sweep (it runs every second) must not
  // start a session its budget already ended: it ends it as the sweep would, edited plan or not.
  const passed = await findPassedDeadline(trx, { id: session.id, createdAt: Number(row.created_at) }, now);
  if (passed !== null) {
    await failPastDeadline(trx, session, passed, now);
    return {
      readied: 0,
      events: [],
      planVersion: row.plan_version,
      renamedTasks: {},
      expired: formatOverrun({ code: 'BUDGET_EXCEEDED', reason: passed }),
    };
  }
  let tasks = await loadTasks(trx, session.id);
  let planVersion = row.plan_version;
  let renamedTasks: Record<string, string> = {};
  const events: NewEvent[] = [];
  if (options.editedPlan === undefined) {
    checkWaitingTasks(tasks, options.rules);
  } else {
    const latest = await loadLatestPlan(trx, session.id);
    const checked = checkEditedPlan(options.editedPlan, options.rules, {
      ...describeSession(tasks),
      ...(latest.plan === undefined ? {} : { waitingPlan: latest.plan }),
    });
    const edited = checked.plan;
    renamedTasks = checked.renamedTasks;
    // The waiting plan sent back unchanged (as read, to approve it) is approved as it is: no new
    // version, which would list a diff without a change, and the checks of a plain approval.
    if (checked.unchanged) {
      checkWaitingTasks(tasks, options.rules);
    } else {
      await replacePendingTasks(trx, session, tasks, edited, options.maxAttempts, now);
      // The orchestrator's mark is kept, also from a waiting plan that cannot be read (a hand edit
      // gone wrong): without it the session was no longer continued (no phase gate, no synthesis).
      const orchestrated = await isOrchestratorPlanned(trx, session.id, latest);
      const body: OrchestratedPlanBody = orchestrated
        ? { ...edited, origin: ORCHESTRATOR_PLAN_ORIGIN }
        : edited;
      planVersion = await storePlanVersion(trx, session.tenantId, session.id, body, now);
      tasks = await loadTasks(trx, session.id);
    }
  }
  const from = row.status as SessionStatus;
  const to = transitionSession(from, 'start');
  await trx
    .updateTable('sessions')
    .set({ status: to, updated_at: now, started_at: row.started_at ?? now })
    .where('id', '=', session.id)
    .execute();
  events.push({ type: 'session.status', data: { from, to } });
  const succeeded = new Set(tasks.filter((t) => t.status === 'succeeded').map((t) => t.name));
  const ready = tasks.filter((t) => t.status === 'pending' && t.dependsOn.every((dep) => succeeded.has(dep)));
  if (ready.length > 0) {
    await trx
      .updateTable('tasks')
      .set({ status: 'ready', ready_at: now, updated_at: now })
      .where(
        'id',
        'in',
        ready.map((t) => t.id),
      )
      .where('status', '=', 'pending')
      .execute();
  }
  for (const task of ready) events.push(taskReadyEvent(task.id, task.name));
  return { readied: ready.length, events, planVersion, renamedTasks };
}

/**
 * A plan approved as it is must still be runnable: a custom role its tasks use may have been deleted
 * (or a runner dropped from the config by a restart) while it waited. Refused like an invalid edit,
 * so the plan still waits and an edited one can replace the role, instead of a started session whose
 * tasks fail one by one.
 */
function checkWaitingTasks(tasks: readonly TaskRow[], rules: EditedPlanRules): void {
  const errors: string[] = [];
  const waiting = tasks.filter((task) => task.kind === 'agent' && task.status === 'pending');
  for (const task of waiting) {
    if (!rules.isKnownRole(task.role)) errors.push(`task "${task.name}": unknown role "${task.role}"`);
    if (task.runner !== null && !rules.isKnownRunner(task.runner))
      errors.push(`task "${task.name}": runner "${task.runner}" is not declared in the server config`);
  }
  const declared = waiting.filter((task) => task.runner !== null && rules.isKnownRunner(task.runner));
  const refused = checkRunnerAccess(declared, rules.mayUseRunner);
  if (refused) errors.push(refused.message);
  if (errors.length === 0) return;
  throw new AppError(
    'INVALID_PLAN',
    `The plan cannot start as it is: ${errors.join('; ')} — approve an edited plan instead`,
    { details: errors },
  );
}

/**
 * Replaces every not-yet-started agent task with the edited plan's tasks (started ones stay). A task
 * gets the agent it names (a reused agent keeps its id, so its history is replayed) or else its own,
 * named after it: the row it already has when that agent never worked, or a new one.
 */
async function replacePendingTasks(
  trx: Kysely<Database>,
  session: SessionRef,
  tasks: readonly TaskRow[],
  edited: PlanBody,
  maxAttempts: number,
  now: number,
): Promise<void> {
  const pending = tasks.filter((t) => t.status === 'pending' && t.kind === 'agent');
  const pendingIds = pending.map((t) => t.id);
  if (pendingIds.length > 0) {
    await trx
      .deleteFrom('task_dependencies')
      .where('session_id', '=', session.id)
      .where((eb) => eb.or([eb('task_id', 'in', pendingIds), eb('depends_on_task_id', 'in', pendingIds)]))
      .execute();
    await trx.deleteFrom('tasks').where('id', 'in', pendingIds).execute();
  }
  const kept = tasks.filter((t) => !pendingIds.includes(t.id));
  const idByName = new Map(kept.map((t) => [t.name, t.id]));
  const worked = new Set(kept.map((t) => t.agent_id));
  const agents = await trx
    .selectFrom('agents')
    .select(['id', 'name', 'role', 'runtime'])
    .where('session_id', '=', session.id)
    .execute();
  const agentByName = new Map(agents.map((a) => [a.name, a]));
  const fresh = edited.phases
    .flatMap((phase, phaseIndex) => phase.tasks.map((task) => ({ task: task as GeneratedTask, phaseIndex })))
    .filter(({ task }) => !idByName.has(task.name));
  for (const { task } of fresh) idByName.set(task.name, newId());
  let position = Math.max(-1, ...kept.map((t) => t.position));
  for (const { task, phaseIndex } of fresh) {
    const runtime = task.runner ? 'command' : 'llm';
    const agent = agentByName.get(task.agent ?? task.name);
    let agentId = agent?.id;
    if (agent && !worked.has(agent.id) && (agent.role !== task.role || agent.runtime !== runtime)) {
      // The task's own agent has not worked yet: it follows the task's edited role and runner.
      await trx.updateTable('agents').set({ role: task.role, runtime }).where('id', '=', agent.id).execute();
    }
    if (!agentId) {
      agentId = newId();
      await trx
        .insertInto('agents')
        .values({
          id: agentId,
          tenant_id: session.tenantId,
          session_id: session.id,
          name: task.name,
          role: task.role,
          runtime,
          created_at: now,
        })
        .execute();
    }
    position += 1;
    const id = idByName.get(task.name) as string;
    await trx
      .insertInto('tasks')
      .values(
        newTaskRow(
          { tenantId: session.tenantId, sessionId: session.id, maxAttempts, now },
          {
            id,
            kind: 'agent',
            name: task.name,
            role: task.role,
            agent_id: agentId,
            instructions: task.instructions,
            runner: task.runner ?? null,
            phase: phaseIndex,
            position,
            status: 'pending',
          },
        ),
      )
      .execute();
    await insertTaskDependencies(trx, session, id, task.dependsOn, idByName);
  }
  // Agents of removed tasks never worked: dropped, so neither the orchestrator's agent list nor the
  // per-role cap counts them, and a later task may take their name.
  await trx
    .deleteFrom('agents')
    .where('session_id', '=', session.id)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('tasks').select('tasks.id').whereRef('tasks.agent_id', '=', 'agents.id'))),
    )
    .execute();
}

/** Rejects the waiting plan: the session ends `failed` with the reason; waiting tasks are cancelled. */
export async function rejectPlan(
  trx: Kysely<Database>,
  session: SessionRef,
  reason: string,
  now: number,
  planVersion?: number,
): Promise<{ events: NewEvent[]; expired?: string }> {
  const row = await loadAwaiting(trx, session, planVersion);
  // As for an approval: after the deadline the session ends as the sweep would end it, not as rejected.
  const passed = await findPassedDeadline(trx, { id: session.id, createdAt: Number(row.created_at) }, now);
  if (passed !== null) {
    await failPastDeadline(trx, session, passed, now);
    return { events: [], expired: formatOverrun({ code: 'BUDGET_EXCEEDED', reason: passed }) };
  }
  const error = `Plan rejected: ${reason.trim() || 'no reason given'}`;
  const tasks = await loadTasks(trx, session.id);
  const waiting = tasks.filter((t) => t.status === 'pending' || t.status === 'ready');
  const events: NewEvent[] = [];
  if (waiting.length > 0) {
    await trx
      .updateTable('tasks')
      .set({ status: 'cancelled', error, finished_at: now, updated_at: now })
      .where(
        'id',
        'in',
        waiting.map((t) => t.id),
      )
      .execute();
  }
  for (const task of waiting) {
    events.push({
      type: 'task.status',
      data: {
        taskId: task.id,
        name: task.name,
        from: task.status as 'pending',
        to: 'cancelled',
        attempt: 0,
        reason: error,
      },
    });
  }
  const from = row.status as SessionStatus;
  const to = transitionSession(from, 'fail');
  await trx
    .updateTable('sessions')
    .set({ status: to, error, updated_at: now, finished_at: now })
    .where('id', '=', session.id)
    .execute();
  events.push(
    { type: 'session.status', data: { from, to } },
    { type: 'session.finished', data: { status: 'failed', error, result: null, usage: toUsage(row) } },
  );
  return { events };
}
