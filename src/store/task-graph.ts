// Reading a session's task graph: states and dependencies for advancing it, outputs when it ends,
// and the outputs of a task's dependencies for its run. Hot per agent step, so the one-session
// and one-task cases are precompiled, and a session's dependency edges are kept between its steps.
import type { Kysely } from 'kysely';
import type { DependencyOutput } from '../agents/runtimes/runtime.ts';
import type { AdvanceTask } from '../domain/advance.ts';
import type { TaskStatus } from '../domain/types.ts';
import { precompileQuery } from './compiled-query.ts';
import type { Database, TasksTable } from './schema.ts';

export type GraphTask = AdvanceTask & { role: string; position: number };

// No result or error: a step needs only the states; outputs are read when the session ends
// (loadTaskOutputs), so a step's read does not grow with the size of earlier agents' answers.
const GRAPH_COLUMNS = ['id', 'session_id', 'name', 'status', 'role', 'position'] as const;

// Each read below is built once here; the one-session (one-task) form is precompiled, the form
// for several is built per call.
const graphTasks = (db: Kysely<Database>) => db.selectFrom('tasks').select(GRAPH_COLUMNS);
const dependencyEdges = (db: Kysely<Database>) =>
  db.selectFrom('task_dependencies').select(['task_id', 'depends_on_task_id']);

/** The tasks of one session in plan order, as loadSessionGraphs reads them. */
const selectGraphTasks = precompileQuery<Database, Pick<TasksTable, (typeof GRAPH_COLUMNS)[number]>>(
  1,
  (db, [sessionId]) =>
    graphTasks(db)
      .where('session_id', '=', sessionId as string)
      .orderBy('position'),
);

const selectTaskOutputs = precompileQuery<Database, Pick<TasksTable, 'id' | 'kind' | 'result' | 'error'>>(
  1,
  (db, [sessionId]) =>
    db
      .selectFrom('tasks')
      .select(['id', 'kind', 'result', 'error'])
      .where('session_id', '=', sessionId as string),
);

/** Kind, result and error of every task of a session, by task id (for the session's outcome). */
export async function loadTaskOutputs(
  trx: Kysely<Database>,
  sessionId: string,
): Promise<Map<string, { kind: string; result: string | null; error: string | null }>> {
  const { rows } = await selectTaskOutputs(trx, sessionId);
  return new Map(rows.map((row) => [row.id, { kind: row.kind, result: row.result, error: row.error }]));
}

/**
 * The task graphs of several sessions (two statements), keyed by session id, tasks in plan order;
 * states and dependencies only (no result or error).
 */
export async function loadSessionGraphs(
  trx: Kysely<Database>,
  sessionIds: readonly string[],
): Promise<Map<string, GraphTask[]>> {
  const graphs = new Map<string, GraphTask[]>();
  if (sessionIds.length === 0) return graphs;
  const ids = [...sessionIds];
  // One session (an agent step): precompiled statements, no query building.
  const rows =
    ids.length === 1
      ? (await selectGraphTasks(trx, ids[0]!)).rows
      : await graphTasks(trx)
          .where('session_id', 'in', ids)
          .orderBy('session_id')
          .orderBy('position')
          .execute();
  // Edges by id; the names come from the rows just read (a task depends on tasks of its session).
  const edges =
    ids.length === 1
      ? await loadEdgesOfOne(trx, ids[0]!, rows)
      : await dependencyEdges(trx).where('session_id', 'in', ids).execute();
  const deps = groupDependencyNames(namedDependencies(rows, edges));
  for (const row of rows) {
    const list = graphs.get(row.session_id) ?? [];
    list.push({
      id: row.id,
      name: row.name,
      status: row.status as TaskStatus,
      role: row.role,
      position: Number(row.position),
      dependsOn: deps.get(row.id) ?? [],
    });
    graphs.set(row.session_id, list);
  }
  return graphs;
}

/** The dependency edges of one session by task id (names come from the graph's own rows). */
const selectDependencyEdges = precompileQuery<Database, DependencyEdge>(1, (db, [sessionId]) =>
  dependencyEdges(db).where('session_id', '=', sessionId as string),
);

interface DependencyEdge {
  task_id: string;
  depends_on_task_id: string;
}

/**
 * Sessions whose edges are kept, per database. Why this many: a step reads one session's graph;
 * the sessions a server advances at once are far fewer, and an entry is a few dozen strings.
 */
const EDGE_CACHE_SESSIONS = 1024;

/** Per database (its dialect adapter, shared by its transactions): session id → its tasks and edges. */
const edgeCaches = new WeakMap<object, Map<string, { taskIds: string[]; edges: DependencyEdge[] }>>();

