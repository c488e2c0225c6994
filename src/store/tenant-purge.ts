// Erasing a whole tenant (`maos tenants purge`, GDPR art. 17 on offboarding): every row of it in every
// table that holds tenant data. Its API keys are revoked first (a crash then leaves them unusable),
// its sessions deleted one by one with the session deletion (session-deletion.ts: outputs in bounded
// batches, the rest of each in one transaction, recorded in `deleted_sessions` so every replica
// removes their workspaces), then its own rows in bounded batches. Each step commits on its own and
// deletes only what is left: a run cut short leaves a state a second run finishes. Kept on purpose:
// the audit log (a hash chain), the ids of deleted sessions, and the `tenants` row (id, created_at,
// its name set to the id): deleting it would make the database check every table that references
// it, most with no index on tenant_id, in full under the write lock (foreign-key-indexes.test.ts).
import type { Kysely } from 'kysely';
import { AppError } from '../errors/app-error.ts';
import {
  type DeletedRows,
  deleteSessionOutputs,
  deleteSessionRecord,
  inWriteTransaction,
  lockSessionForDeletion,
  totalDeleted,
} from './session-deletion.ts';

// biome-ignore lint/suspicious/noExplicitAny: reaches tables of several areas' schemas
type AnyDb = Kysely<any>;

/** A table holding tenant rows: its primary key (for bounded deletes) and how its rows are reached. */
export interface TenantTable {
  name: string;
  key: readonly string[];
  /**
   * `session`: rows of a session, deleted with it; any left whose session is gone are swept by
   * tenant. `tenant`: the tenant's own rows, deleted by tenant. `sessions`: the sessions themselves.
   */
  scope: 'session' | 'tenant' | 'sessions';
}

/**
 * Every table with tenant rows, in the order the purge empties them (children before parents: foreign
 * keys hold at each step). A new table with a `tenant_id` column must be added here or to
 * TENANT_TABLES_KEPT: tenant-purge.test.ts fails on one that is in neither.
 */
export const TENANT_TABLES: readonly TenantTable[] = [
  { name: 'sessions', key: ['id'], scope: 'sessions' },
  { name: 'events', key: ['session_id', 'seq'], scope: 'session' },
  { name: 'messages', key: ['id'], scope: 'session' },
  { name: 'artifacts', key: ['id'], scope: 'session' },
  { name: 'webhook_deliveries', key: ['id'], scope: 'session' },
  { name: 'task_dependencies', key: ['task_id', 'depends_on_task_id'], scope: 'session' },
  { name: 'tasks', key: ['id'], scope: 'session' },
  { name: 'agents', key: ['id'], scope: 'session' },
  { name: 'plans', key: ['session_id', 'version'], scope: 'session' },
  { name: 'idempotency_keys', key: ['tenant_id', 'key'], scope: 'session' },
  { name: 'session_settings', key: ['session_id'], scope: 'session' },
  { name: 'mcp_stream_events', key: ['id'], scope: 'tenant' },
  { name: 'llm_response_cache', key: ['tenant_id', 'key'], scope: 'tenant' },
  { name: 'webhooks', key: ['id'], scope: 'tenant' },
  // Provider credentials (`provider:<name>`) and webhook signing secrets, encrypted.
  { name: 'tenant_secrets', key: ['tenant_id', 'name'], scope: 'tenant' },
  { name: 'custom_roles', key: ['tenant_id', 'name'], scope: 'tenant' },
  { name: 'role_bindings', key: ['tenant_id', 'principal_id', 'role'], scope: 'tenant' },
  { name: 'api_keys', key: ['id'], scope: 'tenant' },
  { name: 'tenant_usage_days', key: ['tenant_id', 'day'], scope: 'tenant' },
];

/**
 * Tables whose rows of the tenant stay, and why (docs/security.md): those with a `tenant_id` column,
 * and the tenant row itself (keyed by `id`).
 */
export const TENANT_TABLES_KEPT: Readonly<Record<string, string>> = {
  tenants:
    'the tenant row (id, created_at; its name is set to the id): deleting it would check every table referencing it in full',
  audit_log:
    'the tamper-evident audit log: one hash chain over every tenant, never pruned; the purge adds its own record',
  deleted_sessions:
    'ids of the deleted sessions (no content), so every replica removes their workspaces; forgotten after 30 days',
};

