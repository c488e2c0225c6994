// May a tenant's tasks use the runners they name (the `runnerAccess` allow-lists)? The one check and
// the one message of every place that asks: a new session's agents, a plan approved as it waits or
// edited, a retry, and the command runtime before it starts a runner. Pure: the lookup is passed in.
import { AppError } from '../errors/app-error.ts';

/** Whether the tenant in question may use the declared runner `runner`. */
export type MayUseRunner = (runner: string) => boolean;

/** A task as the check reads it: its name, and the runner it names (none: an LLM task). */
export interface RunnerTask {
  name: string;
  runner?: string | null | undefined;
}

/** Tasks naming runners the tenant may not use, and the message that says which. */
export interface RunnerRefusal {
  /** Names of the refused tasks, in the order given. */
  tasks: string[];
  /** `Runner 'deploy' (task ship), … may not be used by your tenant (…)`. */
  message: string;
}

/**
 * The tasks among `tasks` whose runner `mayUseRunner` refuses, or null when it refuses none (or no
 * check is given: every tenant may use every runner). Tasks without a runner are not checked; nor is
 * whether a runner is declared (UNKNOWN_RUNNER, which the callers check first).
 */
export function checkRunnerAccess(
  tasks: Iterable<RunnerTask>,
  mayUseRunner: MayUseRunner | undefined,
): RunnerRefusal | null {
  if (mayUseRunner === undefined) return null;
  const refused: Array<{ name: string; runner: string }> = [];
  for (const task of tasks) {
    const runner = task.runner;
    if (runner !== undefined && runner !== null && !mayUseRunner(runner))
      refused.push({ name: task.name, runner });
  }
  if (refused.length === 0) return null;
  const named = refused.map((task) => `'${task.runner}' (task ${task.name})`).join(', ');
  return {
    tasks: refused.map((task) => task.name),
    message: `Runner ${named} may not be used by your tenant (the server's runnerAccess config); ask the operator, or pick another runner`,
  };
}

/**
 * The 403 RUNNER_NOT_ALLOWED of a refusal, the refused tasks in `details.tasks` (a new session's
 * agents, a retry, a run). A plan approval lists the message among its INVALID_PLAN problems instead.
 */
export function runnerNotAllowed(refusal: RunnerRefusal): AppError {
  return new AppError('RUNNER_NOT_ALLOWED', refusal.message, { details: { tasks: refusal.tasks } });
}
