// Runs the orchestrator's own tasks for the engine: the `plan` task that plans a session submitted
// without agents, a `plan` task at an adaptive phase gate, and the final `synthesize` task. Reads
// what the orchestrator must see from the store; writes nothing —
// the engine stores the result and, for a phase gate, creates the next phase from it.

import type { Kysely } from 'kysely';
import { createRunUsageMeter } from '../agents/runtimes/ai-sdk/run-usage.ts';
import type { AgentRuntime, RuntimeContext } from '../agents/runtimes/runtime.ts';
import { type BudgetCheckResult, toStopError } from '../domain/budget.ts';
import type { PlanBody, Usage } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import type { Database } from '../store/schema.ts';
import { stringifyForStore } from '../store/storable-text.ts';
import type { Planner } from './engine-types.ts';
import type { LlmPlanner } from './planner.ts';
import { INITIAL_PLAN_TASK_NAME } from './planner-continuation.ts';
import { boundSteeringMessages, type TaskOutputView } from './planner-prompts.ts';
import type { ExistingAgent } from './planner-validate.ts';
import type { BudgetGuard } from './session-budget.ts';
import { loadThreadSummaryFor } from './thread-context.ts';

/** Identifies the session whose orchestrator task runs. */
export interface OrchestratorTaskRef {
  tenantId: string;
  sessionId: string;
  /** The orchestrator task itself (excluded from the outputs shown). */
  taskId: string;
}

/** The JSON result of a phase-gate task; the engine parses it with `parsePhaseGateOutput`. */
export type PhaseGateOutput =
  | { decision: 'continue'; reason: string; phase: PlanBody['phases'][number] }
  | { decision: 'complete'; reason: string };

export interface OrchestratorTaskResult {
  output: string;
  usage: Usage;
}

interface SessionView {
  objective: string;
  outputs: TaskOutputView[];
  agents: ExistingAgent[];
  lastPhase: number;
  lastPhaseSinks: string[];
  userMessages: string[];
}

/** Loads the session's objective, finished agent-task outputs, agents and steering messages. */
async function loadSessionView(db: Kysely<Database>, ref: OrchestratorTaskRef): Promise<SessionView> {
  const session = await db
    .selectFrom('sessions')
    .select(['objective'])
    .where('tenant_id', '=', ref.tenantId)
    .where('id', '=', ref.sessionId)
    .executeTakeFirst();
  if (!session) throw new AppError('SESSION_NOT_FOUND', `Session ${ref.sessionId} not found`);
  const tasks = await db
    .selectFrom('tasks')
    .leftJoin('agents', 'agents.id', 'tasks.agent_id')
    .select([
      'tasks.id',
      'tasks.name',
      'tasks.role',
      'tasks.status',
      'tasks.result',
      'tasks.error',
      'tasks.phase',
      'agents.name as agent_name',
    ])
    .where('tasks.tenant_id', '=', ref.tenantId)
    .where('tasks.session_id', '=', ref.sessionId)
    .where('tasks.kind', '=', 'agent')
    .where('tasks.id', '!=', ref.taskId)
    .orderBy('tasks.phase')
    .orderBy('tasks.position')
    .execute();
  const deps = await db
    .selectFrom('task_dependencies')
    .innerJoin('tasks as dependant', 'dependant.id', 'task_dependencies.task_id')
    .select(['task_dependencies.depends_on_task_id', 'dependant.phase'])
    .where('task_dependencies.tenant_id', '=', ref.tenantId)
    .where('task_dependencies.session_id', '=', ref.sessionId)
    .execute();
  // Only LLM agents can be reused, as in an edited plan: a command agent (a runner task added at
  // approval) has no conversation to continue, and an LLM task given to it would take the
  // command's output for its own earlier answer.
  const agents = await db
    .selectFrom('agents')
    .select(['name', 'role'])
    .where('tenant_id', '=', ref.tenantId)
    .where('session_id', '=', ref.sessionId)
    .where('runtime', '=', 'llm')
    .orderBy('created_at')
    // Agents made in one transaction share created_at: then the plan's order (their first task's
    // position), then the id, so both stores list them alike (the prompt is a response cache key).
    .orderBy((eb) =>
      eb
        .selectFrom('tasks')
        .select((tasks) => tasks.fn.min('tasks.position').as('first'))
        .whereRef('tasks.agent_id', '=', 'agents.id'),
    )
    .orderBy('id')
    .execute();
  const userMessages = await loadSteeringMessages(db, ref);
  const lastPhase = tasks.reduce((max, task) => Math.max(max, task.phase), 0);
  const dependedInPhase = new Set(
    deps.filter((dep) => dep.phase === lastPhase).map((dep) => dep.depends_on_task_id),
  );
  return {
    objective: session.objective,
    outputs: tasks
      .filter((task) => ['succeeded', 'failed'].includes(task.status))
      .map((task) => ({
        name: task.name,
        role: task.role,
        agent: task.agent_name ?? undefined,
        status: task.status,
        output: task.status === 'succeeded' ? (task.result ?? '') : `(failed: ${task.error ?? 'no reason'})`,
      })),
    agents,
    lastPhase,
    lastPhaseSinks: tasks
      .filter((task) => task.phase === lastPhase && !dependedInPhase.has(task.id))
      .map((task) => task.name),
    userMessages,
  };
}

