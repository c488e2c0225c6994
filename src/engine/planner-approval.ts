// Plan approval helpers: validating a plan a person edited before approving it, and the diff
// between two plan versions (shown by GET /v1/sessions/:id/plans). Pure.

import { z } from 'zod';
import { checkRunnerAccess, type MayUseRunner } from '../domain/runner-access.ts';
import { charCount } from '../domain/text-cut.ts';
import type { PlanBody, PlannedTask } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import { EDITED_TASK_NAMES, normaliseTaskNames, type TaskNameForm } from './planner-names.ts';
import {
  checkGeneratedPhases,
  type ExistingAgent,
  type GeneratedTask,
  type PhaseToCheck,
  type PlanLimits,
  roleKey,
  type TaskToCheck,
  toPlanBody,
} from './planner-validate.ts';

// The name form (planner-names.ts EDITED_TASK_NAMES) is checked after the parse: a name written
// with spaces ("Design API") is read as "Design-API", in the dependencies and `agent` too.
/** Longest task name read (checked against the name rules after the parse). */
const MAX_TASK_NAME_READ = 200;
const taskNameSchema = z.string().min(1).max(MAX_TASK_NAME_READ);

/**
 * Most phases of an edited plan: not llm.planner.maxPhases, which bounds the phase gates the
 * orchestrator adds by itself (a person approving the plan decides its phases); 20 is the most that
 * setting can be. A waiting plan with more (the orchestrator's first plan of a non-adaptive session
 * has no phase limit) may keep as many (checkPhaseCount), so it can be sent back as read.
 */
const MAX_EDITED_PHASES = 20;
/** Most tasks in one phase of an edited plan. */
const MAX_EDITED_TASKS_PER_PHASE = 200;
/**
 * Most characters of an edited task's instructions, or as many as the waiting plan's task of that
 * name has (checkInstructionLengths): a generated task's instructions carry its deliverables too,
 * which the orchestrator may list at any length, so the plan as read can exceed it.
 */
const MAX_EDITED_INSTRUCTIONS = 20_000;
/** Most characters of instructions read at all (the request body limit bounds them anyway). */
const MAX_INSTRUCTIONS_READ = 1_000_000;

// The plan as read shows the phase barrier among a task's dependencies (each task waits for the
// last tasks of the phase before), so a bound below what a waiting plan shows would refuse a plan
// sent back as it was read; 40,000 is far above that (the tasks of two phases).
const MAX_DEPENDENCIES = 200 * MAX_EDITED_TASKS_PER_PHASE;
const dependenciesSchema = z.array(taskNameSchema).max(MAX_DEPENDENCIES);

/** True when both lists name the same tasks (order and repeats aside). */
function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((name) => right.has(name));
}

/** The body of an edited plan in `POST /v1/sessions/:id/approve` (`{ plan: … }`). */
export const editedPlanSchema = z.strictObject({
  phases: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(64),
        tasks: z
          .array(
            z
              .strictObject({
                name: taskNameSchema,
                // Checked against the catalogue with the plan's other problems (toTaskToCheck).
                role: z.string().trim().min(1).max(64),
                // MAX_EDITED_INSTRUCTIONS is checked with the plan's other problems: a waiting
                // task may have more.
                instructions: z.string().min(1).max(MAX_INSTRUCTIONS_READ),
                // `dependsOn` as GET /v1/sessions/:id and /plans show it, so a plan read there can be
                // edited and sent back; `depends_on` (the planner's spelling) is still read.
                dependsOn: dependenciesSchema
                  .optional()
                  .describe('Names of the tasks this one waits for, as the session and its plans show them.'),
                depends_on: dependenciesSchema
                  .optional()
                  .describe(
                    'Same as `dependsOn` (the earlier spelling, still read); given with it, it must name the same tasks.',
                  ),
                runner: z
                  .string()
                  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/)
                  .optional(),
                // Agents are named after the task they were created for, hence the task-name rule.
                agent: taskNameSchema.nullable().optional(),
              })
              .refine(
                (task) =>
                  task.dependsOn === undefined ||
                  task.depends_on === undefined ||
                  sameNames(task.dependsOn, task.depends_on),
                {
                  message:
                    'dependsOn and depends_on name different tasks: give the dependencies once, as dependsOn',
                },
              ),
          )
          .min(1)
          .max(MAX_EDITED_TASKS_PER_PHASE),
      }),
    )
    // No bound here: MAX_EDITED_PHASES is checked before the parse (refuseOutsizedShape), as a
    // waiting plan may have more, and the orchestrator's first plan of a non-adaptive session has no phase limit
    // at all (a fixed bound would refuse one larger sent back as read). The body limit bounds it.
    .min(1),
});

