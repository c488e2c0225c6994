// Appends to and reads a session's event log. The seq counter lives on the session row and is
// bumped in the writing transaction, so seqs are contiguous, unique and ordered per session.
import { type Insertable, type Kysely, sql } from 'kysely';
import type { NewEvent } from '../domain/events.ts';
import type { SessionEvent } from '../domain/types.ts';
import { enqueueWebhookDeliveries, hasWebhookEvent } from '../webhooks/outbox.ts';
import { isPostgres } from './advisory-lock.ts';
import { type CompiledRunner, precompileQuery } from './compiled-query.ts';
import { type DamagedJsonReport, parseSessionJson } from './rows.ts';
import type { Database } from './schema.ts';
import { stringifyForStore } from './storable-text.ts';

// SQLite allows 32766 bound variables per statement; 6 columns × 500 rows stays far below.
const INSERT_CHUNK = 500;

/** Events for one session, to be appended in order. */
export interface SessionEvents {
  session: { id: string; tenantId: string };
  events: readonly NewEvent[];
}

type EventRow = Insertable<Database['events']>;

/** The rows for `events` of one session, numbered from `firstSeq`. */
function toEventRows(
  session: { id: string; tenantId: string },
  firstSeq: number,
  events: readonly NewEvent[],
  now: number,
): EventRow[] {
  return events.map((event, index) => ({
    session_id: session.id,
    seq: firstSeq + index,
    tenant_id: session.tenantId,
    type: event.type,
    data: stringifyForStore(event.data),
    created_at: now,
  }));
}

// Inserts of up to this many events are precompiled per row count (an agent step appends a few):
// Kysely building a multi-row INSERT cost more than running it.
const PRECOMPILED_ROWS = 8;
const EVENT_COLUMNS = ['session_id', 'seq', 'tenant_id', 'type', 'data', 'created_at'] as const;
const insertOfRows = new Map<number, CompiledRunner<Database, never>>();

function precompiledInsert(count: number): CompiledRunner<Database, never> {
  let runner = insertOfRows.get(count);
  if (!runner) {
    runner = precompileQuery<Database, never>(count * EVENT_COLUMNS.length, (db, values) =>
      db
        .insertInto('events')
        .values(
          Array.from(
            { length: count },
            (_, row) =>
              Object.fromEntries(
                EVENT_COLUMNS.map((column, index) => [column, values[row * EVENT_COLUMNS.length + index]]),
              ) as unknown as EventRow,
          ),
        ),
    );
    insertOfRows.set(count, runner);
  }
  return runner;
}

/** Multi-row INSERTs of at most INSERT_CHUNK rows each; a few rows (an agent step) in one precompiled INSERT. */
async function insertRows(trx: Kysely<Database>, rows: readonly EventRow[]): Promise<void> {
  if (rows.length > 0 && rows.length <= PRECOMPILED_ROWS) {
    const values = rows.flatMap((row) => EVENT_COLUMNS.map((column) => row[column]));
    await precompiledInsert(rows.length)(trx, ...values);
    return;
  }
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await trx
      .insertInto('events')
      .values(rows.slice(i, i + INSERT_CHUNK))
      .execute();
  }
}

/** Inserts events with seqs `firstSeq…` (the caller has reserved them on the session row). */
export async function insertEventRows(
  trx: Kysely<Database>,
  session: { id: string; tenantId: string },
  firstSeq: number,
  events: readonly NewEvent[],
  now: number,
): Promise<void> {
  await insertRows(trx, toEventRows(session, firstSeq, events, now));
  if (hasWebhookEvent(events)) {
    await enqueueWebhookDeliveries(trx, [{ sessionId: session.id, tenantId: session.tenantId, events }], now);
  }
}

// Sessions per seq-allocating UPDATE: two bound values each, far below SQLite's variable limit.
const SESSION_CHUNK = 1000;

/** Reserves `count` seqs on one session row; returns its new last seq. */
const reserveSeqs = precompileQuery<Database, { last_seq: number }>(2, (db, [count, id]) =>
  db
    .updateTable('sessions')
    .set({ last_seq: sql`last_seq + cast(${count} as integer)` })
    .where('id', '=', id as string)
    .returning('last_seq'),
);

/** Appends events to a session's log (inside the caller's transaction). Returns the last seq. */
export async function appendEvents(
  trx: Kysely<Database>,
  session: { id: string; tenantId: string },
  events: readonly NewEvent[],
  now: number,
): Promise<number> {
  const last = await appendEventsMany(trx, [{ session, events }], now);
  return last.get(session.id) ?? 0;
}

/**
 * Appends events of many sessions with two statements per chunk: one UPDATE reserving each
 * session's seq range, one multi-row INSERT. Returns each session's last seq.
 */