/** Newest steering messages read per prompt: more than MAX_STEERING_PROMPT_CHARS can hold anyway. */
const MAX_STEERING_MESSAGES_READ = 200;

/**
 * Steering messages of the session (a person's messages to the orchestrator) for a prompt, oldest
 * first: the newest that fit the prompt's bound, after a note counting the ones left out.
 */
async function loadSteeringMessages(db: Kysely<Database>, ref: OrchestratorTaskRef): Promise<string[]> {
  const steering = db
    .selectFrom('messages')
    .where('tenant_id', '=', ref.tenantId)
    .where('session_id', '=', ref.sessionId)
    .where('from_agent_id', 'is', null)
    .where('to_agent_id', 'is', null);
  const rows = await steering
    .select('body')
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(MAX_STEERING_MESSAGES_READ)
    .execute();
  if (rows.length < MAX_STEERING_MESSAGES_READ) {
    return boundSteeringMessages(
      rows.map((row) => row.body),
      rows.length,
    );
  }
  const { count } = await steering
    .select((eb) => eb.fn.countAll<string | number>().as('count'))
    .executeTakeFirstOrThrow();
  return boundSteeringMessages(
    rows.map((row) => row.body),
    Number(count),
  );
}

/**
 * Runs a session's planning task: the orchestrator plans the objective (with the thread summary and
 * any steering message), repairing an invalid plan a bounded number of times. The result is the
 * plan (with its origin mark) as JSON; the engine applies it when the task succeeds. A plan still
 * invalid after the repairs fails the task with an error that starts with INVALID_PLAN.
 */
export async function runInitialPlanTask(
  planner: Planner,
  db: Kysely<Database>,
  ref: OrchestratorTaskRef,
  ctx: Pick<RuntimeContext, 'signal' | 'reportSpend'>,
  threadSummary?: string,
  budget?: BudgetGuard,
): Promise<OrchestratorTaskResult> {
  const session = await db
    .selectFrom('sessions')
    .select(['objective', 'strategy'])
    .where('tenant_id', '=', ref.tenantId)
    .where('id', '=', ref.sessionId)
    .executeTakeFirst();
  if (!session) throw new AppError('SESSION_NOT_FOUND', `Session ${ref.sessionId} not found`);
  const userMessages = await loadSteeringMessages(db, ref);
  return withPlanningBudget(budget, ref, (checkBudget) =>
    withPlanErrorCode(async () => {
      const { plan, usage } = await planner.planInitial({
        tenantId: ref.tenantId,
        sessionId: ref.sessionId,
        objective: session.objective,
        adaptive: session.strategy === 'adaptive',
        ...(threadSummary ? { threadSummary } : {}),
        ...(userMessages.length > 0 ? { userMessages } : {}),
        signal: ctx.signal,
        ...(ctx.reportSpend ? { onSpend: ctx.reportSpend } : {}),
        ...(checkBudget ? { checkBudget } : {}),
      });
      // Stored as the task's result: JSON as the store keeps it (no escaped NUL in it either).
      return { output: stringifyForStore(plan), usage };
    }),
  );
}