type ParsedTask = z.infer<typeof editedPlanSchema>['phases'][number]['tasks'][number];

/** An edited task with its dependencies under one name, whichever spelling it came with. */
type EditedTask = Omit<ParsedTask, 'dependsOn' | 'depends_on'> & { depends_on: string[] };

function toEditedTask({ dependsOn, depends_on, ...task }: ParsedTask): EditedTask {
  return { ...task, depends_on: dependsOn ?? depends_on ?? [] };
}

export interface EditedPlanRules {
  isKnownRole(role: string): boolean;
  isKnownRunner(runner: string): boolean;
  /** Whether the session's tenant may use the declared runner (`runnerAccess`). @defaultValue all */
  mayUseRunner?: MayUseRunner;
  maxAgentsPerRole: number;
  /** llm.planner.maxTasksPerPhase, as for a generated plan. */
  maxTasksPerPhase: number;
}

/** An agent task of the session when the edit arrives. */
export interface CurrentTask extends PlannedTask {
  /** Name of the agent the task is given to (its own one is named after it). */
  agent: string;
  /** It already ran or runs: an edit may not remove or change it. */
  started: boolean;
  /**
   * Index of the phase it is in (the `phase` of its row): a started task must stay in it, the plan
   * otherwise showing it where it did not run. Unset: not checked.
   */
  phase?: number;
}

/** What an edit meets in the session: the tasks it has, and the agents that already worked. */
export interface EditedPlanSession {
  /** The session's agent tasks by name (the plan waiting for approval and what already ran). */
  tasks: ReadonlyMap<string, CurrentTask>;
  /** LLM agents with a task that started: the ones a task may reuse (they keep their history). */
  agents: readonly ExistingAgent[];
  /**
   * Index of the phase waiting for approval (0 for a first plan, n at the n-th phase gate): new tasks
   * go there or later. Unset: not checked.
   */
  pendingPhase?: number;
  /**
   * The plan waiting for approval. An edit that changes nothing of it (isSamePlan) is not held to the
   * limits: a plan submitted with its agents was never held to the orchestrator's (tasks per phase,
   * agents per role), and sending it back as read must approve it, not refuse it.
   */
  waitingPlan?: PlanBody;
}

const NEW_SESSION: EditedPlanSession = { tasks: new Map(), agents: [] };

/**
 * The agent an edited task is given to, as the phase check sees it: the name of an agent that
 * already worked, or null for a new one named after the task. A named `agent` is checked as a reuse,
 * as in a generated plan; `agent` absent keeps the agent the task has, so an unchanged task that
 * reuses an agent keeps it (and its history); `null` asks for the task's own agent. A runner task
 * runs a command, so it always has its own (command) agent.
 */
function agentToCheck(task: EditedTask, session: EditedPlanSession): string | null {
  if (task.runner !== undefined) return null;
  if (typeof task.agent === 'string') return task.agent;
  const name = (task.agent === undefined ? session.tasks.get(task.name)?.agent : undefined) ?? task.name;
  // The task's own agent is new unless it already worked (a started task checked again).
  return session.agents.some((agent) => agent.name === name) ? name : null;
}

