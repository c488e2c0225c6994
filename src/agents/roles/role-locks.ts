// The custom roles a write names, checked inside the transaction that writes tasks of them, so the
// check and the write are one step for DELETE /v1/roles/:name (role-service.ts deleteRole).
import { type Kysely, sql } from 'kysely';
import { isPostgres } from '../../store/advisory-lock.ts';
import { findBuiltInRole } from './catalogue.ts';

/**
 * The roles among `names` that are neither built in nor one of the tenant's custom roles now, in
 * name order; built-in names cost no query. Call it inside the transaction that writes tasks of
 * the roles. On PostgreSQL the custom roles found stay locked (`FOR KEY SHARE`) until that
 * transaction ends: a delete of one waits for the commit, then counts the tasks written and is
 * refused. SQLite needs no lock: its write transactions (the write queue's, a delete's) run one
 * after the other on the one connection.
 */
// biome-ignore lint/suspicious/noExplicitAny: reads the custom_roles table of any schema view
export async function findMissingRoles(trx: Kysely<any>, tenantId: string, names: Iterable<string>) {
  const custom = [...new Set(names)].filter((name) => findBuiltInRole(name) === undefined).sort();
  if (custom.length === 0) return [];
  const lock = isPostgres(trx) ? sql` for key share` : sql``;
  const { rows } = await sql<{ name: string }>`
    select name from custom_roles
    where tenant_id = ${tenantId} and name in (${sql.join(custom)})
    order by name${lock}`.execute(trx);
  const found = new Set(rows.map((row) => row.name));
  return custom.filter((name) => !found.has(name));
}

/** "'a' (task x, task y), 'b' (task z)": the missing roles of a refusal and the tasks that name them. */
export function describeMissingRoles(
  missing: readonly string[],
  tasks: ReadonlyArray<{ name: string; role: string }>,
): string {
  return missing
    .map((role) => {
      const named = tasks.filter((task) => task.role === role).map((task) => `task ${task.name}`);
      return `'${role}' (${named.join(', ')})`;
    })
    .join(', ');
}

/**
 * A session's error when a plan the orchestrator made (`what`: the first plan, a phase gate's next
 * phase) names custom roles deleted after the planner checked them; leads with the code clients
 * match on, as the orchestrator's other session errors do (`INVALID_PLAN: …`).
 */
export function deletedRolesError(
  missing: readonly string[],
  tasks: ReadonlyArray<{ name: string; role: string }>,
  what: string,
): string {
  return `INVALID_ROLE: ${what} names role ${describeMissingRoles(missing, tasks)}, deleted while the orchestrator was planning; no task of it was started. Retry the session (it plans anew with the roles there are then: create the role again first to have it used), or submit the objective again`;
}