/**
 * The edges of one session, read again only when its tasks are not the ones `rows` (just read in
 * the same transaction) lists. A session's edges are written only with a task of their own: each
 * edge is inserted with its dependant, a new task (store/session-store.ts, task-store.ts
 * insertTaskDependencies), and deleted with one of its two tasks; task ids are never reused. So
 * the same task ids mean the same edges, on every replica, and each agent step saves a read.
 */
async function loadEdgesOfOne(
  trx: Kysely<Database>,
  sessionId: string,
  rows: readonly { id: string }[],
): Promise<DependencyEdge[]> {
  const adapter = trx.getExecutor().adapter;
  let cache = edgeCaches.get(adapter);
  if (!cache) {
    cache = new Map();
    edgeCaches.set(adapter, cache);
  }
  const cached = cache.get(sessionId);
  if (cached && sameIds(cached.taskIds, rows)) return cached.edges;
  const edges = (await selectDependencyEdges(trx, sessionId)).rows;
  cache.delete(sessionId);
  if (cache.size >= EDGE_CACHE_SESSIONS) cache.delete(cache.keys().next().value!);
  cache.set(sessionId, { taskIds: rows.map((row) => row.id), edges });
  return edges;
}

function sameIds(ids: readonly string[], rows: readonly { id: string }[]): boolean {
  if (ids.length !== rows.length) return false;
  for (let i = 0; i < ids.length; i++) if (ids[i] !== rows[i]!.id) return false;
  return true;
}

/** Edges by id as (task id, name of the task it depends on), without joining the tasks again. */
function namedDependencies(
  tasks: readonly { id: string; name: string }[],
  edges: readonly { task_id: string; depends_on_task_id: string }[],
): Array<{ task_id: string; name: string }> {
  const names = new Map(tasks.map((task) => [task.id, task.name]));
  return edges.flatMap((edge) => {
    const name = names.get(edge.depends_on_task_id);
    return name === undefined ? [] : [{ task_id: edge.task_id, name }];
  });
}

const selectDependencyNames = precompileQuery<Database, { task_id: string; name: string }>(
  1,
  (db, [sessionId]) =>
    db
      .selectFrom('task_dependencies as d')
      .innerJoin('tasks as t', 't.id', 'd.depends_on_task_id')
      .select(['d.task_id', 't.name'])
      .where('d.session_id', '=', sessionId as string)
      // Plan order, as a page of the session's tasks lists them (store/session-task-pages.ts): a
      // client reading some tasks by page and the others in the detail sees each as the other does.
      // Without an order they came as the rows lie (as written in the plan, on most days).
      .orderBy('t.position')
      .orderBy('t.id'),
);

/** task id → names of the tasks it depends on (in plan order), for one session. */
export async function loadDependencyNames(
  db: Kysely<Database>,
  sessionId: string,
): Promise<Map<string, string[]>> {
  const { rows } = await selectDependencyNames(db, sessionId);
  return groupDependencyNames(rows);
}

/** Dependency rows (task id, name of a task it depends on) as task id → names. */
function groupDependencyNames(rows: readonly { task_id: string; name: string }[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const row of rows) {
    const names = map.get(row.task_id);
    if (names) names.push(row.name);
    else map.set(row.task_id, [row.name]);
  }
  return map;
}

/** The tasks a task depends on, with their outputs, in plan order. */
const dependencyOutputs = (db: Kysely<Database>) =>
  db
    .selectFrom('task_dependencies as d')
    .innerJoin('tasks as t', 't.id', 'd.depends_on_task_id')
    .select(['d.task_id', 't.id', 't.name', 't.role', 't.result'])
    .orderBy('t.position');

const selectDependencyOutputs = precompileQuery<
  Database,
  { task_id: string; id: string; name: string; role: string; result: string | null }
>(1, (db, [taskId]) => dependencyOutputs(db).where('d.task_id', '=', taskId as string));

/** Outputs of the dependencies of each given task (for the runtime's context). */
export async function loadDependencyOutputs(
  db: Kysely<Database>,
  taskIds: readonly string[],
): Promise<Map<string, DependencyOutput[]>> {
  const map = new Map<string, DependencyOutput[]>();
  if (taskIds.length === 0) return map;
  const rows =
    taskIds.length === 1
      ? (await selectDependencyOutputs(db, taskIds[0]!)).rows
      : await dependencyOutputs(db)
          .where('d.task_id', 'in', [...taskIds])
          .execute();
  for (const row of rows) {
    const list = map.get(row.task_id) ?? [];
    list.push({ taskId: row.id, name: row.name, role: row.role, output: row.result ?? '' });
    map.set(row.task_id, list);
  }
  return map;
}
