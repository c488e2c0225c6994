// What the retention job deletes, one target per kind of row, each deleting at most `limit` rows per
// call. Only rows of FINISHED sessions, or such sessions whole (or expired rate-limit counters, old
// LLM response cache entries) qualify: running sessions and the audit log (a tamper-evident hash
// chain) are never touched.
import type { Kysely } from 'kysely';
import type { Config } from '../config/schema.ts';
import { isTerminalSessionStatus } from '../domain/session-state.ts';
import { SESSION_STATUSES } from '../domain/types.ts';
import {
  type DeletedRows,
  deleteSessionsOutputs,
  deleteSessionsRecords,
  inWriteTransaction,
  lockSessionsForDeletion,
  totalDeleted,
} from './session-deletion.ts';

// biome-ignore lint/suspicious/noExplicitAny: targets reach tables of several areas' schemas
export type AnyDb = Kysely<any>;

/** Metric label values of the tables retention deletes from (closed list: bounded cardinality). */
export const RETENTION_TABLES = [
  'events',
  'artifacts',
  'messages',
  'idempotency_keys',
  'rate_limits',
  'mcp_stream_events',
  'llm_response_cache',
  // Delivered and failed webhook deliveries (`webhooks.deliveryRetentionDays`), and those a deleted
  // subscription left (webhooks/subscription-sweep.ts).
  'webhook_deliveries',
  // Whole sessions (`retention.sessionsDays`): the session rows, and the rows of theirs no other
  // target deletes.
  'sessions',
  'tasks',
  'task_dependencies',
  'agents',
  'plans',
  'session_settings',
  // The ids of deleted sessions, once every replica has had time to remove their workspaces.
  'deleted_sessions',
] as const;
export type RetentionTable = (typeof RETENTION_TABLES)[number];

/** Rows one batch deleted: from the target's table, or per table (a target that deletes from several). */
export type RetentionBatchResult = number | Partial<Record<RetentionTable, number>>;

/** One kind of row the job deletes; `Result` is per table for a target that deletes from several. */
export interface RetentionTarget<Result extends RetentionBatchResult = number> {
  /** Table the rows are deleted from (metric label); a target deleting from several names its main one. */
  table: RetentionTable;
  /**
   * Deletes at most about `limit` qualifying rows (as of `now`, epoch ms) and returns how many it
   * deleted; nothing deleted means nothing is left. A target that deletes whole sessions pushes the
   * id of each onto `deletedSessions` once its deletion is done (its readers are woken after the batch).
   */
  deleteBatch(db: AnyDb, now: number, limit: number, deletedSessions?: string[]): Promise<Result>;
}

/** Any target: one table's count or counts per table. */
export type AnyRetentionTarget = RetentionTarget<RetentionBatchResult>;

const FINISHED = ['completed', 'failed', 'cancelled'];
/**
 * The statuses of sessions that have not finished. The lookups of finished sessions say "not one of
 * these" (with a finished_at, which only a finished session has): no index serves that, so the
 * database walks `sessions_finished_at` over the old sessions alone. Said as "one of FINISHED",
 * SQLite read every finished session ever through `sessions_status` instead (and sorted them all
 * for the sessions target), on every batch.
 */
const UNFINISHED = SESSION_STATUSES.filter((status) => !isTerminalSessionStatus(status));
const DAY_MS = 86_400_000;
/**
 * How long a target goes on from where it found nothing left (sweptRange) before it looks at every
 * old session again.
 */
export const RESCAN_ALL_MS = DAY_MS;
/**
 * Finished sessions looked up per batch: their rows are then deleted up to the batch limit. Small,
 * so the "which sessions still have rows" probe stays one index lookup per session.
 */
const DEFAULT_SESSIONS_PER_BATCH = 50;

