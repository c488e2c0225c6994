// Deleting a whole finished session: its outputs (events, agent messages, artifacts) in bounded
// batches first, then, in one transaction, its webhook deliveries, plans, agents, tasks and their
// dependencies, idempotency keys, settings and the session row. Used by DELETE /v1/sessions/:id
// (engine/delete-session.ts) and the retention job's `sessions` target (retention-targets.ts).
// Every row is deleted explicitly, children before parents, so nothing depends on which foreign keys
// cascade (task_dependencies reference tasks only; tasks reference agents without a cascade).
import { type Kysely, sql } from 'kysely';
import { isPostgres } from './advisory-lock.ts';

// biome-ignore lint/suspicious/noExplicitAny: reaches tables of several areas' schemas
type AnyDb = Kysely<any>;

/** The bulk of a session's rows, deleted in batches before the rest: the order they are deleted in. */
export const SESSION_OUTPUT_TABLES = ['events', 'messages', 'artifacts'] as const;

/** The rest of a session's rows, deleted together with the session row, children first. */
export const SESSION_RECORD_TABLES = [
  // Its webhook deliveries, sent or not: their payloads copy its objective and result.
  'webhook_deliveries',
  'task_dependencies',
  'tasks',
  'agents',
  'plans',
  'idempotency_keys',
  'session_settings',
] as const;

/** Every table that holds rows of a session, the session row's own last. */
export const SESSION_TABLES = [...SESSION_OUTPUT_TABLES, ...SESSION_RECORD_TABLES, 'sessions'] as const;
export type SessionTable = (typeof SESSION_TABLES)[number];

/** Rows deleted, per table (tables nothing was deleted from are absent). */
export type DeletedRows = Partial<Record<SessionTable, number>>;

function countDeleted(result: { numDeletedRows: bigint } | undefined): number {
  return Number(result?.numDeletedRows ?? 0n);
}

/** The sum of `rows`. */
export function totalDeleted(rows: DeletedRows): number {
  return Object.values(rows).reduce((sum, n) => sum + (n ?? 0), 0);
}

/**
 * Deletes at most `limit` output rows of the session (events, then messages, then artifacts, each
 * table emptied before the next is started): deleteSessionsOutputs with one session. Fewer than
 * `limit` deleted: none are left. The step that deletes the first of them records the session in
 * `deleted_sessions` already (call inside a transaction): from then on it is being deleted, and a
 * retry of it is refused (engine/retry-session.ts) rather than copying what is left of its outputs.
 */
export function deleteSessionOutputs(
  db: AnyDb,
  sessionId: string,
  limit: number,
  now: number = Date.now(),
): Promise<DeletedRows> {
  return deleteSessionsOutputs(db, [sessionId], limit, now);
}

/**
 * Deletes what is left of the session: any remaining outputs, its webhook deliveries, plans, agents,
 * tasks and their dependencies, idempotency keys, settings and the session row (deleteSessionsRecords
 * with one session). Call inside a transaction (the session disappears whole or not at all), with
 * the outputs already deleted in batches: a plan's rows are bounded (tasks per phase, agents per
 * session), its outputs are not.
 */
export function deleteSessionRecord(
  db: AnyDb,
  sessionId: string,
  now: number = Date.now(),
): Promise<DeletedRows> {
  return deleteSessionsRecords(db, [sessionId], now);
}

/**
 * PostgreSQL: locks the rows of the subscriptions the session's deliveries go to (ids in order)
 * before its deliveries are deleted, as every transaction that writes both takes them: the delivery
 * worker recording an attempt (the subscription's row, then its deliveries, all its pending ones
 * when it disables the subscription) and DELETE /v1/webhooks/{id}. Taking the deliveries first, this
 * deletion could hold one the worker was about to fail while waiting for the one the worker held,
 * until PostgreSQL failed one of them (a deadlock, after a second). `FOR KEY SHARE`, the weakest
 * lock: it waits for the worker's and a subscription delete's (which lock the row for update) but
 * not for another session's deletion (the same lock) nor for a plain update of the row (an enable).
 * SQLite: its write transactions are serialised already.
 */
async function lockDeliverySubscriptions(db: AnyDb, sessionIds: readonly string[]): Promise<void> {
  if (!isPostgres(db)) return;
  await db
    .selectFrom('webhooks')
    .select('id')
    .where(
      'id',
      'in',
      db.selectFrom('webhook_deliveries').select('webhook_id').where('session_id', 'in', sessionIds),
    )
    .orderBy('id')
    .forKeyShare()
    .execute();
}

/**
 * Locks the session row until the transaction ends and returns its tenant and status, or undefined
 * when there is no such session (of `tenantId`, when given: another tenant's is not locked).
 * PostgreSQL: `FOR UPDATE`, the lock its DELETE takes anyway, taken first as every writer of a
 * session locks its row before its children (no lock cycle); it also keeps new child rows out
 * meanwhile. SQLite: its write transactions are serialised already.
 */
export async function lockSessionForDeletion(
  trx: AnyDb,
  sessionId: string,
  tenantId?: string,
): Promise<{ tenantId: string; status: string; finishedAt: number | null } | undefined> {
  let query = trx
    .selectFrom('sessions')
    .select(['tenant_id', 'status', 'finished_at'])
    .where('id', '=', sessionId);
  if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
  const row = await (isPostgres(trx) ? query.forUpdate() : query).executeTakeFirst();
  if (!row) return undefined;
  return {
    tenantId: row.tenant_id as string,
    status: row.status as string,
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
  };
}

/**
 * Runs `fn` in a write transaction: `db`'s own when it is one already, else a new one. SQLite takes
 * the write lock up front (`BEGIN IMMEDIATE`, as the write queue does), so a transaction that reads
 * first never fails to upgrade when another connection wrote meanwhile.
 */