/** Rows per table (tables with none are absent). */
export type TenantRows = Partial<Record<string, number>>;

/**
 * Rows deleted per step: a step holds the write lock (SQLite) or its row locks (PostgreSQL) for a few
 * milliseconds, as a step of DELETE /v1/sessions/:id does (engine/delete-session.ts), so a purge run
 * beside a live server never stalls its writes.
 */
export const PURGE_ROWS_PER_STEP = 1000;

/** Keys of a composite primary key matched per delete (see deleteTenantBatch). */
const KEYS_PER_OR = 100;

/** Finished sessions looked up per query; each is then deleted in its own steps. */
const SESSIONS_PER_LOOKUP = 100;

const FINISHED = ['completed', 'failed', 'cancelled'];

/** Sessions of the tenant that have not finished, and how many of each status. */
export interface UnfinishedSessions {
  count: number;
  byStatus: Record<string, number>;
  /** Up to 10 of their ids, oldest first, for the message. */
  ids: string[];
}

/** What the tenant holds now: rows per table it would lose, and the rows that stay. */
export interface TenantInventory {
  rows: TenantRows;
  kept: TenantRows;
  unfinished: UnfinishedSessions;
  /** The tenant row's name when it is not the tenant id (the purge sets it to the id). */
  name?: string;
}

/** The column naming the tenant of a row of `table`. */
function tenantColumn(table: string): string {
  return table === 'tenants' ? 'id' : 'tenant_id';
}

function countOf(row: { n?: unknown } | undefined): number {
  return Number(row?.n ?? 0);
}

/** Counts the tenant's rows in every table (nothing is changed). */
export async function readTenantInventory(db: AnyDb, tenantId: string): Promise<TenantInventory> {
  const rows: TenantRows = {};
  for (const table of TENANT_TABLES) {
    const n = countOf(
      await db
        .selectFrom(table.name)
        .select((eb) => eb.fn.countAll().as('n'))
        .where('tenant_id', '=', tenantId)
        .executeTakeFirst(),
    );
    if (n > 0) rows[table.name] = n;
  }
  const tenant = await db.selectFrom('tenants').select('name').where('id', '=', tenantId).executeTakeFirst();
  return {
    rows,
    kept: await readKeptRows(db, tenantId),
    unfinished: await readUnfinishedSessions(db, tenantId),
    ...(tenant && tenant.name !== tenantId ? { name: tenant.name as string } : {}),
  };
}

/** Counts the tenant's rows in the tables that keep them (TENANT_TABLES_KEPT). */
export async function readKeptRows(db: AnyDb, tenantId: string): Promise<TenantRows> {
  const kept: TenantRows = {};
  for (const name of Object.keys(TENANT_TABLES_KEPT)) {
    const n = countOf(
      await db
        .selectFrom(name)
        .select((eb) => eb.fn.countAll().as('n'))
        .where(tenantColumn(name), '=', tenantId)
        .executeTakeFirst(),
    );
    if (n > 0) kept[name] = n;
  }
  return kept;
}

/** The tenant's sessions that have not finished (none: it may be purged). */
export async function readUnfinishedSessions(db: AnyDb, tenantId: string): Promise<UnfinishedSessions> {
  const statuses = await db
    .selectFrom('sessions')
    .select(['status', (eb) => eb.fn.countAll().as('n')])
    .where('tenant_id', '=', tenantId)
    .where('status', 'not in', FINISHED)
    .groupBy('status')
    .orderBy('status')
    .execute();
  const byStatus: Record<string, number> = {};
  for (const row of statuses) byStatus[row.status as string] = countOf(row);
  const count = Object.values(byStatus).reduce((sum, n) => sum + n, 0);
  const ids =
    count === 0
      ? []
      : await db
          .selectFrom('sessions')
          .select('id')
          .where('tenant_id', '=', tenantId)
          .where('status', 'not in', FINISHED)
          .orderBy('created_at')
          .orderBy('id')
          .limit(10)
          .execute();
  return { count, byStatus, ids: ids.map((row) => row.id as string) };
}

