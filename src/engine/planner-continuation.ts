// What happens when every task of an orchestrator-planned session has succeeded: instead of
// completing, the session gets its next orchestrator task — a phase gate (adaptive), the next phase
// the gate decided, or the final synthesis. Runs inside the engine's finishing transaction.

import type { Kysely } from 'kysely';
import { deletedRolesError, findMissingRoles } from '../agents/roles/role-locks.ts';
import { type NewEvent, taskReadyEvent } from '../domain/events.ts';
import { ORCHESTRATOR_TASK_PREFIX } from '../domain/plan.ts';
import { transitionSession } from '../domain/session-state.ts';
import type { PlanBody, SessionStatus } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import { newId } from '../store/ids.ts';
import { type NewTaskFields, newTaskRow } from '../store/rows.ts';
import type { Database, TasksTable } from '../store/schema.ts';
import { insertTaskDependencies } from '../store/task-store.ts';
import { type LatestPlan, loadLatestPlan, storePlanVersion } from './planner-plan-versions.ts';
import { parsePhaseGateOutput } from './planner-tasks.ts';
import type { GeneratedTask } from './planner-validate.ts';
import { formatOverrun } from './session-budget.ts';
import { loadApprovalMode } from './session-settings.ts';
import type { CheckTenantDailyTokens } from './tenant-usage-days.ts';

/** Marks a plan produced by the orchestrator (the engine only continues such sessions). */
export const ORCHESTRATOR_PLAN_ORIGIN = 'orchestrator';
/** Role of the orchestrator's own tasks; not a catalogue role, so callers cannot submit it. */
export const ORCHESTRATOR_ROLE = 'orchestrator';
/** Names of orchestrator tasks start with ORCHESTRATOR_TASK_PREFIX, so they never clash with others. */
export const SYNTHESIS_TASK_NAME = `${ORCHESTRATOR_TASK_PREFIX}synthesis`;
/** The `plan` task of a session submitted without agents: its result is the first plan. */
export const INITIAL_PLAN_TASK_NAME = `${ORCHESTRATOR_TASK_PREFIX}plan`;
export const phaseGateTaskName = (phase: number) => `${ORCHESTRATOR_TASK_PREFIX}phase-gate-${phase}`;

/** A PlanBody as the planner returns it: marked with its origin (kept in the stored JSON). */
export type OrchestratedPlanBody = PlanBody & { origin?: string };

export interface ContinuationOptions {
  /** Phases an adaptive session may run (llm.planner.maxPhases). */
  maxPhases: number;
  maxAttempts: number;
  /** The tenant daily token quota, checked before a phase gate (its planning call) is started. */
  checkTenantDailyTokens?: CheckTenantDailyTokens;
}

/** What the engine must do after a continuation: count readied tasks and append the events. */
export interface Continuation {
  readied: number;
  events: NewEvent[];
}

/** A continuation that cannot go on (nothing was written): the session fails with `error`. */
export interface ContinuationFailure {
  error: string;
  /** Set when the tenant's daily token quota ended the session (metrics). */
  code?: 'QUOTA_EXCEEDED';
}

interface TaskRow {
  id: string;
  kind: string;
  name: string;
  role: string;
  phase: number;
  position: number;
  status: string;
  result: string | null;
}

/**
 * Whether the orchestrator plans the session, by its latest plan: the plan's origin mark or, when
 * the plan cannot be read (a hand edit of `plans.body` gone wrong: the mark is lost with it), whether
 * the session has an orchestrator planning task (its first plan's or a phase gate's; a session
 * submitted with its agents has none). Undefined while it has no plan yet.
 */
export async function isOrchestratorPlanned(
  db: Kysely<Database>,
  sessionId: string,
  latest: LatestPlan,
): Promise<boolean | undefined> {
  if (latest.plan) return latest.plan.origin === ORCHESTRATOR_PLAN_ORIGIN;
  if (!latest.unreadable) return undefined;
  const planning = await db
    .selectFrom('tasks')
    .select('id')
    .where('session_id', '=', sessionId)
    .where('kind', '=', 'plan')
    .limit(1)
    .executeTakeFirst();
  return planning !== undefined;
}

/**
 * Called when every task of the session succeeded. Returns null when the session should complete
 * as usual (not orchestrator-planned, or its synthesis already ran); otherwise inserts the next
 * tasks (ready to run) and returns the events to append, or, when the phase a gate decided names a
 * custom role deleted since or the plan to add it to cannot be read, writes nothing and returns the
 * session's error (INVALID_ROLE, INVALID_PLAN).
 */