/**
 * Runs planning rounds with the session's budget guard (when there is one): the planner asks it
 * before each repair round, and stops once the rounds so far have crossed the budget.
 */
async function withPlanningBudget<T>(
  budget: BudgetGuard | undefined,
  ref: OrchestratorTaskRef,
  run: (checkBudget?: (usage: Usage) => BudgetCheckResult) => Promise<T>,
): Promise<T> {
  if (!budget) return run();
  await budget.prepare(ref);
  try {
    return await run((usage) => budget.check(ref, usage));
  } finally {
    budget.release(ref);
  }
}

/**
 * Runs a planning call (first plan or phase gate) so that a plan that stayed invalid fails the task
 * with an error that leads with INVALID_PLAN: the task's error is then the session's (advance.ts),
 * with the code clients match on, as a budget stop's is.
 */
async function withPlanErrorCode<T>(plan: () => Promise<T>): Promise<T> {
  try {
    return await plan();
  } catch (error) {
    if (
      error instanceof AppError &&
      error.code === 'INVALID_PLAN' &&
      !error.message.startsWith('INVALID_PLAN')
    ) {
      throw new AppError('INVALID_PLAN', `INVALID_PLAN: ${error.message}`, {
        details: error.details,
        cause: error,
      });
    }
    throw error;
  }
}

/**
 * Runs a phase gate: the orchestrator sees the outputs so far, the agents, and the user's steering
 * messages, and answers `continue` (with the next phase, validated) or `complete`.
 */
export async function runPhaseGateTask(
  planner: LlmPlanner,
  db: Kysely<Database>,
  ref: OrchestratorTaskRef,
  ctx: Pick<RuntimeContext, 'signal' | 'reportSpend'>,
  threadSummary?: string,
  budget?: BudgetGuard,
): Promise<OrchestratorTaskResult> {
  const view = await loadSessionView(db, ref);
  const gate = await withPlanningBudget(budget, ref, (checkBudget) =>
    withPlanErrorCode(() =>
      planner.decidePhaseGate({
        tenantId: ref.tenantId,
        sessionId: ref.sessionId,
        objective: view.objective,
        phasesDone: view.lastPhase + 1,
        outputs: view.outputs,
        agents: view.agents,
        previousPhaseSinks: view.lastPhaseSinks,
        userMessages: view.userMessages,
        threadSummary,
        ...(ctx.reportSpend ? { onSpend: ctx.reportSpend } : {}),
        ...(checkBudget ? { checkBudget } : {}),
        signal: ctx.signal,
      }),
    ),
  );
  const output: PhaseGateOutput =
    gate.decision === 'continue'
      ? { decision: 'continue', reason: gate.reason, phase: gate.phase }
      : { decision: 'complete', reason: gate.reason };
  return { output: stringifyForStore(output), usage: gate.usage };
}

/**
 * Runs the final synthesis: one answer for the user, streamed into the task's output. With a budget
 * guard, the stream is stopped like an agent's once the session's budget is crossed: the task fails
 * with the runtime's "Budget exceeded: …" error and the engine ends the session BUDGET_EXCEEDED.
 */
