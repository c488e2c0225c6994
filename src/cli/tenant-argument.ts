// A tenant named on the command line (`maos keys --tenant`, `maos tenants purge|export <tenant>`,
// `maos audit export --tenant`): checked by the rule of every tenant id (domain/tenant-id.ts).
import { tenantIdProblem } from '../domain/tenant-id.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { showControlsInLine } from './output.ts';

/**
 * `tenant` checked as an id to create data under (`maos keys create --tenant`): an empty one names no
 * tenant, a padded one (` acme`) a tenant of its own that reads like `acme`, and one with a control
 * character prints as another. `label` names it in the message (`--tenant`, `the tenant`).
 */
export function checkedTenant(tenant: string, label: string): string {
  const problem = tenantIdProblem(tenant);
  if (problem !== null) throw new CliError('USAGE', describeProblem(tenant, label, problem), EXIT.USAGE);
  return tenant;
}

/**
 * `tenant` checked as far as it can be before the store is open, for a command that reaches a
 * tenant's stored data (purge, export, list): only an empty one is refused here. One the rule
 * refuses otherwise is then given to checkStoredTenant: OIDC tenant claims were not held to the rule
 * before it was applied at sign-in, so a padded tenant may hold data that must stay exportable,
 * erasable and listable.
 */
export function namedTenant(tenant: string, label: string): string {
  if (tenant.trim() === '') throw new CliError('USAGE', `${label} must not be empty`, EXIT.USAGE);
  return tenant;
}

/**
 * Refuses `tenant` (a namedTenant) when the rule of tenant ids refuses it and no tenant of exactly
 * that id is stored (`isStored`): a typo's padding, not a tenant that came in before the rule.
 */
export async function checkStoredTenant(
  tenant: string,
  label: string,
  isStored: (tenant: string) => Promise<boolean>,
): Promise<void> {
  const problem = tenantIdProblem(tenant);
  if (problem === null || (await isStored(tenant))) return;
  throw new CliError(
    'USAGE',
    `${describeProblem(tenant, label, problem)} (no tenant of exactly that id is stored)`,
    EXIT.USAGE,
  );
}

/**
 * `tenant` as a message shows it: quoted with its padding visible when the rule refuses it, and its
 * control characters as escapes (showControlsInLine), never sent to the terminal.
 */
export function shownTenant(tenant: string): string {
  if (tenantIdProblem(tenant) === null) return tenant;
  return `"${showControlsInLine(tenant.replace(/["\\]/g, '\\$&'))}"`;
}

function describeProblem(tenant: string, label: string, problem: string): string {
  return tenant.trim() === '' ? `${label} ${problem}` : `${label} ${shownTenant(tenant)} ${problem}`;
}
