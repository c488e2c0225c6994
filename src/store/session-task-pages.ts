// A session's tasks a page at a time, in plan order (GET /v1/sessions/:id/tasks): keyset pagination
// on (position, id) over the index of migration 0034, so a page reads its own rows, not the session's;
// optionally only the tasks of given ids (those a client's events named).
import type { Kysely } from 'kysely';
import type { TaskRecord } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import { toTaskRecord } from './rows.ts';
import type { Database } from './schema.ts';
import { getSessionRow } from './session-store.ts';

interface TaskPosition {
  position: number;
  id: string;
}

/**
 * Marks a task cursor apart from the other lists' (a sessions cursor is a pair too): one given to
 * the wrong list is refused as INVALID_CURSOR instead of being read as a position.
 */
const TASK_CURSOR_TAG = 't';

const STORED_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Largest position a task can have: `tasks.position` is an `integer` column, which PostgreSQL
 * refuses to compare with a larger value (a cursor made up with one was a 500, not a 400).
 */
const MAX_POSITION = 2_147_483_647;

/** Opaque cursor: base64url of the last task's (position, id), tagged. */
export function encodeTaskCursor(position: TaskPosition): string {
  return Buffer.from(JSON.stringify([TASK_CURSOR_TAG, position.position, position.id])).toString('base64url');
}

/**
 * Parses a task cursor; INVALID_CURSOR when encodeTaskCursor did not produce it (also one with a
 * character changed that base64 decoding would let pass: it must encode back to itself).
 */
export function decodeTaskCursor(cursor: string): TaskPosition {
  try {
    if (!/^[A-Za-z0-9_-]{1,512}$/.test(cursor)) throw new Error('shape');
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 3 &&
      value[0] === TASK_CURSOR_TAG &&
      Number.isInteger(value[1]) &&
      value[1] >= 0 &&
      value[1] <= MAX_POSITION &&
      typeof value[2] === 'string' &&
      STORED_ID.test(value[2])
    ) {
      const position = { position: value[1] as number, id: value[2] };
      if (encodeTaskCursor(position) === cursor) return position;
    }
  } catch {
    // Falls through to the error below.
  }
  throw new AppError(
    'INVALID_CURSOR',
    'The cursor is not one returned by this endpoint; start again without it',
  );
}

/** A page of a session's tasks and the cursor of the next one (null on the last). */
export interface TaskPage {
  items: TaskRecord[];
  nextCursor: string | null;
  /**
   * The session's plan version as the read began (read before the tasks): the page's tasks are at
   * least that current. A page of a higher version than the pages before it follows a re-plan,
   * which may have replaced pending tasks already read.
   */
  planVersion: number;
}

/** What a page is asked for: its size, the cursor of the page before, and optionally which tasks. */
export interface TaskPageQuery {
  limit: number;
  cursor?: string;
  /** Only the tasks of these ids (of this session; ids of no such task are not on any page). */
  ids?: readonly string[];
}

/**
 * `limit` tasks of the session after `cursor`, in plan order (position, then id), only those of
 * `ids` when given; SESSION_NOT_FOUND for a session of another tenant or none. Tasks a re-plan
 * appends come after every task there was (their positions are higher), so pages already read stay
 * as they were.
 */
export async function listSessionTaskPage(
  db: Kysely<Database>,
  tenantId: string,
  sessionId: string,
  query: TaskPageQuery,
): Promise<TaskPage> {
  const after = query.cursor === undefined ? undefined : decodeTaskCursor(query.cursor);
  // Read before the tasks: a re-plan committed between the two reads shows in the tasks, not in the
  // version, so a client comparing versions reads again rather than keeping replaced tasks.
  const session = await getSessionRow(db, tenantId, sessionId);
  const rows = await selectTaskPage(db, tenantId, sessionId, after, query.limit + 1, query.ids).execute();
  const page = rows.slice(0, query.limit);
  const dependsOn = await loadPageDependencyNames(
    db,
    sessionId,
    page.map((row) => row.id),
  );
  const items = page.map((row) => toTaskRecord(row, dependsOn.get(row.id) ?? []));
  const last = page.at(-1);
  const nextCursor =
    rows.length > query.limit && last
      ? encodeTaskCursor({ position: Number(last.position), id: last.id })
      : null;
  return { items, nextCursor, planVersion: Number(session.plan_version) };
}

/**
 * The page's statement: `limit` tasks of the session after `after`, in plan order. The cursor is one
 * row-value comparison, `(position, id) > (…, …)`, which both stores read as a range of the index
 * of migration 0034 starting at the cursor. Spelt `position > … or (position = … and id > …)`, only
 * `session_id` bounded the index read: SQLite walked the session's index entries from its first task
 * on every page, PostgreSQL did as well (filtering each row) or read every task after the cursor and
 * sorted them, as its statistics led it. `ids` narrows the range read to those tasks.
 */
export function selectTaskPage(
  db: Kysely<Database>,
  tenantId: string,
  sessionId: string,
  after: TaskPosition | undefined,
  limit: number,
  ids?: readonly string[],
) {
  let select = db
    .selectFrom('tasks')
    .selectAll()
    .where('session_id', '=', sessionId)
    .where('tenant_id', '=', tenantId);
  if (ids !== undefined) select = select.where('id', 'in', ids.length > 0 ? [...ids] : ['']);
  if (after) {
    select = select.where((eb) => eb(eb.refTuple('position', 'id'), '>', eb.tuple(after.position, after.id)));
  }
  return select.orderBy('position').orderBy('id').limit(limit);
}

/** task id → names of the tasks it depends on (in plan order), for the tasks of one page. */
async function loadPageDependencyNames(
  db: Kysely<Database>,
  sessionId: string,
  taskIds: readonly string[],
): Promise<Map<string, string[]>> {
  const names = new Map<string, string[]>();
  if (taskIds.length === 0) return names;
  const rows = await db
    .selectFrom('task_dependencies as d')
    .innerJoin('tasks as t', 't.id', 'd.depends_on_task_id')
    .select(['d.task_id', 't.name'])
    .where('d.session_id', '=', sessionId)
    .where('d.task_id', 'in', taskIds)
    .orderBy('t.position')
    .orderBy('t.id')
    .execute();
  for (const row of rows) {
    const list = names.get(row.task_id);
    if (list) list.push(row.name);
    else names.set(row.task_id, [row.name]);
  }
  return names;
}
