// Session persistence: inserting a new session with its plan, agents, tasks and dependencies;
// reading a session's detail; listing with keyset pagination. Every read is scoped to a tenant.
import type { Kysely } from 'kysely';
import { firstPendingPhase } from '../domain/task-state.ts';
import type {
  AgentRecord,
  PlanBody,
  SessionDetail,
  SessionRecord,
  SessionStatus,
  TaskRecord,
  TaskStatus,
} from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import { precompileQuery } from './compiled-query.ts';
import { findReadConnection, precompileReadQuery } from './read-connection.ts';
import {
  type DamagedJsonReport,
  parseStoredPlan,
  toAgentRecords,
  toSessionRecord,
  toTaskRecord,
  toUsage,
} from './rows.ts';
import type { AgentsTable, Database, SessionsTable, TaskDependenciesTable, TasksTable } from './schema.ts';
import { stringifyForStore } from './storable-text.ts';
import { loadDependencyNames } from './task-graph.ts';

// Bound-variable limit of SQLite: tasks have ~27 columns, so 500 rows per insert is safe.
const CHUNK = 500;

/** The agents, tasks and dependencies of planned work (a new session's plan, or its first plan). */
export interface PlannedRows {
  agents: AgentsTable[];
  tasks: TasksTable[];
  dependencies: TaskDependenciesTable[];
}

export interface NewSessionRows extends PlannedRows {
  session: SessionsTable;
  /** Null for a session the orchestrator has yet to plan (its plan task is among `tasks`). */
  plan: PlanBody | null;
}

/** Inserts rows in statements of at most 500 rows (SQLite bounds a statement's parameters). */
export async function insertChunked<T extends keyof Database>(
  trx: Kysely<Database>,
  table: T,
  rows: ReadonlyArray<Database[T]>,
): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    // Generic over the table, which Kysely's value types cannot follow; rows are typed by the caller.
    await trx
      .insertInto(table)
      .values(rows.slice(i, i + CHUNK) as never)
      .execute();
  }
}

/** Inserts a session and everything planned for it (inside the caller's transaction). */
export async function insertSession(trx: Kysely<Database>, rows: NewSessionRows): Promise<void> {
  await trx.insertInto('sessions').values(rows.session).execute();
  if (rows.plan !== null) {
    await trx
      .insertInto('plans')
      .values({
        session_id: rows.session.id,
        version: rows.session.plan_version,
        tenant_id: rows.session.tenant_id,
        body: stringifyForStore(rows.plan),
        created_at: rows.session.created_at,
      })
      .execute();
  }
  await insertPlannedRows(trx, rows);
}

/** Inserts planned agents, tasks and dependencies (inside the caller's transaction). */
export async function insertPlannedRows(trx: Kysely<Database>, rows: PlannedRows): Promise<void> {
  await insertChunked(trx, 'agents', rows.agents);
  await insertChunked(trx, 'tasks', rows.tasks);
  await insertChunked(trx, 'task_dependencies', rows.dependencies);
}

// Hot path of GET /v1/sessions/:id: compiled once per database, run with fresh values.
const selectSessionRow = precompileQuery<Database, SessionsTable>(2, (db, [id, tenantId]) =>
  db
    .selectFrom('sessions')
    .selectAll()
    .where('id', '=', id as string)
    .where('tenant_id', '=', tenantId as string),
);
const selectLatestPlanBody = precompileQuery<Database, { body: string }>(1, (db, [sessionId]) =>
  db
    .selectFrom('plans')
    .select('body')
    .where('session_id', '=', sessionId as string)
    .orderBy('version', 'desc')
    .limit(1),
);
const selectSessionTasks = precompileQuery<Database, TasksTable>(1, (db, [sessionId]) =>
  db
    .selectFrom('tasks')
    .selectAll()
    .where('session_id', '=', sessionId as string)
    .orderBy('position'),
);
const selectSessionAgents = precompileQuery<Database, { id: string; name: string; role: string }>(
  1,
  (db, [sessionId]) =>
    db
      .selectFrom('agents')
      .select(['id', 'name', 'role'])
      .where('session_id', '=', sessionId as string),
);

/** The session row, or SESSION_NOT_FOUND (also when it belongs to another tenant). */
export async function getSessionRow(
  db: Kysely<Database>,
  tenantId: string,
  sessionId: string,
): Promise<SessionsTable> {
  const row = (await selectSessionRow(db, sessionId, tenantId)).rows[0];
  if (!row) throw new AppError('SESSION_NOT_FOUND', `Session ${sessionId} not found`);
  return row;
}

// The same read on the database's read connection (SQLite), synchronously: no connection lock,
// no promise chain, never behind an open write batch.
const readSessionRow = precompileReadQuery<Database, SessionsTable>(2, (db, [id, tenantId]) =>
  db
    .selectFrom('sessions')
    .selectAll()
    .where('id', '=', id as string)
    .where('tenant_id', '=', tenantId as string),
);

/**
 * The session row as last committed, read on the database's read connection (in a shared read
 * transaction, see read-connection.ts); undefined when `db` has none (PostgreSQL, a transaction,
 * tracing on): then use getSessionRow. Rejects with SESSION_NOT_FOUND as getSessionRow.
 */
export function readCommittedSessionRow(
  db: Kysely<Database>,
  tenantId: string,
  sessionId: string,
): Promise<SessionsTable> | undefined {
  const reader = findReadConnection(db);
  if (!reader) return undefined;
  return reader.batch(() => {
    const row = readSessionRow(db, reader, sessionId, tenantId)[0];
    if (!row) throw new AppError('SESSION_NOT_FOUND', `Session ${sessionId} not found`);
    return row;
  });
}

