// Validates an orchestrator-produced plan and turns it into the engine's PlanBody. Collects every
// problem (not just the first) so one repair round can fix them all. A plan a person edited at
// approval goes through the same checks and construction (planner-approval.ts). Pure.

import { findCyclicTasks } from '../domain/plan.ts';
import type { PlanBody, PlannedTask } from '../domain/types.ts';
import type { LlmPlannedTask } from './planner-schema.ts';

/** A task of a generated plan: the engine's PlannedTask plus the agent it reuses, if any. */
export interface GeneratedTask extends PlannedTask {
  /** Name of an existing agent of the session this task is given to (context continuity). */
  agent?: string;
}

/** An agent that already exists in the session (the registry the orchestrator sees). */
export interface ExistingAgent {
  name: string;
  role: string;
}

export interface PlanLimits {
  maxTasksPerPhase: number;
  maxAgentsPerRole: number;
  /**
   * Agents per role a plan may have even above maxAgentsPerRole: what the plan waiting for approval
   * already had (an edit keeps the size the plan was accepted with, e.g. one submitted with its agents).
   */
  agentsPerRoleAccepted?: ReadonlyMap<string, number>;
  /**
   * Tasks per phase a plan may have even above maxTasksPerPhase, likewise, by the phase's position
   * (a plan's phases are a list; names may repeat, and an edit may rename one).
   */
  tasksPerPhaseAccepted?: readonly number[];
}

export interface PlanContext {
  isKnownRole(role: string): boolean;
  /** Tasks of earlier phases (names and whether they are sinks of the previous phase). */
  earlierTaskNames: readonly string[];
  /** Sink tasks of the phase before the first new one: the phase barrier. */
  previousPhaseSinks: readonly string[];
  agents: readonly ExistingAgent[];
  limits: PlanLimits;
  /**
   * Tasks of the plan that already ran (an edit at a phase gate): their role is not checked. A custom
   * role may be deleted once no unfinished task has it, and these never run again.
   */
  ranTasks?: ReadonlySet<string>;
}

export type PlanCheck = { ok: true; plan: PlanBody } | { ok: false; errors: string[] };

/**
 * A task to check: the orchestrator's, or one of a plan edited at approval, which may also name a
 * runner. A runner task runs a command, not an LLM agent, so it does not count towards
 * max_agents_per_role (generated tasks never have one).
 */
export type TaskToCheck = LlmPlannedTask & { runner?: string };

/** A phase to check: a generated one (LlmPhase) or one of an edited plan. */
export interface PhaseToCheck {
  name: string;
  tasks: readonly TaskToCheck[];
}

/** A role name as written in the catalogue's style: lower case, words joined by `_`. */
export function roleKey(role: string): string {
  return role
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
}

/**
 * The phases with each task's role spelled as in the catalogue when the model wrote a known role
 * another way ("Engineer", "Backend Engineer", "QA"): the meaning is unambiguous, and a repair round
 * for spelling would cost a call (and the session, if the model keeps writing it so). Roles that
 * match nothing are left as written, for the check to report.
 */
export function withCatalogueRoleNames<P extends { tasks: readonly LlmPlannedTask[] }>(
  phases: readonly P[],
  roleNames: ReadonlySet<string>,
): P[] {
  const byKey = new Map([...roleNames].map((name) => [roleKey(name), name]));
  return phases.map((phase) => ({
    ...phase,
    tasks: phase.tasks.map((task) =>
      roleNames.has(task.role) ? task : { ...task, role: byKey.get(roleKey(task.role)) ?? task.role },
    ),
  }));
}

/**
 * The phases with a blank `agent` ("", spaces) read as null, a new agent: models that fill every
 * field (as strict structured outputs ask) write an empty string for "none" as often as null, and a
 * repair round for it cost a call (and the session, if the model kept writing it so).
 */
export function withBlankAgentsAsNew<P extends { tasks: readonly LlmPlannedTask[] }>(
  phases: readonly P[],
): P[] {
  return phases.map((phase) => ({
    ...phase,
    tasks: phase.tasks.map((task) =>
      task.agent !== null && task.agent.trim() === '' ? { ...task, agent: null } : task,
    ),
  }));
}

