// Reading a session's event log from its end, over SessionService.listEventsBefore (newest first,
// one indexed read per page): the newest events, the log backwards page by page, and the point
// where a time-ordered condition stops holding. Lets MCP show the end of a log of any length.
import type { SessionEvent } from '../domain/types.ts';
import type { Actor, SessionService } from '../engine/session-service.ts';

/** Which session's log, read as whom. */
export interface SessionLog {
  service: SessionService;
  actor: Actor;
  sessionId: string;
}

export interface ReadBackwardsOptions {
  /** Read events with seq < beforeSeq; null reads from the newest event. */
  beforeSeq: number | null;
  /** Events asked for per read (a service may cap its pages lower: REST does). */
  pageSize: number;
  /** Stop after this many events: bounds the work of one call on a log of any length. */
  maxEvents: number;
}

/**
 * The log backwards from `beforeSeq`: pages of at most `pageSize` events, each NEWEST first, the
 * newest page first, until the start of the log or `maxEvents` events.
 */
export async function* readLogBackwards(
  log: SessionLog,
  options: ReadBackwardsOptions,
): AsyncGenerator<SessionEvent[]> {
  let before = options.beforeSeq;
  for (let left = options.maxEvents; left > 0; ) {
    const page = await log.service.listEventsBefore(
      log.actor,
      log.sessionId,
      before,
      Math.min(options.pageSize, left),
    );
    const oldest = page.at(-1);
    if (oldest === undefined) return;
    yield page;
    left -= page.length;
    // Seqs start at 1: nothing can come before it, so spare the empty read.
    if (oldest.seq <= 1) return;
    before = oldest.seq;
  }
}

/**
 * The newest `count` events with seq < beforeSeq (of the whole log when null), NEWEST first. One
 * read, or a few where the service caps its pages below `count`.
 */
export async function readNewestEvents(
  log: SessionLog,
  beforeSeq: number | null,
  count: number,
): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  for await (const page of readLogBackwards(log, { beforeSeq, pageSize: count, maxEvents: count })) {
    events.push(...page);
  }
  return events;
}

/**
 * Where `isBefore` stops holding: the seq of the oldest event for which it does not hold, i.e. the
 * `beforeSeq` that reads exactly the events for which it holds. Null when it holds for the newest
 * event (read from the end of the log). `isBefore` must hold for a prefix of the log, e.g.
 * "created at or before T" (events are appended in time order).
 *
 * Gallops back from the newest event, then bisects, with one-event reads: O(log d) reads for a
 * point d events from the end, so a point near the end (the usual case) costs a few reads.
 */
export async function findLogBoundary(
  log: SessionLog,
  isBefore: (event: SessionEvent) => boolean,
): Promise<number | null> {
  const newestUpTo = async (seq: number | null): Promise<SessionEvent | undefined> =>
    (await log.service.listEventsBefore(log.actor, log.sessionId, seq === null ? null : seq + 1, 1))[0];
  const newest = await newestUpTo(null);
  if (newest === undefined || isBefore(newest)) return null;
  // Invariants: the event at `high` fails `isBefore`; every event with seq <= `low` passes.
  let high = newest.seq;
  let low: number | undefined;
  /** Whether every event up to `seq` passes (on a prefix, the newest one decides); else lowers `high`. */
  const passesUpTo = async (seq: number): Promise<boolean> => {
    const event = await newestUpTo(seq);
    if (event === undefined || isBefore(event)) return true;
    high = Math.min(high, event.seq);
    return false;
  };
  for (let step = 1; low === undefined; step *= 2) {
    const at = high - step;
    if (at <= 0) low = 0;
    else if (await passesUpTo(at)) low = at;
  }
  // Each probe raises `low` or lowers `high` (a failing event found is above `low`), so this ends
  // even where clock skew between replicas breaks the prefix rule; the answer is then approximate.
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (await passesUpTo(middle)) low = middle;
  }
  return high;
}
