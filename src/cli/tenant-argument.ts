// A tenant named on the command line (`maos keys --tenant`, `maos tenants purge|export <tenant>`).
import { CliError, EXIT } from './exit-codes.ts';

/**
 * `tenant`, checked: an empty one names no tenant, and a padded one (` acme`) a tenant of its own
 * that reads like `acme`. `label` names it in the message (`--tenant`, `the tenant`).
 */
export function checkedTenant(tenant: string, label: string): string {
  if (tenant.trim() === '') throw new CliError('USAGE', `${label} must not be empty`, EXIT.USAGE);
  if (tenant.trim() !== tenant) {
    throw new CliError('USAGE', `${label} "${tenant}" must not start or end with spaces`, EXIT.USAGE);
  }
  return tenant;
}
