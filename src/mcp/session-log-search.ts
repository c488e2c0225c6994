// Reading a session's event log from its end or from a point in time, over the forward-only
// SessionService.listEvents: a binary search with small probes finds the point, then the log is
// read backwards in windows. Lets MCP show the newest events of a log of any length.
import type { SessionEvent } from '../domain/types.ts';
import type { Actor, SessionService } from '../engine/session-service.ts';

/** Which session's log, read as whom. */
export interface SessionLog {
  service: SessionService;
  actor: Actor;
  sessionId: string;
}

/**
 * Events the first probe reads: a log shorter than this is located in one or two reads. Later
 * probes read one event each, since only the first event after the probe point matters.
 */
const FIRST_PROBE_EVENTS = 100;

/**
 * The seq of the last event for which `isBefore` holds, 0 when there is none. `isBefore` must hold
 * for a prefix of the log, e.g. "created at or before T" (events are appended in time order).
 * O(log n) reads: gallops forward from the start, then bisects.
 */
export async function findLogBoundary(
  log: SessionLog,
  isBefore: (event: SessionEvent) => boolean,
): Promise<number> {
  const first = await log.service.listEvents(log.actor, log.sessionId, 0, FIRST_PROBE_EVENTS);
  const firstAfter = first.findIndex((event) => !isBefore(event));
  if (firstAfter === 0 || first.length === 0) return 0;
  if (firstAfter > 0) return first[firstAfter - 1]?.seq ?? 0;
  // Invariant from here: the first event after `low` is before the boundary; after `high`, it is not.
  let low = (first.at(-1)?.seq ?? 1) - 1;
  let high: number | undefined;
  /** Whether the first event after `afterSeq` is before; moves `low` past any gap in the seqs. */
  const probe = async (afterSeq: number): Promise<boolean> => {
    const [event] = await log.service.listEvents(log.actor, log.sessionId, afterSeq, 1);
    if (event === undefined || !isBefore(event)) return false;
    low = Math.max(low, event.seq - 1);
    return true;
  };
  for (let step = 1; high === undefined; step *= 2) {
    const at = low + step;
    if (!(await probe(at))) high = at;
  }
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (!(await probe(middle))) high = middle;
    // A log that grew or reordered times between probes must not move `low` past `high`.
    low = Math.min(low, high - 1);
  }
  return high;
}

/** The seq of the newest event of the log, 0 for an empty one. */
export function findLastSeq(log: SessionLog): Promise<number> {
  return findLogBoundary(log, () => true);
}

/** Events with `low < seq <= high`, oldest first. */
async function readRange(log: SessionLog, low: number, high: number): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  for (let after = low; after < high; ) {
    // A service may return fewer than asked (REST caps pages), so read until past `high`.
    const page = await log.service.listEvents(log.actor, log.sessionId, after, high - after);
    const inRange = page.filter((event) => event.seq <= high);
    events.push(...inRange);
    const last = inRange.at(-1);
    if (last === undefined || inRange.length < page.length) break;
    after = last.seq;
  }
  return events;
}

export interface ReadBackwardsOptions {
  /** The newest seq to read. */
  endSeq: number;
  /** Seqs per window, i.e. per read (or per few reads where a service caps its pages). */
  windowSize: number;
  /** Stop after this many seqs: bounds the work of one call on a log of any length. */
  maxSeqs: number;
}

/**
 * The log backwards from `endSeq`: windows of at most `windowSize` seqs, the newest window first,
 * each oldest first. A window can be empty (retention prunes old output lines).
 */
export async function* readLogBackwards(
  log: SessionLog,
  options: ReadBackwardsOptions,
): AsyncGenerator<SessionEvent[]> {
  const stopAt = Math.max(0, options.endSeq - options.maxSeqs);
  for (let high = options.endSeq; high > stopAt; ) {
    const low = Math.max(stopAt, high - options.windowSize);
    yield await readRange(log, low, high);
    high = low;
  }
}