export async function continueOrchestratedSession(
  trx: Kysely<Database>,
  session: { id: string; tenantId: string },
  options: ContinuationOptions,
  now: number,
): Promise<Continuation | ContinuationFailure | null> {
  const meta = await trx
    .selectFrom('sessions')
    .select(['strategy'])
    .where('id', '=', session.id)
    .where('tenant_id', '=', session.tenantId)
    .executeTakeFirst();
  const latest = await loadLatestPlan(trx, session.id);
  if (!meta) return null;
  // Not `!plan`: an orchestrator's session whose plan cannot be read completed as one of its own
  // agents, with no final answer and without the phase a gate had decided.
  if ((await isOrchestratorPlanned(trx, session.id, latest)) !== true) return null;
  const tasks: TaskRow[] = await trx
    .selectFrom('tasks')
    .select(['id', 'kind', 'name', 'role', 'phase', 'position', 'status', 'result'])
    .where('session_id', '=', session.id)
    .orderBy('position')
    .execute();
  if (tasks.some((task) => task.kind === 'synthesize')) return null;
  const ctx = { trx, session, options, now, tasks };
  if (meta.strategy !== 'adaptive') return insertSynthesis(ctx);
  const agentPhase = Math.max(0, ...tasks.filter((t) => t.kind === 'agent').map((t) => t.phase));
  const gate = tasks.find((t) => t.kind === 'plan' && t.phase > agentPhase);
  if (!gate) {
    if (agentPhase + 1 >= options.maxPhases) return insertSynthesis(ctx);
    const refused = await refuseOverDailyQuota(ctx, agentPhase + 1);
    if (refused) return refused;
    return insertOrchestratorTasks(ctx, [
      { kind: 'plan', name: phaseGateTaskName(agentPhase + 1), phase: agentPhase + 1, dependsOn: [] },
    ]);
  }
  const decision = parsePhaseGateOutput(gate.result ?? '{}');
  if (decision.decision === 'complete') return insertSynthesis(ctx);
  if (!latest.plan) {
    // The next version is the plan read with the decided phase added: nothing to add it to.
    return {
      error: `INVALID_PLAN: the session's latest plan (version ${latest.version}) cannot be read (plans.body changed by hand), so the phase its gate decided cannot be added to it; put a plan back in that row and retry the session`,
    };
  }
  return insertPhase(ctx, latest.plan, decision.phase, gate.phase);
}

/**
 * The session's failure when its tenant is over today's token quota: no further phase is planned
 * (the error starts with QUOTA_EXCEEDED, as a budget stop's with BUDGET_EXCEEDED). Null otherwise.
 */
async function refuseOverDailyQuota(ctx: Ctx, phase: number): Promise<ContinuationFailure | null> {
  const check = ctx.options.checkTenantDailyTokens;
  if (!check) return null;
  try {
    await check(ctx.trx, ctx.session.tenantId, `the session ends before planning phase ${phase}`);
    return null;
  } catch (error) {
    if (error instanceof AppError && error.code === 'QUOTA_EXCEEDED') {
      return {
        error: formatOverrun({ code: 'QUOTA_EXCEEDED', reason: error.message }),
        code: 'QUOTA_EXCEEDED',
      };
    }
    throw error;
  }
}

interface Ctx {
  trx: Kysely<Database>;
  session: { id: string; tenantId: string };
  options: ContinuationOptions;
  now: number;
  tasks: TaskRow[];
}

function baseTaskRow(ctx: Ctx, fields: NewTaskFields): TasksTable {
  return newTaskRow(
    {
      tenantId: ctx.session.tenantId,
      sessionId: ctx.session.id,
      maxAttempts: ctx.options.maxAttempts,
      now: ctx.now,
    },
    fields,
  );
}

/** The synthesis depends (formally) on every task, so it is the session's only sink: its output is the result. */
function insertSynthesis(ctx: Ctx): Promise<Continuation> {
  const dependsOn = ctx.tasks.map((task) => task.name);
  const phase = Math.max(0, ...ctx.tasks.map((t) => t.phase)) + 1;
  return insertOrchestratorTasks(ctx, [{ kind: 'synthesize', name: SYNTHESIS_TASK_NAME, phase, dependsOn }]);
}