/**
 * The catalogue's name of a role written another way ("Engineer", "Backend Engineer"), as for a
 * generated plan; a role that matches nothing stays as written, for the check to report.
 */
function catalogueRole(role: string, rules: EditedPlanRules): string {
  if (rules.isKnownRole(role)) return role;
  const key = roleKey(role);
  return rules.isKnownRole(key) ? key : role;
}

/** An edited task in the form generated tasks are checked in: no deliverables, instructions as written. */
function toTaskToCheck(task: EditedTask, session: EditedPlanSession, rules: EditedPlanRules): TaskToCheck {
  const checked: TaskToCheck = {
    name: task.name,
    role: catalogueRole(task.role, rules),
    instructions: task.instructions,
    depends_on: task.depends_on,
    deliverables: [],
    agent: agentToCheck(task, session),
  };
  if (task.runner !== undefined) checked.runner = task.runner;
  return checked;
}

/**
 * The limits an edit is held to: the orchestrator's, raised to what the waiting plan already has
 * where it has more. A plan submitted with its agents is not held to them, so sending it back with
 * one instruction changed must not be refused for a size it was accepted with; an edit still cannot
 * add agents or tasks beyond both.
 */
function limitsForEdit(rules: EditedPlanRules, session: EditedPlanSession): PlanLimits {
  const waiting = session.waitingPlan;
  const limits = { maxTasksPerPhase: rules.maxTasksPerPhase, maxAgentsPerRole: rules.maxAgentsPerRole };
  if (waiting === undefined) return limits;
  const perRole = new Map<string, number>();
  for (const agent of session.agents) perRole.set(agent.role, (perRole.get(agent.role) ?? 0) + 1);
  for (const task of waiting.phases.flatMap((phase) => phase.tasks) as GeneratedTask[]) {
    const checked = toTaskToCheck({ ...task, depends_on: task.dependsOn ?? [] }, session, rules);
    if (checked.agent === null && checked.runner === undefined) {
      perRole.set(checked.role, (perRole.get(checked.role) ?? 0) + 1);
    }
  }
  return {
    ...limits,
    agentsPerRoleAccepted: perRole,
    tasksPerPhaseAccepted: waiting.phases.map((phase) => phase.tasks.length),
  };
}

/**
 * At most MAX_EDITED_PHASES phases, or as many as the plan waiting for approval has when it has
 * more (as for tasks per phase and agents per role: an edit keeps the size the plan was made with).
 */
function checkPhaseCount(phases: number, session: EditedPlanSession): string[] {
  const waiting = session.waitingPlan?.phases.length ?? 0;
  const cap = Math.max(MAX_EDITED_PHASES, waiting);
  if (phases <= cap) return [];
  const accepted = cap > MAX_EDITED_PHASES ? ' (as many as the waiting plan has)' : '';
  return [`the plan has ${phases} phases; at most ${cap} are allowed${accepted}`];
}

/**
 * At most MAX_EDITED_INSTRUCTIONS characters of instructions per task, or as many as the session's
 * task of the same name has when it has more (the waiting plan's, with the deliverables the
 * orchestrator listed folded in), so a plan can be sent back as read and edited within that size.
 */
function checkInstructionLengths(edited: readonly EditedTask[], session: EditedPlanSession): string[] {
  const longest = new Map<string, number>();
  const waitingTasks = session.waitingPlan?.phases.flatMap((phase) => phase.tasks) ?? [];
  // Characters as the request schemas count them (code points: an emoji is one), as at a submit.
  for (const task of [...waitingTasks, ...session.tasks.values()]) {
    longest.set(task.name, Math.max(longest.get(task.name) ?? 0, charCount(task.instructions)));
  }
  const errors: string[] = [];
  for (const task of edited) {
    const kept = longest.get(task.name) ?? 0;
    const cap = Math.max(MAX_EDITED_INSTRUCTIONS, kept);
    // Fewer units than the cap are fewer characters too: only a long text is counted.
    const chars = task.instructions.length <= cap ? task.instructions.length : charCount(task.instructions);
    if (chars <= cap) continue;
    const accepted = cap > MAX_EDITED_INSTRUCTIONS ? ' (as many as the waiting task has)' : '';
    errors.push(
      `task "${task.name}": its instructions have ${chars} characters; at most ${cap} are allowed${accepted}`,
    );
  }
  return errors;
}