export async function appendEventsMany(
  trx: Kysely<Database>,
  batches: readonly SessionEvents[],
  now: number,
): Promise<Map<string, number>> {
  const merged = new Map<string, { tenantId: string; events: NewEvent[] }>();
  for (const batch of batches) {
    if (batch.events.length === 0) continue;
    const entry = merged.get(batch.session.id) ?? { tenantId: batch.session.tenantId, events: [] };
    entry.events.push(...batch.events);
    merged.set(batch.session.id, entry);
  }
  const lastSeq = new Map<string, number>();
  const ids = [...merged.keys()];
  if (ids.length === 1) {
    // One session (an agent step): one row, locked by the UPDATE itself on PostgreSQL too.
    const id = ids[0]!;
    const { rows } = await reserveSeqs(trx, merged.get(id)!.events.length, id);
    if (rows[0]) lastSeq.set(id, Number(rows[0].last_seq));
  } else {
    for (let i = 0; i < ids.length; i += SESSION_CHUNK) {
      const chunk = ids.slice(i, i + SESSION_CHUNK);
      // PostgreSQL: the subquery locks the rows in id order first (in the same statement); an UPDATE
      // alone locks them in scan order, and two replicas appending to overlapping sessions in
      // different orders would deadlock. Rows the transaction holds already cost no wait.
      const targets = isPostgres(trx)
        ? trx.selectFrom('sessions').select('id').where('id', 'in', chunk).orderBy('id').forNoKeyUpdate()
        : chunk;
      const rows = await trx
        .updateTable('sessions')
        .set({
          last_seq: sql`last_seq + case id ${sql.join(
            chunk.map((id) => sql`when ${id} then cast(${merged.get(id)!.events.length} as integer)`),
            sql` `,
          )} else 0 end`,
        })
        .where('id', 'in', targets)
        .returning(['id', 'last_seq'])
        .execute();
      for (const row of rows) lastSeq.set(row.id, Number(row.last_seq));
    }
  }
  const eventRows: EventRow[] = [];
  for (const [sessionId, entry] of merged) {
    const last = lastSeq.get(sessionId);
    if (last === undefined) throw new Error(`session ${sessionId} vanished while appending events`);
    const first = last - entry.events.length + 1;
    for (const row of toEventRows({ id: sessionId, tenantId: entry.tenantId }, first, entry.events, now)) {
      eventRows.push(row);
    }
  }
  await insertRows(trx, eventRows);
  // Webhook deliveries in the same transaction as their events; no statement unless one is due.
  for (const entry of merged.values()) {
    if (!hasWebhookEvent(entry.events)) continue;
    const appended = [...merged].map(([sessionId, { tenantId, events }]) => ({
      sessionId,
      tenantId,
      events,
    }));
    await enqueueWebhookDeliveries(trx, appended, now);
    break;
  }
  return lastSeq;
}

/**
 * Events with seq > afterSeq, oldest first, at most `limit`; `report` is told of an event whose
 * stored data cannot be read (toSessionEvent).
 */
export async function listSessionEvents(
  db: Kysely<Database>,
  sessionId: string,
  afterSeq: number,
  limit: number,
  report: DamagedJsonReport,
): Promise<SessionEvent[]> {
  const rows = await db
    .selectFrom('events')
    .select(['session_id', 'seq', 'type', 'data', 'created_at'])
    .where('session_id', '=', sessionId)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map((row) => toSessionEvent(row, report));
}

/**
 * Events with seq < beforeSeq (the newest when null), NEWEST FIRST, at most `limit`. Walks the
 * (session_id, seq) primary key backwards from its end or from `beforeSeq`: no sort, and only the
 * rows returned are read however long the log is.
 */
export async function listSessionEventsBefore(
  db: Kysely<Database>,
  sessionId: string,
  beforeSeq: number | null,
  limit: number,
  report: DamagedJsonReport,
): Promise<SessionEvent[]> {
  const rows = await selectEventsBefore(db, sessionId, beforeSeq, limit).execute();
  return rows.map((row) => toSessionEvent(row, report));
}

/** The query of listSessionEventsBefore, unexecuted (tests check its plan on each dialect). */
export function selectEventsBefore(
  db: Kysely<Database>,
  sessionId: string,
  beforeSeq: number | null,
  limit: number,
) {
  const query = db
    .selectFrom('events')
    .select(['session_id', 'seq', 'type', 'data', 'created_at'])
    .where('session_id', '=', sessionId);
  return (beforeSeq === null ? query : query.where('seq', '<', beforeSeq))
    .orderBy('seq', 'desc')
    .limit(limit);
}

/**
 * A row as read; PostgreSQL returns bigint columns as strings, hence the Number() calls. Data that
 * is not a JSON object (a hand edit of the row gone wrong) is read as `{}` and told to `report`, as
 * a session's damaged metadata is: it made every page of the session's events holding it a 500, and
 * its event stream end at that event, for good.
 */
function toSessionEvent(
  row: Pick<Database['events'], 'session_id' | 'seq' | 'type' | 'data' | 'created_at'>,
  report: DamagedJsonReport,
): SessionEvent {
  return {
    sessionId: row.session_id,
    seq: Number(row.seq),
    type: row.type,
    data: (parseSessionJson(row.data, row.session_id, 'events.data', report) ?? {}) as Record<
      string,
      unknown
    >,
    createdAt: Number(row.created_at),
  };
}