/** INVALID_STATE naming the unfinished sessions; `meanwhile`: they were submitted during the purge. */
function unfinishedError(tenantId: string, unfinished: UnfinishedSessions, meanwhile: boolean): AppError {
  const statuses = Object.entries(unfinished.byStatus)
    .map(([status, n]) => `${n} ${status}`)
    .join(', ');
  const more = unfinished.count > unfinished.ids.length ? ', …' : '';
  return new AppError(
    'INVALID_STATE',
    `Tenant ${tenantId} has ${unfinished.count} session(s) that have not finished (${statuses})` +
      `${meanwhile ? ', submitted while the purge ran: cut the tenant’s access,' : ':'} cancel them first` +
      ` (${unfinished.ids.join(', ')}${more}), then run the purge again`,
    { details: { tenant: tenantId, unfinished: unfinished.byStatus, sessions: unfinished.ids } },
  );
}

export interface PurgeTenantOptions {
  /** @defaultValue PURGE_ROWS_PER_STEP */
  rowsPerStep?: number;
  /** Rows deleted so far are added here as the purge goes (read it when the purge fails midway). */
  deleted?: TenantRows;
  /** API keys revoked (before they are deleted) are counted here. */
  revoked?: { apiKeys: number };
  /** Set when the tenant row's name (not the id) was set to the id. */
  renamed?: { tenant: boolean };
  now?: () => number;
}

/**
 * Erases the tenant: refuses (INVALID_STATE, nothing changed) while it has sessions that have not
 * finished, else revokes its API keys, deletes its sessions (session-deletion.ts) and every other
 * row of it but the tenant row, whose name it sets to the id, and returns the rows deleted per
 * table. Safe to run again after an interruption; a tenant with no rows left is a no-op. A session
 * submitted meanwhile (a request with a key a server still had cached, an OIDC user) stops it at the
 * end with INVALID_STATE, everything else of the tenant gone.
 */
