// Plan approval helpers: validating a plan a person edited before approving it, and the diff
// between two plan versions (shown by GET /v1/sessions/:id/plans). Pure.

import { z } from 'zod';
import { findCyclicTasks } from '../domain/plan.ts';
import type { PlanBody, PlannedTask } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';

const taskNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:#-]{0,63}$/, 'must be 1-64 letters, digits or _.:#-');

/** The body of an edited plan in `POST /v1/sessions/:id/approve` (`{ plan: … }`). */
export const editedPlanSchema = z.strictObject({
  phases: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(64),
        tasks: z
          .array(
            z.strictObject({
              name: taskNameSchema,
              role: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a lowercase role name'),
              instructions: z.string().min(1).max(20_000),
              depends_on: z.array(taskNameSchema).max(100).default([]),
              runner: z
                .string()
                .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/)
                .optional(),
            }),
          )
          .min(1)
          .max(200),
      }),
    )
    .min(1)
    .max(20),
});

export interface EditedPlanRules {
  isKnownRole(role: string): boolean;
  isKnownRunner(runner: string): boolean;
  maxAgentsPerRole: number;
  /** Tasks that already ran or are running: an edit may not remove or change them. */
  lockedTasks?: ReadonlyMap<string, PlannedTask>;
}

/**
 * Parses and checks an edited plan the same way a generated one is checked (names, references,
 * cycles, roles, runners, per-role cap); throws INVALID_PLAN listing every problem.
 */
export function validateEditedPlan(input: unknown, rules: EditedPlanRules): PlanBody {
  const parsed = editedPlanSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `plan.${issue.path.join('.')}: ${issue.message}`);
    throw new AppError('INVALID_PLAN', `The edited plan is not valid: ${issues.join('; ')}`, {
      details: issues,
    });
  }
  const body: PlanBody = {
    phases: parsed.data.phases.map((phase) => ({
      name: phase.name,
      tasks: phase.tasks.map((task) => {
        const planned: PlannedTask = {
          name: task.name,
          role: task.role,
          instructions: task.instructions,
          dependsOn: task.depends_on,
        };
        if (task.runner !== undefined) planned.runner = task.runner;
        return planned;
      }),
    })),
  };
  const errors: string[] = [];
  const tasks = body.phases.flatMap((phase) => phase.tasks);
  const names = new Set<string>();
  for (const task of tasks) {
    if (names.has(task.name)) errors.push(`task name "${task.name}" is used more than once`);
    names.add(task.name);
    if (!rules.isKnownRole(task.role)) errors.push(`task "${task.name}": unknown role "${task.role}"`);
    if (task.runner !== undefined && !rules.isKnownRunner(task.runner)) {
      errors.push(`task "${task.name}": runner "${task.runner}" is not declared in the server config`);
    }
  }
  for (const task of tasks) {
    for (const dep of task.dependsOn)
      if (!names.has(dep)) errors.push(`task "${task.name}" depends on unknown task "${dep}"`);
  }
  const cyclic = findCyclicTasks(
    tasks.map((task) => ({ ...task, dependsOn: task.dependsOn.filter((dep) => names.has(dep)) })),
  );
  if (cyclic.length > 0) errors.push(`dependency cycle between tasks: ${cyclic.join(', ')}`);
  const perRole = new Map<string, number>();
  for (const task of tasks)
    if (task.runner === undefined) perRole.set(task.role, (perRole.get(task.role) ?? 0) + 1);
  for (const [role, count] of perRole) {
    if (count > rules.maxAgentsPerRole)
      errors.push(
        `role "${role}" has ${count} agents; at most ${rules.maxAgentsPerRole} (max_agents_per_role)`,
      );
  }
  for (const [name, locked] of rules.lockedTasks ?? []) {
    const edited = tasks.find((task) => task.name === name);
    if (!edited) errors.push(`task "${name}" has already started and cannot be removed`);
    else if (describeTaskChanges(locked, edited).length > 0)
      errors.push(`task "${name}" has already started and cannot be changed`);
  }
  if (errors.length > 0) {
    throw new AppError('INVALID_PLAN', `The edited plan is not valid: ${errors.join('; ')}`, {
      details: errors,
    });
  }
  return body;
}

export interface TaskChange {
  field: 'role' | 'instructions' | 'dependsOn' | 'runner' | 'phase';
  before: unknown;
  after: unknown;
}

/** What changed between two plan versions, by task name. */
export interface PlanDiff {
  added: string[];
  removed: string[];
  changed: Array<{ name: string; changes: TaskChange[] }>;
}

function describeTaskChanges(before: PlannedTask, after: PlannedTask): TaskChange[] {
  const changes: TaskChange[] = [];
  if (before.role !== after.role) changes.push({ field: 'role', before: before.role, after: after.role });
  if (before.instructions !== after.instructions)
    changes.push({ field: 'instructions', before: before.instructions, after: after.instructions });
  if ([...before.dependsOn].sort().join('\n') !== [...after.dependsOn].sort().join('\n')) {
    changes.push({ field: 'dependsOn', before: before.dependsOn, after: after.dependsOn });
  }
  if ((before.runner ?? null) !== (after.runner ?? null))
    changes.push({ field: 'runner', before: before.runner ?? null, after: after.runner ?? null });
  return changes;
}

/** Compares two plan versions task by task (name is the identity). */
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
  return diff;
}
