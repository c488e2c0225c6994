// Which runners a tenant's sessions may use, as the `runnerAccess` config says; the check that
// applies it, and its message, is domain/runner-access.ts.
import type { RunnerAccessConfig } from '../../../config/runner-access-schema.ts';

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
