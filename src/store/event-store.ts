// Appends to and reads a session's event log. The seq counter lives on the session row and is
// bumped in the writing transaction, so seqs are contiguous, unique and ordered per session.
import { type Kysely, sql } from 'kysely';
import type { NewEvent } from '../domain/events.ts';
import type { SessionEvent } from '../domain/types.ts';
import type { Database } from './schema.ts';

// SQLite allows 32766 bound variables per statement; 6 columns × 500 rows stays far below.
const INSERT_CHUNK = 500;

/** Appends events to a session's log (inside the caller's transaction). Returns the last seq. */
export async function appendEvents(
  trx: Kysely<Database>,
  session: { id: string; tenantId: string },
  events: readonly NewEvent[],
  now: number,
): Promise<number> {
  if (events.length === 0) return 0;
  const row = await trx
    .updateTable('sessions')
    .set({ last_seq: sql`last_seq + ${events.length}` })
    .where('id', '=', session.id)
    .returning('last_seq')
    .executeTakeFirstOrThrow();
  const last = Number(row.last_seq);
  const first = last - events.length + 1;
  const rows = events.map((event, index) => ({
    session_id: session.id,
    seq: first + index,
    tenant_id: session.tenantId,
    type: event.type,
    data: JSON.stringify(event.data),
    created_at: now,
  }));
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await trx
      .insertInto('events')
      .values(rows.slice(i, i + INSERT_CHUNK))
      .execute();
  }
  return last;
}

/** Events with seq > afterSeq, oldest first, at most `limit`. */
export async function listSessionEvents(
  db: Kysely<Database>,
  sessionId: string,
  afterSeq: number,
  limit: number,
): Promise<SessionEvent[]> {
  const rows = await db
    .selectFrom('events')
    .select(['session_id', 'seq', 'type', 'data', 'created_at'])
    .where('session_id', '=', sessionId)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    sessionId: row.session_id,
    seq: Number(row.seq),
    type: row.type,
    data: JSON.parse(row.data) as Record<string, unknown>,
    createdAt: Number(row.created_at),
  }));
}