/** Problems only an edited plan can have: runners of the tasks to run, and tasks that already started. */
function checkEdit(
  edited: readonly EditedTask[],
  built: ReadonlyMap<string, GeneratedTask>,
  phaseOf: ReadonlyMap<string, number>,
  rules: EditedPlanRules,
  session: EditedPlanSession,
): string[] {
  const errors: string[] = [];
  // A task that already ran stays as it ran (checked below): its runner, since taken from the config
  // or the tenant, would refuse every edit of what is still to run, as nothing could change it.
  const ran = (task: EditedTask) => session.tasks.get(task.name)?.started === true;
  for (const task of edited) {
    if (task.runner === undefined) continue;
    if (!ran(task) && !rules.isKnownRunner(task.runner))
      errors.push(`task "${task.name}": runner "${task.runner}" is not declared in the server config`);
    if (typeof task.agent === 'string')
      errors.push(`task "${task.name}" runs runner "${task.runner}" and cannot reuse agent "${task.agent}"`);
  }
  const declared = edited.filter(
    (task) => !ran(task) && task.runner !== undefined && rules.isKnownRunner(task.runner),
  );
  const refused = checkRunnerAccess(declared, rules.mayUseRunner);
  if (refused) errors.push(refused.message);
  for (const [name, current] of session.tasks) {
    if (!current.started) continue;
    const after = built.get(name);
    if (!after) {
      errors.push(`task "${name}" has already started and cannot be removed`);
      continue;
    }
    const agent = after.runner === undefined ? (after.agent ?? name) : name;
    // The agent is compared by the name it resolves to (a task's own agent is named after it).
    const changed = describeTaskChanges(current, after).some((change) => change.field !== 'agent');
    // Moved to another phase (with dependencies that read the same there) is a change too: the task
    // ran in its phase, and the plan would show it in another.
    const moved = current.phase !== undefined && phaseOf.get(name) !== current.phase;
    if (changed || moved || agent !== current.agent)
      errors.push(`task "${name}" has already started and cannot be changed`);
  }
  return errors;
}

/**
 * Problems of an edit at a phase gate (some tasks already started): it must leave a task to run —
 * an approved plan with none would leave the session running with nothing to do — and new tasks may
 * not go into a phase that already ran, since the session continues after the phase waiting for
 * approval (a task added before it would run, and the gate's phase would come back).
 */
function checkGateEdit(
  phases: ReadonlyArray<{ name: string; tasks: readonly EditedTask[] }>,
  session: EditedPlanSession,
): string[] {
  const pending = session.pendingPhase;
  const started = new Set(
    [...session.tasks.values()].filter((task) => task.started).map((task) => task.name),
  );
  if (pending === undefined || started.size === 0) return [];
  const errors: string[] = [];
  const toRun = phases.flatMap((phase) => phase.tasks).filter((task) => !started.has(task.name));
  if (toRun.length === 0) {
    errors.push(
      'the edited plan has no task left to run: keep or add at least one task in the phase waiting for approval (or reject the plan to end the session)',
    );
  }
  phases.slice(0, pending).forEach((phase, index) => {
    for (const task of phase.tasks) {
      if (started.has(task.name)) continue;
      errors.push(
        `task "${task.name}" is new but in phase ${index} ("${phase.name}"), which has already run: add new tasks to the phase waiting for approval (phase ${pending}) or a later one`,
      );
    }
  });
  return errors;
}