/**
 * What a target remembers between passes: every session that finished before `before` had none of
 * its rows left when it last looked. Rows are never added to a session that finished days ago, so
 * its next passes look only at the sessions that finished since, instead of every old session
 * again (sessions are kept forever by default: a pass with nothing to delete read them all, 0.8 s
 * on SQLite, where that blocks the process, and 1.7 s on PostgreSQL at 200,000 sessions). A pass
 * RESCAN_ALL_MS after the last full one (or one with an earlier `now`) looks at all of them again,
 * so rows brought back meanwhile (a database restored from a backup while the server ran) still go.
 */
function sweptRange() {
  let swept: { before: number; fullAt: number } | null = null;
  return {
    /** The finished_at from which to look, as of `now`; undefined: every old session. */
    from(now: number): number | undefined {
      if (swept && (now < swept.fullAt || now - swept.fullAt >= RESCAN_ALL_MS)) swept = null;
      return swept?.before;
    },
    /** A lookup from `from(now)` up to `cutoff` found no session with rows left. */
    clean(cutoff: number, now: number): void {
      if (swept === null) swept = { before: cutoff, fullAt: now };
      else if (cutoff > swept.before) swept.before = cutoff;
    },
  };
}

/**
 * Ids of up to `count` sessions that finished before `cutoff` (and not before `from`, when given)
 * and still have rows in `table` (of `type` when given). `sessions_finished_at` (migration 0008)
 * finds the sessions; the per-table session index answers the EXISTS probe. The ids are then passed
 * to the delete as values, so its row lookup uses that index too instead of scanning the table for
 * a semi-join.
 */
async function findFinishedSessionIds(
  db: AnyDb,
  table: string,
  range: { from: number | undefined; cutoff: number },
  count: number,
  type?: string,
): Promise<string[]> {
  let query = db
    .selectFrom('sessions as s')
    .select('s.id')
    .where('s.status', 'not in', UNFINISHED)
    .where('s.finished_at', '<', range.cutoff);
  if (range.from !== undefined) query = query.where('s.finished_at', '>=', range.from);
  const rows = await query
    .where((eb) => {
      let rows = eb
        .selectFrom(`${table} as r`)
        .select(eb.lit(1).as('one'))
        .whereRef('r.session_id', '=', 's.id');
      if (type !== undefined) rows = rows.where('r.type', '=', type);
      return eb.exists(rows);
    })
    .limit(count)
    .execute();
  return rows.map((row) => row.id as string);
}

/** Up to `count` sessions with rows in `table` to delete as of `now`, remembering a lookup that found none. */
async function nextFinishedSessionIds(
  db: AnyDb,
  swept: ReturnType<typeof sweptRange>,
  table: string,
  now: number,
  days: number,
  count: number,
  type?: string,
): Promise<string[]> {
  const cutoff = now - days * DAY_MS;
  const sessions = await findFinishedSessionIds(db, table, { from: swept.from(now), cutoff }, count, type);
  if (sessions.length === 0) swept.clean(cutoff, now);
  return sessions;
}

function countDeleted(result: { numDeletedRows: bigint } | undefined): number {
  return Number(result?.numDeletedRows ?? 0n);
}

/** Events (all types, or only `type`) of sessions finished more than `days` ago. */
function eventsTarget(days: number, sessionsPerBatch: number, type?: string): RetentionTarget {
  const swept = sweptRange();
  return {
    table: 'events',
    async deleteBatch(db, now, limit) {
      const sessions = await nextFinishedSessionIds(db, swept, 'events', now, days, sessionsPerBatch, type);
      if (sessions.length === 0) return 0;
      let rows = db.selectFrom('events').select(['session_id', 'seq']).where('session_id', 'in', sessions);
      if (type !== undefined) rows = rows.where('type', '=', type);
      const result = await db
        .deleteFrom('events')
        .where((eb) => eb(eb.refTuple('session_id', 'seq'), 'in', rows.limit(limit)))
        .executeTakeFirst();
      return countDeleted(result);
    },
  };
}

