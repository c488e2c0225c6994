// The `runnerAccess` config section: which of the declared runners each tenant's sessions may run.
// Without it every tenant may use every runner, as before the section existed.
import { z } from 'zod';

/** A runner name as `runners` keys are written. */
const runnerName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/);

export const runnerAccessConfigSchema = z
  .strictObject({
    default: z
      .array(runnerName)
      .optional()
      .describe(
        'Runners the sessions of a tenant without an entry in `tenants` may use; `[]` = none. Unset, they may use every declared runner. @defaultValue every runner',
      ),
    tenants: z
      .record(z.string().min(1).max(128), z.array(runnerName))
      .default({})
      .describe(
        'Runners per tenant id, instead of `default` (`[]` = none). A tenant id `__proto__` is refused at start (it cannot be kept as a key).',
      ),
  })
  .default({ tenants: {} })
  .describe(
    'Which runners each tenant may use (allow-lists). A session naming another is refused with 403 RUNNER_NOT_ALLOWED; a task of one that comes to run anyway (a plan from before a change) fails with that code instead of running.',
  );

export type RunnerAccessConfig = z.infer<typeof runnerAccessConfigSchema>;

/**
 * A CONFIG_INVALID issue for each runner `runnerAccess` names that `runners` does not declare (a
 * typo would otherwise take that runner from the tenant without a word).
 */
export function refineRunnerAccess(
  config: { runners: Record<string, unknown>; runnerAccess: RunnerAccessConfig },
  ctx: { addIssue(issue: { code: 'custom'; path: Array<string | number>; message: string }): void },
): void {
  const lists: Array<[Array<string | number>, readonly string[]]> = [];
  if (config.runnerAccess.default) lists.push([['runnerAccess', 'default'], config.runnerAccess.default]);
  for (const [tenant, names] of Object.entries(config.runnerAccess.tenants)) {
    lists.push([['runnerAccess', 'tenants', tenant], names]);
  }
  for (const [path, names] of lists) {
    for (const [index, name] of names.entries()) {
      if (Object.hasOwn(config.runners, name)) continue;
      ctx.addIssue({
        code: 'custom',
        path: [...path, index],
        message: `runner ${name} is not declared under runners`,
      });
    }
  }
}