function formatInstructions(task: LlmPlannedTask): string {
  const deliverables = task.deliverables.filter((item) => item.trim().length > 0);
  if (deliverables.length === 0) return task.instructions;
  return `${task.instructions}\n\nDeliverables:\n${deliverables.map((item) => `- ${item}`).join('\n')}`;
}

/**
 * Checks phases produced by the orchestrator (or edited at approval): task count per phase, unique
 * names (also against earlier phases), known roles, dependencies that exist and are not in a later
 * phase, no cycles, reused agents that exist with the same role, and the per-role agent cap.
 *
 * Tasks of the first new phase wait for the sinks of the previous phase and each later phase waits
 * for the sinks of the one before (phase barrier), in addition to their own `depends_on`.
 */
export function checkGeneratedPhases(phases: readonly PhaseToCheck[], ctx: PlanContext): PlanCheck {
  const errors: string[] = [];
  const earlier = new Set(ctx.earlierTaskNames);
  const seen = new Set<string>();
  const phaseOf = new Map<string, number>();
  phases.forEach((phase, index) => {
    const cap = Math.max(ctx.limits.maxTasksPerPhase, ctx.limits.tasksPerPhaseAccepted?.[index] ?? 0);
    if (phase.tasks.length > cap) {
      errors.push(`phase "${phase.name}" has ${phase.tasks.length} tasks; at most ${cap} are allowed`);
    }
    for (const task of phase.tasks) {
      if (seen.has(task.name) || earlier.has(task.name))
        errors.push(`task name "${task.name}" is used more than once`);
      seen.add(task.name);
      phaseOf.set(task.name, index);
    }
  });
  const agentsByName = new Map(ctx.agents.map((agent) => [agent.name, agent]));
  const newAgentsPerRole = new Map<string, number>();
  for (const [index, phase] of phases.entries()) {
    for (const task of phase.tasks) {
      if (!ctx.ranTasks?.has(task.name) && !ctx.isKnownRole(task.role))
        errors.push(`task "${task.name}": unknown role "${task.role}"`);
      for (const dep of task.depends_on) {
        if (dep === task.name) errors.push(`task "${task.name}" depends on itself`);
        else if (!seen.has(dep) && !earlier.has(dep))
          errors.push(`task "${task.name}" depends on unknown task "${dep}"`);
        else if ((phaseOf.get(dep) ?? -1) > index)
          errors.push(`task "${task.name}" depends on "${dep}" of a later phase`);
      }
      if (task.agent !== null) {
        const agent = agentsByName.get(task.agent);
        if (!agent) errors.push(`task "${task.name}" reuses unknown agent "${task.agent}"`);
        else if (agent.role !== task.role) {
          errors.push(
            `task "${task.name}" has role "${task.role}" but reuses agent "${task.agent}" of role "${agent.role}"`,
          );
        }
      } else if (task.runner === undefined) {
        newAgentsPerRole.set(task.role, (newAgentsPerRole.get(task.role) ?? 0) + 1);
      }
    }
  }
  for (const [role, added] of newAgentsPerRole) {
    const existing = ctx.agents.filter((agent) => agent.role === role).length;
    const cap = Math.max(ctx.limits.maxAgentsPerRole, ctx.limits.agentsPerRoleAccepted?.get(role) ?? 0);
    if (existing + added > cap) {
      const accepted = cap > ctx.limits.maxAgentsPerRole ? ', as many as the waiting plan has' : '';
      errors.push(
        `role "${role}" would have ${existing + added} agents; at most ${cap} per role (max_agents_per_role${accepted}) — reuse an existing agent or merge tasks`,
      );
    }
  }
  // Tasks of one name (reported above) are one node with all their dependencies: read by name, the
  // last of them hid a cycle through another, found only in a later repair round.
  const dependsOn = new Map<string, Set<string>>();
  for (const task of phases.flatMap((phase) => phase.tasks)) {
    const deps = dependsOn.get(task.name) ?? new Set<string>();
    for (const dep of task.depends_on) if (seen.has(dep)) deps.add(dep);
    dependsOn.set(task.name, deps);
  }
  const cyclic = findCyclicTasks(
    [...dependsOn].map(([name, deps]) => ({ name, role: '', instructions: '', dependsOn: [...deps] })),
  );
  if (cyclic.length > 0) errors.push(`dependency cycle between tasks: ${cyclic.join(', ')}`);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, plan: toPlanBody(phases, ctx.previousPhaseSinks) };
}