export async function inWriteTransaction<T>(db: AnyDb, fn: (trx: AnyDb) => Promise<T>): Promise<T> {
  if (db.isTransaction) return fn(db);
  if (isPostgres(db)) return db.transaction().execute(fn);
  return db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const value = await fn(conn);
      await sql`commit`.execute(conn);
      return value;
    } catch (error) {
      await sql`rollback`.execute(conn).catch(() => undefined);
      throw error;
    }
  });
}

/**
 * Several sessions' deletion at once, for the retention job (deleteSessionOutputs and
 * deleteSessionRecord are the same deletion of one session): each step is one statement over every
 * session of `sessionIds` instead of one per session. On PostgreSQL every statement is a round trip, and a
 * session of a few rows took about 18 of them, so a pass deleting many small sessions spent its time
 * waiting on the network rather than deleting. Call inside a transaction.
 */
export async function lockSessionsForDeletion(
  trx: AnyDb,
  sessionIds: readonly string[],
): Promise<{ id: string; status: string; finishedAt: number | null }[]> {
  if (sessionIds.length === 0) return [];
  // In id order, as one statement locks them: two deletions of overlapping sets never wait on each
  // other in a cycle, and each other writer locks one session's row before its children.
  const query = trx
    .selectFrom('sessions')
    .select(['id', 'status', 'finished_at'])
    .where('id', 'in', sessionIds)
    .orderBy('id');
  const rows = await (isPostgres(trx) ? query.forUpdate() : query).execute();
  return rows.map((row) => ({
    id: row.id as string,
    status: row.status as string,
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
  }));
}

/**
 * Deletes at most `limit` output rows of the sessions together (events, then messages, then
 * artifacts, each table emptied of all of them before the next is started; within a table in
 * session order, so a limit used up by one session's outputs starts as few others as it can).
 * Fewer than `limit` deleted: none are left for any of them. The sessions whose rows it deleted are
 * recorded in `deleted_sessions` in the same transaction (call inside one): their deletion has
 * started, and a retry of them is refused from then on. The others are not: a session the limit did
 * not reach is not being deleted yet, and a pass that stops here (`retention.sessionsDays` raised,
 * the server stopped) must leave it retryable, with its workspace kept.
 */
export async function deleteSessionsOutputs(
  db: AnyDb,
  sessionIds: readonly string[],
  limit: number,
  now: number = Date.now(),
): Promise<DeletedRows> {
  const deleted: DeletedRows = {};
  if (sessionIds.length === 0) return deleted;
  const started = new Set<string>();
  let left = limit;
  for (const table of SESSION_OUTPUT_TABLES) {
    if (left <= 0) break;
    // The session id of each row deleted: at most `limit` short strings, no extra statement.
    const rows =
      table === 'events'
        ? await db
            .deleteFrom('events')
            .where((eb) =>
              eb(
                eb.refTuple('session_id', 'seq'),
                'in',
                db
                  .selectFrom('events')
                  .select(['session_id', 'seq'])
                  .where('session_id', 'in', sessionIds)
                  .orderBy('session_id')
                  .orderBy('seq')
                  .limit(left),
              ),
            )
            .returning('session_id')
            .execute()
        : await db
            .deleteFrom(table)
            .where(
              'id',
              'in',
              db
                .selectFrom(table)
                .select('id')
                .where('session_id', 'in', sessionIds)
                .orderBy('session_id')
                .limit(left),
            )
            .returning('session_id')
            .execute();
    for (const row of rows) started.add(row.session_id as string);
    if (rows.length > 0) deleted[table] = rows.length;
    left -= rows.length;
  }
  if (started.size > 0) await recordDeletedSessions(db, [...started], now);
  return deleted;
}

/**
 * Deletes the rest of the sessions (what deleteSessionRecord says of one), one statement per table
 * for all of them. Call inside a transaction, with their outputs already deleted.
 */
export async function deleteSessionsRecords(
  db: AnyDb,
  sessionIds: readonly string[],
  now: number = Date.now(),
): Promise<DeletedRows> {
  const deleted: DeletedRows = {};
  if (sessionIds.length === 0) return deleted;
  await recordDeletedSessions(db, sessionIds, now);
  for (const table of SESSION_TABLES) {
    if (table === 'webhook_deliveries') await lockDeliverySubscriptions(db, sessionIds);
    const column = table === 'sessions' ? 'id' : 'session_id';
    const n = countDeleted(await db.deleteFrom(table).where(column, 'in', sessionIds).executeTakeFirst());
    if (n > 0) deleted[table] = n;
  }
  return deleted;
}

/**
 * Records the sessions in `deleted_sessions` (once: the first step's time is kept), so that each
 * replica removes their workspaces (session-workspaces.ts) and a retry of them is refused meanwhile.
 * The time is a parameter, not a literal: SQLite keeps prepared statements by their text, and a
 * text of its own per deletion would push the engine's statements out of that bounded cache.
 */
async function recordDeletedSessions(db: AnyDb, sessionIds: readonly string[], now: number): Promise<void> {
  await db
    .insertInto('deleted_sessions')
    .columns(['id', 'tenant_id', 'deleted_at'])
    .expression(
      db
        .selectFrom('sessions')
        // Cast: PostgreSQL cannot infer the type of a bare parameter in a select list.
        .select(['id', 'tenant_id', sql<number>`cast(${now} as bigint)`.as('deleted_at')])
        .where('id', 'in', sessionIds),
    )
    .onConflict((conflict) => conflict.column('id').doNothing())
    .execute();
}