/** Rows keyed by `id` with a `session_id` (messages, artifacts) of sessions finished more than `days` ago. */
function sessionRowsTarget(
  table: 'messages' | 'artifacts',
  days: number,
  sessionsPerBatch: number,
): RetentionTarget {
  const swept = sweptRange();
  return {
    table,
    async deleteBatch(db, now, limit) {
      const sessions = await nextFinishedSessionIds(db, swept, table, now, days, sessionsPerBatch);
      if (sessions.length === 0) return 0;
      const ids = db.selectFrom(table).select('id').where('session_id', 'in', sessions).limit(limit);
      return countDeleted(await db.deleteFrom(table).where('id', 'in', ids).executeTakeFirst());
    },
  };
}

/** Deletes the rows of a table keyed by (tenant_id, key) that `keys` selects (at most its limit). */
async function deleteByTenantKey(
  db: AnyDb,
  table: 'idempotency_keys' | 'llm_response_cache',
  keys: ReturnType<AnyDb['selectFrom']>,
): Promise<number> {
  const result = await db
    .deleteFrom(table)
    .where((eb) => eb(eb.refTuple('tenant_id', 'key'), 'in', keys))
    .executeTakeFirst();
  return countDeleted(result);
}

/** Idempotency keys first used more than `days` ago whose session has finished. */
function idempotencyKeysTarget(days: number): RetentionTarget {
  return {
    table: 'idempotency_keys',
    deleteBatch: (db, now, limit) =>
      deleteByTenantKey(
        db,
        'idempotency_keys',
        db
          .selectFrom('idempotency_keys as k')
          .innerJoin('sessions as s', 's.id', 'k.session_id')
          .select(['k.tenant_id', 'k.key'])
          .where('k.created_at', '<', now - days * DAY_MS)
          // As UNFINISHED says: "one of FINISHED" made SQLite walk every finished session for its keys.
          .where('s.status', 'not in', UNFINISHED)
          .limit(limit),
      ),
  };
}

/** LLM response cache entries stored more than `days` ago (index `llm_response_cache_created_idx`). */
function responseCacheTarget(days: number): RetentionTarget {
  return {
    table: 'llm_response_cache',
    deleteBatch: (db, now, limit) =>
      deleteByTenantKey(
        db,
        'llm_response_cache',
        db
          .selectFrom('llm_response_cache')
          .select(['tenant_id', 'key'])
          .where('created_at', '<', now - days * DAY_MS)
          .limit(limit),
      ),
  };
}

/**
 * Whole sessions finished more than `days` ago (store/session-deletion.ts, as DELETE
 * /v1/sessions/:id does), a batch of them together in one transaction: their outputs up to `limit`,
 * then, once they have none, the rest of them with their rows; sessions with more outputs than the
 * batch takes are continued by the next batch. Every step is one statement for the whole batch: one
 * per session (about 18 each) made a pass over many small sessions some 17 times slower on
 * PostgreSQL, each statement a round trip. The rows are locked and re-checked first: a session
 * deleted meanwhile through the API is skipped. A plan's rows (tasks, agents …) are few, so a batch
 * may delete somewhat more than `limit` rows.
 */
function sessionsTarget(days: number, sessionsPerBatch: number): RetentionTarget<DeletedRows> {
  return {
    table: 'sessions',
    async deleteBatch(db, now, limit, deletedSessions) {
      const cutoff = now - days * DAY_MS;
      const sessions = await db
        .selectFrom('sessions')
        .select('id')
        .where('status', 'not in', UNFINISHED)
        .where('finished_at', '<', cutoff)
        .orderBy('finished_at')
        .limit(sessionsPerBatch)
        .execute();
      if (sessions.length === 0) return {};
      const { rows, gone } = await inWriteTransaction(db, async (trx) => {
        const ids = (
          await lockSessionsForDeletion(
            trx,
            sessions.map(({ id }) => id as string),
          )
        )
          .filter(
            (row) => FINISHED.includes(row.status) && row.finishedAt !== null && row.finishedAt < cutoff,
          )
          .map((row) => row.id);
        const outputs = await deleteSessionsOutputs(trx, ids, limit);
        if (ids.length === 0 || totalDeleted(outputs) >= limit) return { rows: outputs, gone: [] };
        return { rows: addRows(outputs, await deleteSessionsRecords(trx, ids)), gone: ids };
      });
      // Committed on SQLite (a transaction per batch); on PostgreSQL with the batch's transaction.
      deletedSessions?.push(...gone);
      return rows;
    },
  };
}

