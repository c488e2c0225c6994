// One tenant's usage over a time range, summed in SQL: totals, and optionally the same figures per
// UTC day, per task role or per model. Totals and days read the tokens and cost from the per-day
// spend ledger (tenant_usage_days, by the day of the charge, as the daily quota does); roles and
// models from the tasks of the sessions created in the range (the ledger has neither).
import { type Kysely, type RawBuilder, sql } from 'kysely';
import { COST_EPSILON } from '../domain/types.ts';
import { isPostgres } from '../store/advisory-lock.ts';
import { type DamagedJsonReport, IGNORE_DAMAGED_JSON } from '../store/rows.ts';
import type { Database } from '../store/schema.ts';

const DAY_MS = 86_400_000;

/** What the report breaks the totals down by. */
export type UsageGroupBy = 'day' | 'role' | 'model';

/**
 * The model group's key for what no model can be named for: tasks that no model served (runner
 * tasks, tasks not run) and spend charged without its model (store/task-model-usage.ts). Model
 * keys are `provider/model`, always with a slash, so this one cannot collide with them.
 */
export const UNATTRIBUTED_MODEL_KEY = 'unattributed';

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
  /** `YYYY-MM-DD` (UTC day the spend was charged), the task role, or `provider/model`. */
  key: string;
  /** Model groups: the provider's name in the server config (absent on the unattributed group). */
  provider?: string;
  /** Model groups: the model id (absent on the unattributed group). */
  model?: string;
}

export interface UsageReport {
  totals: UsageFigures;
  /** Present when a `groupBy` was asked for; ordered by key. */
  groups?: UsageGroup[];
}