/** Dependency entries that are not task names, beyond which an edit is refused before it is parsed. */
const MAX_BAD_DEPENDENCIES = 100;

/**
 * Refuses, before the schema sees it, an edit whose size alone makes it invalid: more phases than
 * allowed (checkPhaseCount), or more than MAX_BAD_DEPENDENCIES dependency entries that are no task
 * names. The schema lists a problem per element: a 1 MiB body of empty phases, or of numbers among
 * the dependencies, made hundreds of thousands of problems, built and joined for seconds while the
 * process served nothing else, and overflowed the stack (a 500) when gathered. Arrays over their
 * schema bound are left to the schema, which refuses them without reading their elements.
 */
function refuseOutsizedShape(input: unknown, session: EditedPlanSession): void {
  const phases = isRecord(input) ? input.phases : undefined;
  if (!Array.isArray(phases)) return;
  const tooMany = checkPhaseCount(phases.length, session);
  if (tooMany.length > 0) {
    throw new AppError('INVALID_PLAN', `The edited plan is not valid: ${tooMany.join('; ')}`, {
      details: tooMany,
    });
  }
  let bad = 0;
  let first: string | undefined;
  phases.forEach((phase, p) => {
    const tasks = isRecord(phase) ? phase.tasks : undefined;
    if (!Array.isArray(tasks) || tasks.length > MAX_EDITED_TASKS_PER_PHASE) return;
    tasks.forEach((task, t) => {
      for (const key of ['dependsOn', 'depends_on'] as const) {
        const dependencies = isRecord(task) ? task[key] : undefined;
        if (!Array.isArray(dependencies) || dependencies.length > MAX_DEPENDENCIES) continue;
        for (const name of dependencies) {
          if (typeof name === 'string' && name.length > 0 && charCount(name) <= MAX_TASK_NAME_READ) continue;
          bad += 1;
          first ??= `plan.phases.${p}.tasks.${t}.${key}`;
        }
      }
    });
  });
  if (bad <= MAX_BAD_DEPENDENCIES) return;
  const problem = `${first}: ${bad} dependencies are not task names (text of 1-${MAX_TASK_NAME_READ} characters)`;
  throw new AppError('INVALID_PLAN', `The edited plan is not valid: ${problem}`, { details: [problem] });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * The name form of an edit: EDITED_TASK_NAMES, where the names of the session's tasks are valid as
 * they are. A plan submitted with its agents may name one `orchestrator:…` (its tasks never meet the
 * orchestrator's own), and the plan as read must be sendable back.
 */
function namesOfEdit(session: EditedPlanSession): TaskNameForm {
  const kept = new Set([
    ...session.tasks.keys(),
    ...(session.waitingPlan?.phases.flatMap((phase) => phase.tasks.map((task) => task.name)) ?? []),
  ]);
  if (![...kept].some((name) => !EDITED_TASK_NAMES.isValid(name))) return EDITED_TASK_NAMES;
  return { ...EDITED_TASK_NAMES, isValid: (name) => kept.has(name) || EDITED_TASK_NAMES.isValid(name) };
}

/**
 * Parses and checks an edited plan exactly as a generated one is checked (checkGeneratedPhases:
 * tasks per phase, names, roles, dependencies that exist and are not in a later phase, cycles,
 * reused agents, per-role cap) and builds it the same way (each phase waits for the one before),
 * plus runners, the tasks of `session` that already started and, at a phase gate, where new tasks
 * go. Throws INVALID_PLAN listing every problem. A task that reuses an agent carries its name in `agent`, as a generated one does.
 */
export function validateEditedPlan(
  input: unknown,
  rules: EditedPlanRules,
  session: EditedPlanSession = NEW_SESSION,
): PlanBody {
  return checkEditedPlan(input, rules, session).plan;
}

/**
 * validateEditedPlan, also telling which task names were written another way and the names used
 * instead (as written → as used; "Design API" → "Design-API"), for the approval's answer, and
 * whether the edit is `session.waitingPlan` unchanged (then not checked: the caller approves the
 * waiting plan as it is, with the checks that approval makes).
 */
export function checkEditedPlan(
  input: unknown,
  rules: EditedPlanRules,
  session: EditedPlanSession = NEW_SESSION,
): { plan: PlanBody; renamedTasks: Record<string, string>; unchanged: boolean } {
  refuseOutsizedShape(input, session);
  const parsed = editedPlanSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map(
      (issue) => `${['plan', ...issue.path].join('.')}: ${issue.message}`,
    );
    throw new AppError('INVALID_PLAN', `The edited plan is not valid: ${issues.join('; ')}`, {
      details: issues,
    });
  }
  const named = normaliseTaskNames(
    parsed.data.phases.map((phase) => ({ ...phase, tasks: phase.tasks.map(toEditedTask) })),
    { earlierTaskNames: [], agentNames: session.agents.map((agent) => agent.name) },
    namesOfEdit(session),
  );
  if (!named.ok) {
    throw new AppError('INVALID_PLAN', `The edited plan is not valid: ${named.errors.join('; ')}`, {
      details: named.errors,
    });
  }
  const editedPhases = named.phases;
  const phases: PhaseToCheck[] = editedPhases.map((phase) => ({
    name: phase.name,
    tasks: phase.tasks.map((task) => toTaskToCheck(task, session, rules)),
  }));
  // The whole plan is checked, earlier phases included: nothing comes before its first phase.
  const checked = checkGeneratedPhases(phases, {
    isKnownRole: rules.isKnownRole,
    earlierTaskNames: [],
    previousPhaseSinks: [],
    agents: session.agents,
    limits: limitsForEdit(rules, session),
    ranTasks: new Set([...session.tasks.values()].filter((task) => task.started).map((task) => task.name)),
  });
  const body = checked.ok ? checked.plan : toPlanBody(phases, []);
  for (const task of body.phases.flatMap((phase) => phase.tasks) as GeneratedTask[]) {
    // A task's own agent is the default: only a reused one is named, as in a generated plan.
    if (task.agent === task.name) delete task.agent;
  }
  const renamedTasks = Object.fromEntries(named.renamed);
  if (session.waitingPlan !== undefined && isSamePlan(session.waitingPlan, body)) {
    return { plan: body, renamedTasks, unchanged: true };
  }
  const built = new Map(
    body.phases.flatMap((phase) => phase.tasks.map((task) => [task.name, task as GeneratedTask] as const)),
  );
  const phaseOf = new Map(
    body.phases.flatMap((phase, index) => phase.tasks.map((task) => [task.name, index] as const)),
  );
  // The phase count was checked before the parse (refuseOutsizedShape): the parse and the naming
  // keep every phase, so the plan has as many as the input.
  const errors = [
    ...checkInstructionLengths(
      editedPhases.flatMap((phase) => phase.tasks),
      session,
    ),
    ...(checked.ok ? [] : checked.errors),
    ...checkEdit(
      editedPhases.flatMap((phase) => phase.tasks),
      built,
      phaseOf,
      rules,
      session,
    ),
    ...checkGateEdit(editedPhases, session),
  ];
  if (errors.length > 0) {
    throw new AppError('INVALID_PLAN', `The edited plan is not valid: ${errors.join('; ')}`, {
      details: errors,
    });
  }
  return { plan: body, renamedTasks, unchanged: false };
}

export interface TaskChange {
  field: 'role' | 'instructions' | 'dependsOn' | 'runner' | 'agent' | 'phase';
  before: unknown;
  after: unknown;
}

/** A phase of a plan version, by its position (tasks' `phase` changes count positions too). */
export interface PhaseRef {
  index: number;
  name: string;
}

/** What changed in the phases between two plan versions, position by position. */
export interface PhaseDiff {
  /** Phases past the end of the previous version. */
  added: PhaseRef[];
  /** Phases of the previous version past the end of the new one. */
  removed: PhaseRef[];
  /** Phases at the same position with another name. */
  renamed: Array<{ index: number; before: string; after: string }>;
}

/** What changed between two plan versions, by task name. */
export interface PlanDiff {
  added: string[];
  removed: string[];
  changed: Array<{ name: string; changes: TaskChange[] }>;
  /** Set only when a phase was added, removed or renamed (a diff without it has the same phases). */
  phases?: PhaseDiff;
}

/** The phase changes between two versions, or null when both have the same phases (by name, in order). */
function diffPhases(before: PlanBody, after: PlanBody): PhaseDiff | null {
  const diff: PhaseDiff = { added: [], removed: [], renamed: [] };
  const length = Math.max(before.phases.length, after.phases.length);
  for (let index = 0; index < length; index++) {
    const was = before.phases[index]?.name;
    const now = after.phases[index]?.name;
    if (was === undefined) diff.added.push({ index, name: now as string });
    else if (now === undefined) diff.removed.push({ index, name: was });
    else if (was !== now) diff.renamed.push({ index, before: was, after: now });
  }
  return diff.added.length + diff.removed.length + diff.renamed.length > 0 ? diff : null;
}

function describeTaskChanges(before: GeneratedTask, after: GeneratedTask): TaskChange[] {
  const changes: TaskChange[] = [];
  if (before.role !== after.role) changes.push({ field: 'role', before: before.role, after: after.role });
  if (before.instructions !== after.instructions)
    changes.push({ field: 'instructions', before: before.instructions, after: after.instructions });
  if ([...before.dependsOn].sort().join('\n') !== [...after.dependsOn].sort().join('\n')) {
    changes.push({ field: 'dependsOn', before: before.dependsOn, after: after.dependsOn });
  }
  if ((before.runner ?? null) !== (after.runner ?? null))
    changes.push({ field: 'runner', before: before.runner ?? null, after: after.runner ?? null });
  if ((before.agent ?? null) !== (after.agent ?? null))
    changes.push({ field: 'agent', before: before.agent ?? null, after: after.agent ?? null });
  return changes;
}

/**
 * Compares two plan versions task by task (name is the identity) and phase by phase (position is
 * the identity: a phase renamed, added at the end or removed from it).
 */
export function diffPlans(before: PlanBody, after: PlanBody): PlanDiff {
  const index = (plan: PlanBody) =>
    new Map(
      plan.phases.flatMap((phase, phaseIndex) =>
        phase.tasks.map((task) => [task.name, { task, phaseIndex }] as const),
      ),
    );
  const old = index(before);
  const next = index(after);
  const diff: PlanDiff = { added: [], removed: [], changed: [] };
  for (const name of next.keys()) if (!old.has(name)) diff.added.push(name);
  for (const [name, was] of old) {
    const now = next.get(name);
    if (!now) {
      diff.removed.push(name);
      continue;
    }
    const changes = describeTaskChanges(was.task, now.task);
    if (was.phaseIndex !== now.phaseIndex)
      changes.push({ field: 'phase', before: was.phaseIndex, after: now.phaseIndex });
    if (changes.length > 0) diff.changed.push({ name, changes });
  }
  const phases = diffPhases(before, after);
  if (phases) diff.phases = phases;
  return diff;
}

/**
 * True when `after` changes nothing of `before`: the same phases (by name, in order) and no task
 * added, removed or changed in what diffPlans compares. The order in which a phase lists its tasks,
 * or a task its dependencies, does not count, as in the diff.
 */
export function isSamePlan(before: PlanBody, after: PlanBody): boolean {
  const diff = diffPlans(before, after);
  return (
    diff.phases === undefined &&
    diff.added.length === 0 &&
    diff.removed.length === 0 &&
    diff.changed.length === 0
  );
}