async function insertOrchestratorTasks(
  ctx: Ctx,
  specs: Array<{ kind: 'plan' | 'synthesize'; name: string; phase: number; dependsOn: string[] }>,
): Promise<Continuation> {
  const idByName = new Map(ctx.tasks.map((t) => [t.name, t.id]));
  let position = Math.max(-1, ...ctx.tasks.map((t) => t.position));
  const events: NewEvent[] = [];
  for (const spec of specs) {
    const id = newId();
    position += 1;
    const row = baseTaskRow(ctx, {
      id,
      kind: spec.kind,
      name: spec.name,
      role: ORCHESTRATOR_ROLE,
      agent_id: null,
      instructions:
        spec.kind === 'plan'
          ? 'Decide the next phase or that the objective is met.'
          : 'Write the final answer for the user.',
      runner: null,
      phase: spec.phase,
      position,
      status: 'ready',
    });
    await ctx.trx.insertInto('tasks').values(row).execute();
    await insertTaskDependencies(ctx.trx, ctx.session, id, spec.dependsOn, idByName);
    events.push(taskReadyEvent(id, spec.name));
  }
  return { readied: specs.length, events };
}

/** Inserts the phase a gate decided: reused agents keep their id, new ones get an agent row. */
async function insertPhase(
  ctx: Ctx,
  plan: OrchestratedPlanBody,
  phase: PlanBody['phases'][number],
  phaseIndex: number,
): Promise<Continuation | ContinuationFailure> {
  // Sessions with approval "required" stop again at each phase gate's plan (approvePlan resumes them).
  const awaitApproval = (await loadApprovalMode(ctx.trx, ctx.session.id)) === 'required';
  // The gate checked the roles before its answer; one deleted since would fail the tasks when they
  // start. Checked (and locked, role-locks.ts) here, where the tasks are written; a phase waiting
  // for approval is checked when it is approved, and can be edited then.
  const missing = awaitApproval
    ? []
    : await findMissingRoles(
        ctx.trx,
        ctx.session.tenantId,
        phase.tasks.map((task) => task.role),
      );
  if (missing.length > 0) {
    return { error: deletedRolesError(missing, phase.tasks, 'The next phase') };
  }
  const agents = await ctx.trx
    .selectFrom('agents')
    .select(['id', 'name'])
    .where('session_id', '=', ctx.session.id)
    .where('tenant_id', '=', ctx.session.tenantId)
    .execute();
  const agentIdByName = new Map(agents.map((a) => [a.name, a.id]));
  const idByName = new Map(ctx.tasks.map((t) => [t.name, t.id]));
  const succeeded = new Set(ctx.tasks.filter((t) => t.status === 'succeeded').map((t) => t.name));
  for (const task of phase.tasks) idByName.set(task.name, newId());
  let position = Math.max(-1, ...ctx.tasks.map((t) => t.position));
  const events: NewEvent[] = [];
  let readied = 0;
  for (const task of phase.tasks as GeneratedTask[]) {
    let agentId = task.agent ? agentIdByName.get(task.agent) : undefined;
    if (!agentId) {
      agentId = newId();
      await ctx.trx
        .insertInto('agents')
        .values({
          id: agentId,
          tenant_id: ctx.session.tenantId,
          session_id: ctx.session.id,
          name: task.name,
          role: task.role,
          runtime: task.runner ? 'command' : 'llm',
          created_at: ctx.now,
        })
        .execute();
    }
    const ready = !awaitApproval && task.dependsOn.every((dep) => succeeded.has(dep));
    const id = idByName.get(task.name) as string;
    position += 1;
    await ctx.trx
      .insertInto('tasks')
      .values(
        baseTaskRow(ctx, {
          id,
          kind: 'agent',
          name: task.name,
          role: task.role,
          agent_id: agentId,
          instructions: task.instructions,
          runner: task.runner ?? null,
          phase: phaseIndex,
          position,
          status: ready ? 'ready' : 'pending',
        }),
      )
      .execute();
    await insertTaskDependencies(ctx.trx, ctx.session, id, task.dependsOn, idByName);
    if (ready) {
      readied += 1;
      events.push(taskReadyEvent(id, task.name));
    }
  }
  const nextPlan: OrchestratedPlanBody = { ...plan, phases: [...plan.phases, phase] };
  await storePlanVersion(ctx.trx, ctx.session.tenantId, ctx.session.id, nextPlan, ctx.now);
  if (awaitApproval) {
    const row = await ctx.trx
      .selectFrom('sessions')
      .select('status')
      .where('id', '=', ctx.session.id)
      .executeTakeFirstOrThrow();
    const from = row.status as SessionStatus;
    const to = transitionSession(from, 'await_approval');
    await ctx.trx
      .updateTable('sessions')
      .set({ status: to, updated_at: ctx.now })
      .where('id', '=', ctx.session.id)
      .execute();
    events.push({ type: 'session.status', data: { from, to } });
  }
  return { readied, events };
}
