// Roles a tenant can use: the built-in catalogue plus the tenant's custom roles (POST /v1/roles).
// Validates custom roles, stores them, and answers lookups for the planner, runtime and API.

import { sql } from 'kysely';
import { z } from 'zod';
import { trimmedLine, trimmedText } from '../../domain/trimmed-text.ts';
import { ORCHESTRATOR_ROLE } from '../../engine/planner-continuation.ts';
import { AppError } from '../../errors/app-error.ts';
import { isPostgres, LOCK_KEYS } from '../../store/advisory-lock.ts';
import { tenantLockKey } from '../../store/session-locks.ts';
import { readStoredNames } from '../../store/stored-lists.ts';
import type { LlmDb } from '../providers/llm-tables.ts';
import { BUILT_IN_ROLES, findBuiltInRole } from './catalogue.ts';
import type { RoleDefinition } from './role.ts';

/** Custom roles per tenant; a bound keeps the planner prompt (which lists every role) small. */
export const MAX_CUSTOM_ROLES_PER_TENANT = 50;

/** The body of `POST /v1/roles`. */
export const createRoleInputSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9_]{1,63}$/, 'must be 2-64 lowercase letters, digits or _ and start with a letter')
    .describe('Identifier used in plans, e.g. `compliance_officer`.'),
  description: trimmedText(10, 300).describe('One sentence the orchestrator matches tasks against.'),
  instructions: trimmedText(20, 20_000).describe(
    'The system prompt: goal, responsibilities, deliverable format.',
  ),
  capabilities: z.array(trimmedLine(1, 80)).max(20).default([]).describe('What this role is good at.'),
});

export type CreateRoleInput = z.input<typeof createRoleInputSchema>;

export interface RoleService {
  /**
   * Built-in roles first, then the tenant's custom roles by name (code point order, the same on
   * both stores); read through `db` when given (a caller's transaction, e.g. a plan approval that
   * must see a delete that committed before it).
   * On PostgreSQL the custom roles read through `db` stay locked (`FOR KEY SHARE`) until that
   * transaction ends, so a delete of one waits for it and then counts the tasks it wrote.
   */
  listRoles(tenantId: string, db?: LlmDb): Promise<RoleDefinition[]>;
  /** A built-in or custom role by exact name. */
  findRole(tenantId: string, name: string): Promise<RoleDefinition | undefined>;
  /** Validates and stores a custom role; CONFLICT when the name is taken. */
  createRole(tenantId: string, principalId: string, input: unknown): Promise<RoleDefinition>;
  /** Deletes a custom role; ROLE_NOT_FOUND when there is none, INVALID_STATE for built-in ones. */
  deleteRole(tenantId: string, name: string): Promise<void>;
}

function toDefinition(row: {
  name: string;
  description: string;
  capabilities: string;
  instructions: string;
}): RoleDefinition {
  return {
    name: row.name,
    description: row.description,
    // None when they cannot be read (a hand edit of the row gone wrong).
    capabilities: readStoredNames(row.capabilities),
    instructions: row.instructions,
    builtIn: false,
  };
}

/** Sessions listed in the refusal of a delete: enough to act on, a bounded message. */
const MAX_USERS_LISTED = 5;

/**
 * Sessions that are running (or pending, planning, paused) with a task of the role still to finish:
 * its run resolves the role when it starts, so it would fail with an unknown role. Sessions waiting
 * for approval are not counted: their approval checks the roles and takes an edited plan.
 */
async function findSessionsRunningRole(db: LlmDb, tenantId: string, role: string): Promise<string[]> {
  const { rows } = await sql<{ session_id: string }>`
    select distinct t.session_id from sessions s join tasks t on t.session_id = s.id
    where s.tenant_id = ${tenantId}
      and s.status in ('pending', 'planning', 'running', 'paused')
      and t.role = ${role}
      and t.status in ('pending', 'ready', 'leased', 'running')
    order by t.session_id
    limit ${MAX_USERS_LISTED}`.execute(db);
  return rows.map((row) => row.session_id);
}

/**
 * Locks (PostgreSQL, in id order as lockSessions does) the rows of the tenant's sessions not ended
 * that have an unfinished task of the role, those waiting for approval included: an approval takes
 * the same session lock before it reads the roles.
 */
async function lockSessionsWithRole(db: LlmDb, tenantId: string, role: string): Promise<void> {
  if (!isPostgres(db)) return;
  await sql`
    select s.id from sessions s
    where s.tenant_id = ${tenantId}
      and s.status not in ('completed', 'failed', 'cancelled')
      and exists (
        select 1 from tasks t where t.session_id = s.id and t.role = ${role}
          and t.status in ('pending', 'ready', 'leased', 'running'))
    order by s.id
    for no key update of s`.execute(db);
}

/** Makes a tenant's role creates take turns until the transaction ends (PostgreSQL; see createRole). */
async function lockTenantCustomRoles(db: LlmDb, tenantId: string): Promise<void> {
  if (!isPostgres(db)) return;
  await sql`select pg_advisory_xact_lock(${LOCK_KEYS.tenantCustomRoles}::int4, ${tenantLockKey(tenantId)}::int4)`.execute(
    db,
  );
}

/**
 * Locks the custom role's row (PostgreSQL) for its delete, after the sessions (lockSessionsWithRole):
 * every writer of tasks takes a session lock, if any, before the role's, so no lock cycle forms.
 */
