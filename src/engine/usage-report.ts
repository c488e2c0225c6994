// One tenant's usage over a time range, summed in SQL over the stored per-session and per-task
// usage: totals, and optionally the same figures per UTC day or per task role.
import { type Kysely, sql } from 'kysely';
import type { Database } from '../store/schema.ts';

const DAY_MS = 86_400_000;

/** What the report breaks the totals down by. */
export type UsageGroupBy = 'day' | 'role';

/** Usage figures of a set of sessions (and their tasks). */
export interface UsageFigures {
  sessions: number;
  tasks: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  costUsd: number;
}

export interface UsageGroup extends UsageFigures {
  /** `YYYY-MM-DD` (UTC day the sessions were created) or the task role. */
  key: string;
}

export interface UsageReport {
  totals: UsageFigures;
  /** Present when a `groupBy` was asked for; ordered by key. */
  groups?: UsageGroup[];
}

export interface UsageReportQuery {
  tenantId: string;
  /** Sessions created at or after this epoch ms … */
  fromMs: number;
  /** … and before this one. */
  toMs: number;
  groupBy?: UsageGroupBy;
}

interface SumRow {
  key?: unknown;
  sessions: unknown;
  tasks?: unknown;
  input_tokens: unknown;
  output_tokens: unknown;
  cache_read_tokens: unknown;
  cost_usd: unknown;
}

/**
 * The tenant's usage over the sessions created in [fromMs, toMs). Totals and day groups are what
 * the sessions were charged; role groups add up what each task of those sessions was charged
 * (every charge goes to a task and its session, so they add up to the same).
 */
export async function readUsageReport(db: Kysely<Database>, query: UsageReportQuery): Promise<UsageReport> {
  const totalsRow = await sessionSums(db, query).executeTakeFirst();
  const taskCounts = await taskCountsBy(db, query, false);
  const totals = toFigures(totalsRow, taskCounts.get('') ?? 0);
  if (query.groupBy === undefined) return { totals };
  if (query.groupBy === 'day') {
    const rows = await sessionSums(db, query)
      .select(sql<number>`s.created_at / ${sql.lit(DAY_MS)}`.as('key'))
      .groupBy(sql`s.created_at / ${sql.lit(DAY_MS)}`)
      .execute();
    const dayTasks = await taskCountsBy(db, query, true);
    const groups = rows
      .map((row) => ({ ...toFigures(row, dayTasks.get(String(Number(row.key))) ?? 0), day: Number(row.key) }))
      .sort((a, b) => a.day - b.day)
      .map(({ day, ...figures }) => ({ key: new Date(day * DAY_MS).toISOString().slice(0, 10), ...figures }));
    return { totals, groups };
  }
  const rows = await tasksInRange(db, query)
    .select((eb) => [
      't.role as key',
      eb.fn.count<number>(eb.ref('t.session_id')).distinct().as('sessions'),
      eb.fn.countAll<number>().as('tasks'),
      eb.fn.coalesce(eb.fn.sum<number>('t.input_tokens'), sql.lit(0)).as('input_tokens'),
      eb.fn.coalesce(eb.fn.sum<number>('t.output_tokens'), sql.lit(0)).as('output_tokens'),
      eb.fn.coalesce(eb.fn.sum<number>('t.cache_read_tokens'), sql.lit(0)).as('cache_read_tokens'),
      eb.fn.coalesce(eb.fn.sum<number>('t.cost_usd'), sql.lit(0)).as('cost_usd'),
    ])
    .groupBy('t.role')
    .orderBy('t.role')
    .execute();
  return {
    totals,
    groups: rows.map((row) => ({ key: String(row.key), ...toFigures(row, Number(row.tasks)) })),
  };
}

function sessionSums(db: Kysely<Database>, query: UsageReportQuery) {
  return db
    .selectFrom('sessions as s')
    .where('s.tenant_id', '=', query.tenantId)
    .where('s.created_at', '>=', query.fromMs)
    .where('s.created_at', '<', query.toMs)
    .select((eb) => [
      eb.fn.countAll<number>().as('sessions'),
      eb.fn.coalesce(eb.fn.sum<number>('s.input_tokens'), sql.lit(0)).as('input_tokens'),
      eb.fn.coalesce(eb.fn.sum<number>('s.output_tokens'), sql.lit(0)).as('output_tokens'),
      eb.fn.coalesce(eb.fn.sum<number>('s.cache_read_tokens'), sql.lit(0)).as('cache_read_tokens'),
      eb.fn.coalesce(eb.fn.sum<number>('s.cost_usd'), sql.lit(0)).as('cost_usd'),
    ]);
}

function tasksInRange(db: Kysely<Database>, query: UsageReportQuery) {
  return db
    .selectFrom('tasks as t')
    .innerJoin('sessions as s', 's.id', 't.session_id')
    .where('s.tenant_id', '=', query.tenantId)
    .where('t.tenant_id', '=', query.tenantId)
    .where('s.created_at', '>=', query.fromMs)
    .where('s.created_at', '<', query.toMs);
}

/** Task counts of the sessions in range: one entry `''`, or one per UTC day number. */
async function taskCountsBy(
  db: Kysely<Database>,
  query: UsageReportQuery,
  byDay: boolean,
): Promise<Map<string, number>> {
  const base = tasksInRange(db, query).select((eb) => eb.fn.countAll<number>().as('tasks'));
  const rows = byDay
    ? await base
        .select(sql<number>`s.created_at / ${sql.lit(DAY_MS)}`.as('key'))
        .groupBy(sql`s.created_at / ${sql.lit(DAY_MS)}`)
        .execute()
    : await base.execute();
  return new Map(
    rows.map((row) => [byDay ? String(Number((row as { key?: unknown }).key)) : '', Number(row.tasks)]),
  );
}

// PostgreSQL returns bigint sums and counts as text; the cost is rounded to the millionth like
// addUsage (domain/types.ts), so float drift in the sum never shows.
function toFigures(row: SumRow | undefined, tasks: number): UsageFigures {
  return {
    sessions: Number(row?.sessions ?? 0),
    tasks,
    inputTokens: Number(row?.input_tokens ?? 0),
    outputTokens: Number(row?.output_tokens ?? 0),
    cacheReadTokens: Number(row?.cache_read_tokens ?? 0),
    costUsd: Math.round(Number(row?.cost_usd ?? 0) * 1e6) / 1e6,
  };
}
