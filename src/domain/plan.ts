// Builds and validates the plan of a session from what the caller submitted: names, strategy
// ordering (parallel / sequential / pipeline DAG), roles and runners. Pure: lookups are passed in.
import { AppError } from '../errors/app-error.ts';
import { checkRunnerAccess, type MayUseRunner, runnerNotAllowed } from './runner-access.ts';
import type { AgentSpec } from './session-input.ts';
import type { PlanBody, PlannedTask, Strategy } from './types.ts';

/**
 * Names of the orchestrator's own tasks start with this (`orchestrator:plan`, …). Generated task
 * names cannot contain ':', and an edited plan may not use the prefix, so they never clash.
 */
export const ORCHESTRATOR_TASK_PREFIX = 'orchestrator:';

export interface PlanCheckers {
  /** True when the role exists (built-in catalogue or tenant role). */
  isKnownRole(role: string): boolean;
  /** True when the runner is declared in the server config. */
  isKnownRunner(runner: string): boolean;
  /** True when the session's tenant may use the declared runner (`runnerAccess`). @defaultValue all */
  mayUseRunner?: MayUseRunner;
}

/**
 * The strategy used when the caller gives none: pipeline when any task names dependencies, or when
 * no agents are given (the orchestrator's plan is a dependency graph); otherwise parallel.
 */
export function resolveStrategy(strategy: Strategy | undefined, agents: readonly AgentSpec[]): Strategy {
  if (strategy) return strategy;
  if (agents.length === 0) return 'pipeline';
  return agents.some((agent) => (agent.depends_on?.length ?? 0) > 0) ? 'pipeline' : 'parallel';
}

/**
 * Turns explicit agent specs into a one-phase plan for `parallel`, `sequential` or `pipeline`.
 * Throws INVALID_PLAN (names, DAG), INVALID_ROLE, UNKNOWN_RUNNER or RUNNER_NOT_ALLOWED naming the
 * offending tasks.
 */
export function buildPlan(
  strategy: Strategy,
  agents: readonly AgentSpec[],
  checkers: PlanCheckers,
): PlanBody {
  if (strategy === 'adaptive') {
    throw new AppError('INVALID_PLAN', 'Strategy adaptive is planned by the orchestrator, not from agents');
  }
  const tasks = nameTasks(agents);
  if (strategy !== 'pipeline') {
    const withDeps = tasks.filter((task) => task.dependsOn.length > 0).map((task) => task.name);
    if (withDeps.length > 0) {
      throw new AppError(
        'INVALID_PLAN',
        `depends_on is only allowed with strategy pipeline (given on: ${withDeps.join(', ')})`,
        { details: { tasks: withDeps } },
      );
    }
  }
  if (strategy === 'sequential') {
    for (let i = 1; i < tasks.length; i++) tasks[i]!.dependsOn = [tasks[i - 1]!.name];
  }
  const body: PlanBody = { phases: [{ name: 'main', tasks }] };
  validatePlan(body, checkers);
  return body;
}

/**
 * Longest task name (TASK_NAME_PATTERN): a default name must be one a caller can write back, in
 * `depends_on`, an edited plan at approval or a retry's `rerun`.
 */
const MAX_TASK_NAME_CHARS = 64;

/** `<role>-<n>`, the role cut so that the name fits MAX_TASK_NAME_CHARS (roles have up to 64). */
function defaultTaskName(role: string, n: number): string {
  const suffix = `-${n}`;
  return `${role.slice(0, MAX_TASK_NAME_CHARS - suffix.length)}${suffix}`;
}

function nameTasks(agents: readonly AgentSpec[]): PlannedTask[] {
  const perRole = new Map<string, number>();
  const used = new Set(agents.flatMap((agent) => (agent.name ? [agent.name] : [])));
  return agents.map((agent) => {
    let name = agent.name;
    if (!name) {
      // Default names `<role>-<n>` skip names the caller used explicitly, and those given before
      // (two long roles cut to one prefix would otherwise get the same name).
      let n = perRole.get(agent.role) ?? 0;
      do n++;
      while (used.has(defaultTaskName(agent.role, n)));
      perRole.set(agent.role, n);
      name = defaultTaskName(agent.role, n);
      used.add(name);
    }
    const task: PlannedTask = {
      name,
      role: agent.role,
      instructions: agent.task,
      // Named twice, a dependency is still one (the store keeps one row per pair).
      dependsOn: [...new Set(agent.depends_on ?? [])],
    };
    if (agent.runner !== undefined) task.runner = agent.runner;
    return task;
  });
}

