// Which runners a tenant's sessions may use (`runnerAccess` in the config): checked when a session
// or a plan names a runner, and again by the command runtime before it starts one.
import type { RunnerAccessConfig } from '../../../config/runner-access-schema.ts';
import { AppError } from '../../../errors/app-error.ts';

/** Whether tenant `tenantId` may use the declared runner `runner`. */
export type RunnerAccessCheck = (tenantId: string, runner: string) => boolean;

/**
 * The check for a `runnerAccess` section: the tenant's own list if it has one, else `default` if
 * set, else every runner (a config without the section keeps working as before).
 */
export function createRunnerAccessCheck(config: RunnerAccessConfig): RunnerAccessCheck {
  return (tenantId, runner) => {
    const allowed = Object.hasOwn(config.tenants, tenantId) ? config.tenants[tenantId] : config.default;
    return allowed === undefined || allowed.includes(runner);
  };
}

/** The refusal of a runner the tenant may not use; `tasks` names the tasks that asked for it. */
export function runnerNotAllowed(tenantId: string, runners: readonly string[], tasks?: string[]): AppError {
  const named = [...new Set(runners)].map((runner) => `'${runner}'`).join(', ');
  return new AppError(
    'RUNNER_NOT_ALLOWED',
    `Runner ${named} may not be used by tenant ${tenantId} (the server's runnerAccess config); ask the operator, or pick another runner`,
    tasks === undefined ? {} : { details: { tasks } },
  );
}