/** Adds the counts of `more` to `into` and returns it. */
function addRows(into: DeletedRows, more: DeletedRows): DeletedRows {
  for (const [table, n] of Object.entries(more) as [keyof DeletedRows, number][]) {
    into[table] = (into[table] ?? 0) + n;
  }
  return into;
}

/**
 * How long a deleted session's id is kept (`deleted_sessions`): every replica's workspace sweeper
 * runs every `retention.intervalSeconds` (at most a day), so a replica down for less than this
 * still removes the workspaces of sessions deleted meanwhile when it comes back.
 */
export const DELETED_SESSIONS_KEPT_DAYS = 30;

/**
 * Ids of sessions deleted more than DELETED_SESSIONS_KEPT_DAYS ago; always on. A session whose
 * deletion was cut short (its row is still there) keeps its mark: it stays refused a retry, and its
 * workspace removed, until a new deletion finishes it.
 */
const deletedSessionsTarget: RetentionTarget = {
  table: 'deleted_sessions',
  async deleteBatch(db, now, limit) {
    const ids = db
      .selectFrom('deleted_sessions as d')
      .select('d.id')
      .where('d.deleted_at', '<', now - DELETED_SESSIONS_KEPT_DAYS * DAY_MS)
      .where((eb) =>
        eb.not(
          eb.exists(eb.selectFrom('sessions as s').select(eb.lit(1).as('one')).whereRef('s.id', '=', 'd.id')),
        ),
      )
      .limit(limit);
    return countDeleted(await db.deleteFrom('deleted_sessions').where('id', 'in', ids).executeTakeFirst());
  },
};

/** PostgreSQL only: rate-limit counters whose window has ended (the library re-creates them on use). */
const expiredRateLimitsTarget: RetentionTarget = {
  table: 'rate_limits',
  async deleteBatch(db, now, limit) {
    const keys = db.selectFrom('rate_limits').select('key').where('expire', '<', now).limit(limit);
    return countDeleted(await db.deleteFrom('rate_limits').where('key', 'in', keys).executeTakeFirst());
  },
};

/**
 * The targets the configuration enables, in the order a pass runs them: output lines before the
 * rest of the events (so a shorter outputs TTL is honoured first), then messages, artifacts, keys,
 * the LLM response cache, whole sessions (what the shorter TTLs left of them), the ids of sessions
 * deleted long ago. `postgres` adds the expired rate-limit counters (SQLite counts in memory).
 */
export function buildRetentionTargets(
  config: Config['retention'],
  options: { postgres: boolean; sessionsPerBatch?: number },
): AnyRetentionTarget[] {
  const perBatch = options.sessionsPerBatch ?? DEFAULT_SESSIONS_PER_BATCH;
  const targets: AnyRetentionTarget[] = [];
  if (config.outputsDays > 0) {
    targets.push(eventsTarget(config.outputsDays, perBatch, 'task.output'));
    targets.push(sessionRowsTarget('artifacts', config.outputsDays, perBatch));
  }
  if (config.eventsDays > 0) targets.push(eventsTarget(config.eventsDays, perBatch));
  if (config.messagesDays > 0) targets.push(sessionRowsTarget('messages', config.messagesDays, perBatch));
  if (config.idempotencyKeysDays > 0) targets.push(idempotencyKeysTarget(config.idempotencyKeysDays));
  if (config.responseCacheDays > 0) targets.push(responseCacheTarget(config.responseCacheDays));
  if (config.sessionsDays > 0) targets.push(sessionsTarget(config.sessionsDays, perBatch));
  targets.push(deletedSessionsTarget);
  if (options.postgres) targets.push(expiredRateLimitsTarget);
  return targets;
}