/**
 * An agent works on one task at a time: its turns form one conversation, and its inbox is read by
 * one turn. Tasks of a phase that reuse the same agent, where neither depends on the other, are
 * ordered as the plan lists them (the later one depends on the earlier), so that every pair of them
 * is ordered. An edge between two tasks neither of which reaches the other cannot create a cycle.
 */
export function orderTasksOfOneAgent(tasks: readonly TaskToCheck[]): TaskToCheck[] {
  const dependsOn = new Map(tasks.map((task) => [task.name, new Set(task.depends_on)]));
  // What each task waits for, directly or not, worked out once when first asked (an edited plan may
  // have 200 tasks of one agent in a phase: a walk of the graph per pair took seconds of CPU).
  const reached = new Map<string, Set<string>>();
  const reachedFrom = (from: string): Set<string> => {
    const known = reached.get(from);
    if (known) return known;
    const found = new Set<string>();
    const stack = [...(dependsOn.get(from) ?? [])];
    while (stack.length > 0) {
      const name = stack.pop()!;
      if (found.has(name)) continue;
      found.add(name);
      stack.push(...(reached.get(name) ?? dependsOn.get(name) ?? []));
    }
    reached.set(from, found);
    return found;
  };
  const reaches = (from: string, to: string): boolean => from === to || reachedFrom(from).has(to);
  const earlierOfAgent = new Map<string, string[]>();
  for (const task of tasks) {
    if (task.agent === null) continue;
    const earlier = earlierOfAgent.get(task.agent) ?? [];
    let added = false;
    // Latest first: once the task waits for it, the earlier ones it already waits for need no edge.
    for (const previous of [...earlier].reverse()) {
      if (!reaches(task.name, previous) && !reaches(previous, task.name)) {
        dependsOn.get(task.name)!.add(previous);
        // An edge out of the task: what it reaches grows by what `previous` reaches (which does not
        // reach the task, so is not changed by it); what reaches the task is worked out again.
        const own = reachedFrom(task.name);
        own.add(previous);
        for (const name of reachedFrom(previous)) own.add(name);
        added = true;
      }
    }
    if (added) {
      for (const [name, set] of reached) if (name !== task.name && set.has(task.name)) reached.delete(name);
    }
    earlier.push(task.name);
    earlierOfAgent.set(task.agent, earlier);
  }
  return tasks.map((task) => ({ ...task, depends_on: [...dependsOn.get(task.name)!] }));
}

function sinksOf(tasks: readonly TaskToCheck[]): string[] {
  const depended = new Set(tasks.flatMap((task) => task.depends_on));
  return tasks.filter((task) => !depended.has(task.name)).map((task) => task.name);
}

/**
 * Builds the engine's plan from checked phases: deliverables folded into the instructions, and each
 * task waits for the sinks of the phase before its own (the phase barrier) besides its `depends_on`.
 */
export function toPlanBody(phases: readonly PhaseToCheck[], previousPhaseSinks: readonly string[]): PlanBody {
  let barrier = [...previousPhaseSinks];
  return {
    phases: phases.map((unordered) => {
      const phase = { name: unordered.name, tasks: orderTasksOfOneAgent(unordered.tasks) };
      const tasks = phase.tasks.map((task): GeneratedTask => {
        const dependsOn = [...new Set([...barrier, ...task.depends_on])];
        const planned: GeneratedTask = {
          name: task.name,
          role: task.role,
          instructions: formatInstructions(task),
          dependsOn,
        };
        if (task.runner !== undefined) planned.runner = task.runner;
        if (task.agent !== null) planned.agent = task.agent;
        return planned;
      });
      barrier = sinksOf(phase.tasks);
      return { name: phase.name, tasks };
    }),
  };
}