export async function purgeTenant(
  db: AnyDb,
  tenantId: string,
  options: PurgeTenantOptions = {},
): Promise<TenantRows> {
  const limit = options.rowsPerStep ?? PURGE_ROWS_PER_STEP;
  const now = options.now ?? Date.now;
  const deleted = options.deleted ?? {};
  const add = (rows: TenantRows | DeletedRows) => {
    for (const [table, n] of Object.entries(rows)) {
      if (n) deleted[table] = (deleted[table] ?? 0) + n;
    }
  };
  const unfinished = await readUnfinishedSessions(db, tenantId);
  if (unfinished.count > 0) throw unfinishedError(tenantId, unfinished, false);

  // Revoked before anything is deleted: from here on no key of the tenant is accepted (servers
  // refuse a revoked key within their key cache's lifetime), whatever stops the purge.
  const revoked = await db
    .updateTable('api_keys')
    .set({ revoked_at: new Date(now()).toISOString() })
    .where('tenant_id', '=', tenantId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (options.revoked) options.revoked.apiKeys += Number(revoked.numUpdatedRows);

  await deleteFinishedSessions(db, tenantId, limit, now, add);
  for (const table of TENANT_TABLES) {
    if (table.scope !== 'session' && table.scope !== 'tenant') continue;
    for (;;) {
      const { found, deleted: n } = await deleteTenantBatch(db, table, tenantId, limit);
      if (n > 0) add({ [table.name]: n });
      if (found < limit) break;
    }
  }

  // Last, in one transaction: no session came meanwhile, and the tenant row keeps nothing but its id.
  // No table is emptied here by tenant_id: with the row kept, nothing needs them all empty at one
  // instant, and such a delete on a table without a tenant_id index (mcp_stream_events) would read
  // all of it under the write lock. A row written after its table's last batch (a charge of a run
  // still stopping, an MCP stream of a user still let in) is as possible as one written after the
  // purge: cut the tenant's access first; a second run erases it.
  await inWriteTransaction(db, async (trx) => {
    const meanwhile = await readUnfinishedSessions(trx, tenantId);
    if (meanwhile.count > 0) throw unfinishedError(tenantId, meanwhile, true);
    const finished = countOf(
      await trx
        .selectFrom('sessions')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('tenant_id', '=', tenantId)
        .executeTakeFirst(),
    );
    if (finished > 0) {
      throw new AppError(
        'INVALID_STATE',
        `Tenant ${tenantId} got ${finished} session(s) while the purge ran: cut the tenant’s access, then run the purge again`,
        { details: { tenant: tenantId, sessions: finished } },
      );
    }
    // MAOS provisions a tenant with its id as name, but the default tenant's migration wrote
    // `Default`, and a store copied or written by hand may hold any name.
    const renamed = await trx
      .updateTable('tenants')
      .set({ name: tenantId })
      .where('id', '=', tenantId)
      .where('name', '<>', tenantId)
      .executeTakeFirst();
    if (options.renamed && renamed.numUpdatedRows > 0n) options.renamed.tenant = true;
  });
  return deleted;
}

/**
 * Deletes every finished session of the tenant as DELETE /v1/sessions/:id does, each in steps of at
 * most `limit` output rows (a step: lock the row, check it is still there and finished, delete).
 */
async function deleteFinishedSessions(
  db: AnyDb,
  tenantId: string,
  limit: number,
  now: () => number,
  add: (rows: DeletedRows) => void,
): Promise<void> {
  for (;;) {
    const sessions = await db
      .selectFrom('sessions')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('status', 'in', FINISHED)
      .orderBy('id')
      .limit(SESSIONS_PER_LOOKUP)
      .execute();
    if (sessions.length === 0) return;
    for (const { id } of sessions) {
      for (let done = false; !done; ) {
        done = await inWriteTransaction(db, async (trx) => {
          const row = await lockSessionForDeletion(trx, id as string, tenantId);
          // Gone meanwhile (DELETE, retention): nothing left to do.
          if (!row || !FINISHED.includes(row.status)) return true;
          const outputs = await deleteSessionOutputs(trx, id as string, limit, now());
          add(outputs);
          if (totalDeleted(outputs) >= limit) return false;
          add(await deleteSessionRecord(trx, id as string, now()));
          return true;
        });
      }
    }
  }
}

/**
 * Deletes up to `limit` rows of the tenant from `table`: all of its rows for a tenant table; for a
 * session table only rows whose session is gone (a session's own rows go with it, never while it
 * may still be running). The rows are found by a read first and deleted by their keys: several of
 * these tables have no index on `tenant_id`, and a delete that scanned them would hold SQLite's
 * write lock (and a live server's writes) for the whole scan; a read does not.
 */
async function deleteTenantBatch(
  db: AnyDb,
  table: TenantTable,
  tenantId: string,
  limit: number,
): Promise<{ found: number; deleted: number }> {
  let query = db
    .selectFrom(`${table.name} as r`)
    .select(table.key.map((column) => `r.${column}`))
    .where('r.tenant_id', '=', tenantId);
  if (table.scope === 'session') {
    query = query.where((eb) =>
      eb.not(
        eb.exists(
          eb.selectFrom('sessions as s').select(eb.lit(1).as('one')).whereRef('s.id', '=', 'r.session_id'),
        ),
      ),
    );
  }
  const keys = await query.limit(limit).execute();
  let deleted = 0;
  const [first, ...others] = table.key as [string, ...string[]];
  // A composite key is matched by `(a = ? and b = ?) or …`, in chunks: SQLite's parser refuses an
  // expression more than 1000 terms deep.
  const chunk = others.length === 0 ? limit : KEYS_PER_OR;
  for (let start = 0; start < keys.length; start += chunk) {
    const some = keys.slice(start, start + chunk);
    const result = await db
      .deleteFrom(table.name)
      .where('tenant_id', '=', tenantId)
      .where((eb) =>
        others.length === 0
          ? eb(
              first,
              'in',
              some.map((key) => key[first]),
            )
          : eb.or(some.map((key) => eb.and(table.key.map((column) => eb(column, '=', key[column]))))),
      )
      .executeTakeFirst();
    deleted += Number(result.numDeletedRows);
  }
  return { found: keys.length, deleted };
}