export async function runSynthesisTask(
  planner: LlmPlanner,
  db: Kysely<Database>,
  ref: OrchestratorTaskRef,
  ctx: Pick<RuntimeContext, 'signal' | 'emitOutput' | 'reportSpend' | 'reportFailedRunUsage'>,
  budget?: BudgetGuard,
): Promise<OrchestratorTaskResult> {
  const view = await loadSessionView(db, ref);
  await budget?.prepare(ref);
  // The prompt as sent (outputs summarised in it), not the whole outputs: a call cut off, stopped
  // for the budget or answered without usage is charged, and stopped, on this estimate.
  const promptChars = planner.synthesisPromptChars({
    objective: view.objective,
    outputs: view.outputs,
    userMessages: view.userMessages,
  });
  // Over the synthesis's attempts, each priced at its own model (see run-usage.ts).
  const spent = createRunUsageMeter(promptChars);
  // Checked on what is spent so far: earlier attempts, and the one streaming at its estimate (none
  // for a cached answer being replayed).
  const stop = new AbortController();
  const emitOutput = (chunk: string) => {
    ctx.emitOutput('text', chunk);
    if (stop.signal.aborted) return;
    const usage = spent.snapshot();
    // What is spent so far goes on record: a server killed mid-synthesis still charges it.
    ctx.reportSpend?.(usage);
    const overrun = budget?.check(ref, usage);
    if (overrun) stop.abort(toStopError(overrun, usage));
  };
  try {
    const { result, usage } = await planner.synthesize({
      tenantId: ref.tenantId,
      objective: view.objective,
      outputs: view.outputs,
      userMessages: view.userMessages,
      signal: AbortSignal.any([ctx.signal, stop.signal]),
      emitOutput,
      meter: spent,
    });
    return { output: result, usage };
  } catch (error) {
    // Charged what its attempts spent, a synthesis stopped for its budget included.
    ctx.reportFailedRunUsage?.(spent.total());
    // The client may wrap the abort; the budget reason is what the engine must see.
    if (stop.signal.aborted && !ctx.signal.aborted) throw stop.signal.reason;
    throw error;
  } finally {
    budget?.release(ref);
  }
}

/** Parses a phase-gate task's stored result back into its decision. */
export function parsePhaseGateOutput(output: string): PhaseGateOutput {
  const value = JSON.parse(output) as PhaseGateOutput;
  if (value.decision !== 'continue' && value.decision !== 'complete') {
    throw new AppError('INTERNAL', 'A phase-gate result has an unknown decision');
  }
  return value;
}

/**
 * The orchestrator as an AgentRuntime, for tasks of kind `plan` (planning, phase gate) and
 * `synthesize`: the engine resolves this runtime for those kinds and everything else stays as it is.
 */
export function createOrchestratorRuntime(
  planner: LlmPlanner,
  db: Kysely<Database>,
  budget?: BudgetGuard,
): AgentRuntime {
  return {
    kind: 'orchestrator',
    async run(task, ctx) {
      const kind = task.kind;
      const ref = { tenantId: task.tenantId, sessionId: task.sessionId, taskId: task.taskId };
      // A synthesis charges what it spent before a failure itself (runSynthesisTask).
      if (kind === 'synthesize') return await runSynthesisTask(planner, db, ref, ctx, budget);
      try {
        if (kind === 'plan') {
          const threadSummary = await loadThreadSummaryFor(db, ref.tenantId, ref.sessionId);
          if (task.name === INITIAL_PLAN_TASK_NAME)
            return await runInitialPlanTask(planner, db, ref, ctx, threadSummary, budget);
          return await runPhaseGateTask(planner, db, ref, ctx, threadSummary, budget);
        }
      } catch (error) {
        // Rounds of a plan that stayed invalid, or stopped for the budget: charged.
        const spent = usageOfFailure(error);
        if (spent) ctx.reportFailedRunUsage?.(spent);
        throw error;
      }
      throw new AppError('INTERNAL', `The orchestrator runtime cannot run tasks of kind '${kind}'`);
    },
  };
}

/** The usage a failure of the planner carries in its details (INVALID_PLAN, BUDGET_EXCEEDED). */
function usageOfFailure(error: unknown): Usage | undefined {
  if (!(error instanceof AppError)) return undefined;
  const usage = (error.details as { usage?: Partial<Usage> } | undefined)?.usage;
  if (!usage || typeof usage !== 'object') return undefined;
  return {
    inputTokens: Number(usage.inputTokens ?? 0),
    outputTokens: Number(usage.outputTokens ?? 0),
    cacheReadTokens: Number(usage.cacheReadTokens ?? 0),
    costUsd: Number(usage.costUsd ?? 0),
  };
}