export interface UsageReportQuery {
  tenantId: string;
  /**
   * Sessions created at or after this epoch ms … (totals and days: the UTC days whose 00:00 is at
   * or after it …)
   */
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
 * The tenant's usage over [fromMs, toMs). Without `groupBy` and per day: the tokens and cost charged
 * on the UTC days whose 00:00 lies in the range (the ledger, whatever day the sessions were
 * created), and the sessions created on those days and their tasks. Per role and per model: the
 * sessions created in the range, each group adding up what each of their tasks was charged (every
 * charge goes to a task and its session, so the totals are what those sessions were charged).
 */
export async function readUsageReport(
  db: Kysely<Database>,
  query: UsageReportQuery,
  report: DamagedJsonReport = IGNORE_DAMAGED_JSON,
): Promise<UsageReport> {
  if (query.groupBy === undefined || query.groupBy === 'day') return readChargedDays(db, query);
  const totalsRow = await sessionSums(db, query).executeTakeFirst();
  if (query.groupBy === 'model') return readModelGroups(db, query, totalsRow, report);
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
    .execute();
  // Ordered here, in code point order as the model groups: a PostgreSQL database's collation may
  // be a language's, which orders `_` and digits otherwise than SQLite.
  const groups = rows
    .map((row) => ({ key: String(row.key), ...toFigures(row, Number(row.tasks)) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  // Each task has one role: the groups' tasks are the tasks in range, without reading them again.
  const totals = toFigures(
    totalsRow,
    groups.reduce((sum, group) => sum + group.tasks, 0),
  );
  return { totals, groups };
}

/**
 * Totals, and with `groupBy: 'day'` one group per day, over the UTC days whose 00:00 is in the
 * range: tokens and cost from the ledger (what was charged that day), sessions and tasks those
 * created that day. A day with either is a group; the groups add up to the totals.
 */
async function readChargedDays(db: Kysely<Database>, query: UsageReportQuery): Promise<UsageReport> {
  const days = { ...query, fromMs: nextDayStart(query.fromMs), toMs: nextDayStart(query.toMs) };
  const charged = await db
    .selectFrom('tenant_usage_days')
    .select(['day', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cost_usd'])
    .where('tenant_id', '=', query.tenantId)
    .where('day', '>=', days.fromMs)
    .where('day', '<', days.toMs)
    .execute();
  const created = await db
    .selectFrom('sessions as s')
    .where('s.tenant_id', '=', query.tenantId)
    .where('s.created_at', '>=', days.fromMs)
    .where('s.created_at', '<', days.toMs)
    .select((eb) => [
      sql<number>`s.created_at / ${sql.lit(DAY_MS)}`.as('key'),
      eb.fn.countAll<number>().as('sessions'),
    ])
    .groupBy(sql`s.created_at / ${sql.lit(DAY_MS)}`)
    .execute();
  const dayTasks = await taskCountsByDay(db, days);
  const byDay = new Map<number, SumRow & { tasks: number }>();
  const dayRow = (day: number) => {
    let row = byDay.get(day);
    if (!row) {
      row = { sessions: 0, tasks: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cost_usd: 0 };
      byDay.set(day, row);
    }
    return row;
  };
  for (const row of charged) {
    const day = dayRow(Number(row.day) / DAY_MS);
    day.input_tokens = row.input_tokens;
    day.output_tokens = row.output_tokens;
    day.cache_read_tokens = row.cache_read_tokens;
    day.cost_usd = row.cost_usd;
  }
  for (const row of created) {
    const day = dayRow(Number(row.key));
    day.sessions = Number(row.sessions);
    day.tasks = dayTasks.get(String(Number(row.key))) ?? 0;
  }
  const groups = [...byDay]
    .sort(([a], [b]) => a - b)
    .map(([day, row]) => ({
      key: new Date(day * DAY_MS).toISOString().slice(0, 10),
      ...toFigures(row, row.tasks),
    }));
  const sum = { sessions: 0, tasks: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cost_usd: 0 };
  for (const row of byDay.values()) {
    sum.sessions += Number(row.sessions);
    sum.tasks += row.tasks;
    sum.input_tokens += Number(row.input_tokens);
    sum.output_tokens += Number(row.output_tokens);
    sum.cache_read_tokens += Number(row.cache_read_tokens);
    sum.cost_usd += Number(row.cost_usd);
  }
  const totals = toFigures(sum, sum.tasks);
  return query.groupBy === 'day' ? { totals, groups } : { totals };
}

/** `ms` itself when it is 00:00 UTC, else the next 00:00 UTC. */
function nextDayStart(ms: number): number {
  return Math.ceil(ms / DAY_MS) * DAY_MS;
}

/** A row of the model query: a group (`kind` 'group'), or the one row of what is left ('rest'). */
interface ModelRow extends SumRow {
  kind: string;
  provider: unknown;
  model: unknown;
  /** 'rest': every task of the range. */
  all_tasks: unknown;
}

/**
 * Per provider and model: what the tasks of the sessions in range spent on it (a task served by
 * two models counts in both groups, with its spend split as it was served), ordered by key; then
 * the unattributed group for the rest of the totals, when there is any, so the groups add up to
 * the totals in every figure but `sessions` and `tasks`.
 *
 * A task whose stored spend per model cannot be read (a hand edit gone wrong: not JSON, not an
 * array of entries) makes the statement fail on either store, or read an entry naming no provider
 * or model (SQLite reads the members of a JSON object as entries, both stores a number in the array
 * as one of neither): its range's values are then read here, those that cannot be read are
 * reported (`report`, once per session) and the statement is run again without them. Such a task's
 * spend is read as no model's (the unattributed group, as a task no model served); it is neither
 * summed into a model (nor a group `null/null`) nor a 500. Nothing is checked before the
 * statement, so a range without such a value costs what it did.
 */
async function readModelGroups(
  db: Kysely<Database>,
  query: UsageReportQuery,
  totalsRow: SumRow | undefined,
  report: DamagedJsonReport,
): Promise<UsageReport> {
  let rows: ModelRow[] | undefined;
  let failure: unknown;
  try {
    rows = await readModelRows(db, query, []);
  } catch (error) {
    if (!isDataError(error)) throw error;
    failure = error;
  }
  if (rows === undefined || rows.some(isUnnamedGroup)) {
    const unreadable = await findUnreadableModelUsage(db, query);
    if (unreadable.length > 0) {
      for (const { sessionId } of unreadable) report(sessionId, 'tasks.model_usage');
      rows = await readModelRows(
        db,
        query,
        unreadable.map((task) => task.taskId),
      );
    }
    // Not a value the statement could not read: a failure of its own, told as it is.
    else if (rows === undefined) throw failure;
  }
  const groups: UsageGroup[] = rows
    .filter((row) => row.kind === 'group')
    .map((row) => ({
      key: `${row.provider}/${row.model}`,
      provider: String(row.provider),
      model: String(row.model),
      ...toFigures(row, Number(row.tasks)),
    }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const restRow = rows.find((row) => row.kind === 'rest');
  const bareTasks = Number(restRow?.tasks ?? 0);
  const totals = toFigures(totalsRow, Number(restRow?.all_tasks ?? 0));
  const rest = unattributedFigures(totals, groups, Number(restRow?.sessions ?? 0), bareTasks);
  return { totals, groups: rest ? [...groups, { key: UNATTRIBUTED_MODEL_KEY, ...rest }] : groups };
}

/**
 * The model groups' rows in one statement, each task's JSON read once: its entries summed per task
 * and model, then per session and model (a group's tasks and sessions are then its rows, counted
 * without `count(distinct)`, which sorted every entry), which also gives what each session's models
 * account for; the tasks are counted without reading their JSON. The tasks `skipped` (ids) are read
 * as if no model had served them.
 */
async function readModelRows(
  db: Kysely<Database>,
  query: UsageReportQuery,
  skipped: readonly string[],
): Promise<ModelRow[]> {
  const { tenantId, fromMs, toMs } = query;
  const skip = skippedTasks(db, skipped);
  const entry = modelUsageEntries(db, query, skip);
  const inRange = sql`s.tenant_id = ${tenantId} and s.created_at >= ${fromMs} and s.created_at < ${toMs}`;
  const bare = skip ? sql`t.model_usage is null or ${skip}` : sql`t.model_usage is null`;
  const { rows } = await sql<ModelRow>`
    with e as (
      select t.session_id, t.id as task_id, ${entry.provider} as provider, ${entry.model} as model,
        ${entry.inputTokens} as i, ${entry.outputTokens} as o, ${entry.cacheReadTokens} as c,
        ${entry.costUsd} as u
      ${entry.from}
    ),
    per_task as (
      select provider, model, session_id, sum(i) as i, sum(o) as o, sum(c) as c, sum(u) as u
      from e group by session_id, task_id, provider, model
    ),
    per_session as (
      select provider, model, session_id, count(*) as tasks,
        sum(i) as i, sum(o) as o, sum(c) as c, sum(u) as u
      from per_task group by session_id, provider, model
    ),
    m as (
      select session_id, sum(i) as i, sum(o) as o, sum(c) as c, sum(u) as u
      from per_session group by session_id
    ),
    tc as (
      select t.session_id, count(*) as n,
        sum(case when ${bare} then 1 else 0 end) as bare
      from tasks t join sessions s on s.id = t.session_id
      where ${inRange} and t.tenant_id = ${tenantId}
      group by t.session_id
    )
    select 'group' as kind, provider, model, count(*) as sessions, sum(tasks) as tasks,
      sum(i) as input_tokens, sum(o) as output_tokens, sum(c) as cache_read_tokens, sum(u) as cost_usd,
      null as all_tasks
    from per_session
    group by provider, model
    union all
    select 'rest', null, null,
      (select count(*) from sessions s left join m on m.session_id = s.id
        left join tc on tc.session_id = s.id
        where ${inRange}
          and (s.input_tokens > coalesce(m.i, 0) or s.output_tokens > coalesce(m.o, 0)
            or s.cache_read_tokens > coalesce(m.c, 0) or s.cost_usd > coalesce(m.u, 0) + ${COST_EPSILON}
            or tc.bare > 0)),
      (select coalesce(sum(bare), 0) from tc),
      null, null, null, null,
      (select coalesce(sum(n), 0) from tc)`.execute(db);
  return rows;
}

/** A group of entries that named no provider or no model: read from a value MAOS did not write. */
function isUnnamedGroup(row: ModelRow): boolean {
  return row.kind === 'group' && (row.provider == null || row.model == null);
}

/** `t.id` is one of `ids`, or undefined for none. One parameter, however many there are. */
function skippedTasks(db: Kysely<Database>, ids: readonly string[]): RawBuilder<unknown> | undefined {
  if (ids.length === 0) return undefined;
  return isPostgres(db)
    ? sql`t.id = any(cast(${[...ids]} as text[]))`
    : sql`t.id in (select value from json_each(${JSON.stringify(ids)}))`;
}

/**
 * A failure of the statement on a stored value (PostgreSQL's class 22, data exception: a cast to
 * jsonb of what is not JSON, the elements of what is no array…; SQLite's malformed JSON), not of
 * the database.
 */
function isDataError(error: unknown): boolean {
  const code = String((error as { code?: unknown })?.code ?? '');
  if (code.startsWith('22') && code.length === 5) return true;
  return code === 'SQLITE_ERROR' && /JSON/i.test(String((error as Error).message));
}

/** The tasks in range whose `model_usage` cannot be read, with their sessions. */
async function findUnreadableModelUsage(
  db: Kysely<Database>,
  query: UsageReportQuery,
): Promise<Array<{ taskId: string; sessionId: string }>> {
  const rows = await tasksInRange(db, query)
    .select(['t.id', 't.session_id', 't.model_usage'])
    .where('t.model_usage', 'is not', null)
    .execute();
  return rows
    .filter((row) => !isReadableModelUsage(row.model_usage ?? ''))
    .map((row) => ({ taskId: row.id, sessionId: row.session_id }));
}

/**
 * Whether both stores' statement reads `text` as MAOS writes it (store/task-model-usage.ts): a JSON
 * array of objects naming their provider and model (text) whose figures, where present, are numbers
 * (the token counts whole, written without a fraction or exponent), with no text PostgreSQL's jsonb
 * refuses (a NUL character, half of a surrogate pair).
 */
export function isReadableModelUsage(text: string): boolean {
  let unwritten = false;
  let entries: unknown;
  try {
    entries = JSON.parse(text, (key, value: unknown, context?: { source?: string }) => {
      // PostgreSQL's cast to bigint refuses a count written `100.0`, which JSON.parse reads as 100.
      if (typeof value === 'number' && isTokenField(key) && !/^-?\d+$/.test(context?.source ?? '')) {
        unwritten = true;
      }
      return value;
    });
  } catch {
    return false;
  }
  return !unwritten && Array.isArray(entries) && entries.every(isReadableEntry);
}

const TOKEN_FIELDS = ['inputTokens', 'outputTokens', 'cacheReadTokens'] as const;

function isTokenField(key: string): boolean {
  return (TOKEN_FIELDS as readonly string[]).includes(key);
}

function isReadableEntry(entry: unknown): boolean {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return false;
  const fields = entry as Record<string, unknown>;
  if (typeof fields.provider !== 'string' || typeof fields.model !== 'string') return false;
  for (const name of TOKEN_FIELDS) {
    const value = fields[name];
    if (value != null && !Number.isSafeInteger(value)) return false;
  }
  const cost = fields.costUsd;
  if (cost != null && !(typeof cost === 'number' && Number.isFinite(cost))) return false;
  return isWellFormedJson(entry);
}

/** Every string of `value` (keys too) is one jsonb takes: no NUL, no lone surrogate. */
function isWellFormedJson(value: unknown): boolean {
  if (typeof value === 'string') return isJsonbString(value);
  if (typeof value !== 'object' || value === null) return true;
  for (const [key, item] of Object.entries(value)) {
    if (!isJsonbString(key) || !isWellFormedJson(item)) return false;
  }
  return true;
}

function isJsonbString(text: string): boolean {
  return text.isWellFormed() && !text.includes('\u0000');
}

/**
 * The entries of `tasks.model_usage` (a JSON array, store/task-model-usage.ts) of the tasks of the
 * sessions in range (but `skip`'s), one row each: the FROM clause and each field. SQLite's
 * json_each and PostgreSQL's jsonb_array_elements, the one place the two differ.
 */
function modelUsageEntries(
  db: Kysely<Database>,
  query: UsageReportQuery,
  skip: RawBuilder<unknown> | undefined,
) {
  const postgres = isPostgres(db);
  // The tasks skipped are left out inside the function's argument: a CASE is evaluated in order on
  // both stores, a WHERE condition need not be evaluated before the function reads the value.
  const value = skip ? sql`case when ${skip} then null else t.model_usage end` : sql`t.model_usage`;
  const elements = postgres
    ? sql`jsonb_array_elements(cast(${value} as jsonb)) as e(value)`
    : sql`json_each(${value}) as e`;
  const text = (name: string) =>
    postgres ? sql`(e.value ->> ${sql.lit(name)})` : sql`json_extract(e.value, ${sql.lit(`$.${name}`)})`;
  const number = (name: string, type: 'bigint' | 'double precision') =>
    postgres ? sql`cast(${text(name)} as ${sql.raw(type)})` : text(name);
  return {
    from: sql`from tasks t join sessions s on s.id = t.session_id cross join ${elements}
      where s.tenant_id = ${query.tenantId} and t.tenant_id = ${query.tenantId}
        and s.created_at >= ${query.fromMs} and s.created_at < ${query.toMs}
        and t.model_usage is not null`,
    provider: text('provider'),
    model: text('model'),
    inputTokens: number('inputTokens', 'bigint'),
    outputTokens: number('outputTokens', 'bigint'),
    cacheReadTokens: number('cacheReadTokens', 'bigint'),
    costUsd: number('costUsd', 'double precision'),
  };
}

/**
 * The totals less what the model groups account for; its sessions are those charged more than
 * their tasks' models, or with a task no model served. Undefined when nothing is left.
 */
function unattributedFigures(
  totals: UsageFigures,
  groups: readonly UsageGroup[],
  sessions: number,
  tasks: number,
): UsageFigures | undefined {
  const rest = { ...totals };
  for (const group of groups) {
    rest.inputTokens -= group.inputTokens;
    rest.outputTokens -= group.outputTokens;
    rest.cacheReadTokens -= group.cacheReadTokens;
    rest.costUsd -= group.costUsd;
  }
  const figures: UsageFigures = {
    sessions,
    tasks,
    inputTokens: Math.max(0, rest.inputTokens),
    outputTokens: Math.max(0, rest.outputTokens),
    cacheReadTokens: Math.max(0, rest.cacheReadTokens),
    costUsd: Math.max(0, Math.round(rest.costUsd * 1e6) / 1e6),
  };
  const empty =
    figures.sessions === 0 &&
    figures.tasks === 0 &&
    figures.inputTokens === 0 &&
    figures.outputTokens === 0 &&
    figures.cacheReadTokens === 0 &&
    figures.costUsd === 0;
  return empty ? undefined : figures;
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

/** Task counts of the sessions in range, per UTC day number of their creation. */
async function taskCountsByDay(db: Kysely<Database>, query: UsageReportQuery): Promise<Map<string, number>> {
  const rows = await tasksInRange(db, query)
    .select((eb) => [
      eb.fn.countAll<number>().as('tasks'),
      sql<number>`s.created_at / ${sql.lit(DAY_MS)}`.as('key'),
    ])
    .groupBy(sql`s.created_at / ${sql.lit(DAY_MS)}`)
    .execute();
  return new Map(rows.map((row) => [String(Number(row.key)), Number(row.tasks)]));
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