/** What a session's detail adds to its row: the latest plan, the tasks (in plan order), the agents. */
export interface SessionContents {
  plan: PlanBody | null;
  tasks: TaskRecord[];
  agents: AgentRecord[];
}

/**
 * Of each task, what the session read without its tasks shows of them (its agents' usage, the phase
 * waiting for approval): no result, instructions or error, which are most of a large session's rows.
 */
const selectSessionTaskTotals = precompileQuery<
  Database,
  Pick<
    TasksTable,
    'agent_id' | 'status' | 'phase' | 'input_tokens' | 'output_tokens' | 'cache_read_tokens' | 'cost_usd'
  >
>(1, (db, [sessionId]) =>
  db
    .selectFrom('tasks')
    .select(['agent_id', 'status', 'phase', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cost_usd'])
    .where('session_id', '=', sessionId as string)
    // The detail's order (selectSessionTasks): the agents are listed in the order of their first task.
    .orderBy('position'),
);

/** What a session's detail without its tasks adds to its row: the latest plan, the agents. */
export interface SessionOverviewContents {
  plan: PlanBody | null;
  agents: AgentRecord[];
  /** The first phase with a pending task (what waits for approval while the session does), or null. */
  pendingPhase: number | null;
}

/**
 * loadSessionContents without the tasks: the agents' usage and the pending phase are read from the
 * tasks' status, phase and usage columns only.
 */
export async function loadSessionOverviewContents(
  db: Kysely<Database>,
  sessionId: string,
  report: DamagedJsonReport,
): Promise<SessionOverviewContents> {
  const plan = (await selectLatestPlanBody(db, sessionId)).rows[0];
  const rows = (await selectSessionTaskTotals(db, sessionId)).rows;
  const agents = (await selectSessionAgents(db, sessionId)).rows;
  const tasks = rows.map((row) => ({
    agentId: row.agent_id,
    status: row.status as TaskStatus,
    phase: Number(row.phase),
    usage: toUsage(row),
  }));
  return {
    plan: plan ? (parseStoredPlan(plan.body, sessionId, report) ?? null) : null,
    agents: toAgentRecords(agents, tasks),
    pendingPhase: firstPendingPhase(tasks),
  };
}

/** Loads the latest plan, the tasks and the agents of a session whose row the caller already read (tenant-checked). */
export async function loadSessionContents(
  db: Kysely<Database>,
  sessionId: string,
  report: DamagedJsonReport,
): Promise<SessionContents> {
  const plan = (await selectLatestPlanBody(db, sessionId)).rows[0];
  const rows = (await selectSessionTasks(db, sessionId)).rows;
  const deps = await loadDependencyNames(db, sessionId);
  const agents = (await selectSessionAgents(db, sessionId)).rows;
  const tasks = rows.map((task) => toTaskRecord(task, deps.get(task.id) ?? []));
  return {
    plan: plan ? (parseStoredPlan(plan.body, sessionId, report) ?? null) : null,
    tasks,
    agents: toAgentRecords(agents, tasks),
  };
}

/** Session, latest plan and tasks (in plan order). */
export async function getSessionDetail(
  db: Kysely<Database>,
  tenantId: string,
  sessionId: string,
  report: DamagedJsonReport,
): Promise<SessionDetail> {
  const row = await getSessionRow(db, tenantId, sessionId);
  const contents = await loadSessionContents(db, sessionId, report);
  return {
    ...toSessionRecord(row, report),
    plan: contents.plan,
    tasks: contents.tasks,
    agents: contents.agents,
  };
}

interface CursorPosition {
  createdAt: number;
  id: string;
}

/** Opaque cursor: base64url of the last item's (created_at, id). */
export function encodeCursor(position: CursorPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id])).toString('base64url');
}

const STORED_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Parses a cursor; INVALID_CURSOR when it was not produced by encodeCursor: also one with a
 * character added or changed that base64 decoding would let pass (it must encode back to itself).
 */
export function decodeCursor(cursor: string): CursorPosition {
  try {
    if (!/^[A-Za-z0-9_-]{1,512}$/.test(cursor)) throw new Error('shape');
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      Number.isSafeInteger(value[0]) &&
      typeof value[1] === 'string' &&
      STORED_ID.test(value[1])
    ) {
      const position = { createdAt: value[0] as number, id: value[1] };
      if (encodeCursor(position) === cursor) return position;
    }
  } catch {
    // Falls through to the error below.
  }
  throw new AppError('INVALID_CURSOR', 'The cursor is not valid; start again without it');
}

/** Newest first; `limit` items plus the cursor of the next page. */
export async function listSessionRecords(
  db: Kysely<Database>,
  tenantId: string,
  query: { status?: SessionStatus; retryOf?: string; limit: number; cursor?: string },
  report: DamagedJsonReport,
): Promise<{ items: SessionRecord[]; nextCursor: string | null }> {
  let select = db.selectFrom('sessions').selectAll().where('tenant_id', '=', tenantId);
  if (query.status) select = select.where('status', '=', query.status);
  if (query.retryOf !== undefined) select = select.where('retry_of', '=', query.retryOf);
  if (query.cursor !== undefined) {
    const after = decodeCursor(query.cursor);
    select = select.where((eb) =>
      eb.or([
        eb('created_at', '<', after.createdAt),
        eb.and([eb('created_at', '=', after.createdAt), eb('id', '<', after.id)]),
      ]),
    );
  }
  const rows = await select
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(query.limit + 1)
    .execute();
  const items = rows.slice(0, query.limit).map((row) => toSessionRecord(row, report));
  const last = items.at(-1);
  const nextCursor =
    rows.length > query.limit && last ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null;
  return { items, nextCursor };
}