/** Checks a plan (also those produced by a planner): unique names, known refs, no cycles, roles, runners. */
export function validatePlan(body: PlanBody, checkers: PlanCheckers): void {
  const tasks = body.phases.flatMap((phase) => phase.tasks);
  if (tasks.length === 0) throw new AppError('INVALID_PLAN', 'The plan has no tasks');
  const seen = new Set<string>();
  const duplicates = new Set<string>();
  for (const task of tasks) {
    if (seen.has(task.name)) duplicates.add(task.name);
    seen.add(task.name);
  }
  if (duplicates.size > 0) {
    const names = [...duplicates];
    throw new AppError('INVALID_PLAN', `Duplicate task names: ${names.join(', ')}`, {
      details: { tasks: names },
    });
  }
  const unknownRefs = tasks.flatMap((task) =>
    task.dependsOn.filter((dep) => !seen.has(dep)).map((dep) => `${task.name} → ${dep}`),
  );
  if (unknownRefs.length > 0) {
    throw new AppError('INVALID_PLAN', `depends_on names unknown tasks: ${unknownRefs.join(', ')}`, {
      details: { references: unknownRefs },
    });
  }
  const cyclic = findCyclicTasks(tasks);
  if (cyclic.length > 0) {
    throw new AppError('INVALID_PLAN', `Dependency cycle between tasks: ${cyclic.join(', ')}`, {
      details: { tasks: cyclic },
    });
  }
  const badRoles = tasks.filter((task) => !checkers.isKnownRole(task.role));
  if (badRoles.length > 0) {
    throw new AppError(
      'INVALID_ROLE',
      `Unknown role ${badRoles.map((task) => `'${task.role}' (task ${task.name})`).join(', ')}; the roles are listed by GET /v1/roles (MCP: list_roles)`,
      { details: { tasks: badRoles.map((task) => task.name) } },
    );
  }
  const badRunners = tasks.filter(
    (task) => task.runner !== undefined && !checkers.isKnownRunner(task.runner),
  );
  if (badRunners.length > 0) {
    throw new AppError(
      'UNKNOWN_RUNNER',
      `Runner ${badRunners.map((task) => `'${task.runner}' (task ${task.name})`).join(', ')} is not declared in the server config`,
      { details: { tasks: badRunners.map((task) => task.name) } },
    );
  }
  const refused = checkRunnerAccess(tasks, checkers.mayUseRunner);
  if (refused) throw runnerNotAllowed(refused);
}

/** Names of tasks on or behind a cycle (Kahn's algorithm: whatever cannot be ordered), in plan order. */
export function findCyclicTasks(tasks: readonly PlannedTask[]): string[] {
  const indegree = new Map(tasks.map((task) => [task.name, task.dependsOn.length]));
  const dependants = new Map<string, string[]>();
  for (const task of tasks) {
    for (const dep of task.dependsOn) dependants.set(dep, [...(dependants.get(dep) ?? []), task.name]);
  }
  const queue = tasks.filter((task) => task.dependsOn.length === 0).map((task) => task.name);
  const ordered = new Set<string>();
  while (queue.length > 0) {
    const name = queue.shift()!;
    ordered.add(name);
    for (const next of dependants.get(name) ?? []) {
      const left = indegree.get(next)! - 1;
      indegree.set(next, left);
      if (left === 0) queue.push(next);
    }
  }
  return tasks.filter((task) => !ordered.has(task.name)).map((task) => task.name);
}

/** Names of the tasks no other task depends on (their outputs form the session result). */
export function findSinkTasks(
  tasks: ReadonlyArray<{ name: string; dependsOn: readonly string[] }>,
): string[] {
  const depended = new Set(tasks.flatMap((task) => task.dependsOn));
  return tasks.filter((task) => !depended.has(task.name)).map((task) => task.name);
}