async function lockRoleRow(db: LlmDb, tenantId: string, role: string): Promise<void> {
  if (!isPostgres(db)) return;
  await db
    .selectFrom('custom_roles')
    .select('name')
    .where('tenant_id', '=', tenantId)
    .where('name', '=', role)
    .forUpdate()
    .execute();
}

/** Creates the service over the store. */
export function createRoleService(db: LlmDb, now: () => number = Date.now): RoleService {
  async function listCustom(tenantId: string, reader: LlmDb = db): Promise<RoleDefinition[]> {
    const query = reader
      .selectFrom('custom_roles')
      .select(['name', 'description', 'capabilities', 'instructions'])
      .where('tenant_id', '=', tenantId)
      // Code point order on both stores: SQLite compares bytes (BINARY); a PostgreSQL database's
      // own collation may be a language's, which orders `_` and digits otherwise.
      .orderBy(isPostgres(reader) ? sql`name collate "C"` : 'name');
    // A caller's transaction (an approval) writes tasks of the roles it reads: held until its commit.
    const locked = reader !== db && isPostgres(reader) ? query.forKeyShare() : query;
    return (await locked.execute()).map(toDefinition);
  }

  return {
    async listRoles(tenantId, reader) {
      return [...BUILT_IN_ROLES, ...(await listCustom(tenantId, reader))];
    },

    async findRole(tenantId, name) {
      const builtIn = findBuiltInRole(name);
      if (builtIn) return builtIn;
      const row = await db
        .selectFrom('custom_roles')
        .select(['name', 'description', 'capabilities', 'instructions'])
        .where('tenant_id', '=', tenantId)
        .where('name', '=', name)
        .executeTakeFirst();
      return row ? toDefinition(row) : undefined;
    },

    async createRole(tenantId, principalId, input) {
      const parsed = createRoleInputSchema.safeParse(input);
      if (!parsed.success) {
        const issues = parsed.error.issues.map(
          (issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`,
        );
        throw new AppError('VALIDATION_FAILED', `Invalid role: ${issues.join('; ')}`, { details: issues });
      }
      const role = parsed.data;
      if (findBuiltInRole(role.name)) {
        throw new AppError('CONFLICT', `'${role.name}' is a built-in role; choose another name`);
      }
      if (role.name === ORCHESTRATOR_ROLE) {
        // The role of MAOS's own planning and synthesis tasks, and the name of their LLM route.
        throw new AppError(
          'CONFLICT',
          `'${role.name}' is reserved for the orchestrator; choose another name`,
        );
      }
      // The count and the insert are one step: creates of one tenant take turns (PostgreSQL: a
      // per-tenant lock, also across replicas; SQLite serialises its write transactions), so
      // concurrent creates cannot each count 49 and end with more than the cap.
      await db.transaction().execute(async (trx) => {
        await lockTenantCustomRoles(trx, tenantId);
        const count = await trx
          .selectFrom('custom_roles')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('tenant_id', '=', tenantId)
          .executeTakeFirstOrThrow();
        if (Number(count.n) >= MAX_CUSTOM_ROLES_PER_TENANT) {
          throw new AppError(
            'RESOURCE_LIMIT_EXCEEDED',
            `A tenant may define at most ${MAX_CUSTOM_ROLES_PER_TENANT} custom roles`,
          );
        }
        const at = now();
        const result = await trx
          .insertInto('custom_roles')
          .values({
            tenant_id: tenantId,
            name: role.name,
            description: role.description,
            capabilities: JSON.stringify(role.capabilities),
            instructions: role.instructions,
            created_by: principalId,
            created_at: at,
            updated_at: at,
          })
          .onConflict((oc) => oc.columns(['tenant_id', 'name']).doNothing())
          .executeTakeFirst();
        if (Number(result.numInsertedOrUpdatedRows ?? 0) === 0) {
          throw new AppError('CONFLICT', `A role named '${role.name}' already exists`);
        }
      });
      return { ...role, builtIn: false };
    },

    async deleteRole(tenantId, name) {
      if (findBuiltInRole(name))
        throw new AppError('INVALID_STATE', `'${name}' is a built-in role and cannot be deleted`);
      // One transaction, the sessions with unfinished tasks of the role locked first, then the
      // role's row (PostgreSQL; SQLite serialises writers): an approval racing this delete either
      // committed before (its session is then running and counted) or waits and reads the roles
      // after it (INVALID_PLAN). A write of tasks of the role (a submit, a first plan, a phase
      // gate, an approval) holds the row `FOR KEY SHARE` from its check to its commit
      // (role-locks.ts): the lock below waits for it, and the count that follows sees its tasks.
      await db.transaction().execute(async (trx) => {
        await lockSessionsWithRole(trx, tenantId, name);
        await lockRoleRow(trx, tenantId, name);
        const users = await findSessionsRunningRole(trx, tenantId, name);
        if (users.length > 0) {
          throw new AppError(
            'INVALID_STATE',
            `Role '${name}' is used by unfinished tasks of running session(s) ${users.join(', ')}: deleting it would fail them when they start; cancel the session(s) or wait until they end, then delete the role`,
            { details: { sessions: users } },
          );
        }
        const result = await trx
          .deleteFrom('custom_roles')
          .where('tenant_id', '=', tenantId)
          .where('name', '=', name)
          .executeTakeFirst();
        if (Number(result.numDeletedRows) === 0)
          throw new AppError('ROLE_NOT_FOUND', `No custom role named '${name}'`);
      });
    },
  };
}
