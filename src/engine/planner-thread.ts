// The bounded summary of earlier sessions in a thread that the orchestrator receives, so a
// follow-up objective ("now add pagination") is planned with the earlier work in mind. Pure.
import { headOf } from '../domain/text-cut.ts';

/** What the summary needs from an earlier session of the thread. */
export interface ThreadSession {
  objective: string;
  status: string;
  result: string | null;
  createdAt: number;
}

const ENDED_STATUSES = new Set(['completed', 'failed', 'cancelled']);

/**
 * A session's status as the orchestrator reads it. One still going (a follow-up submitted before it
 * ended does not wait for it) has no result yet: said in words, or the orchestrator plans as if its
 * work were done. Phase gates read the summary again, with the result once it has ended.
 */
function describeStatus(status: string): string {
  if (ENDED_STATUSES.has(status)) return status;
  return `${status}, not finished: its result is not known yet, do not assume its work is done`;
}

/**
 * `text` on one line: an objective or a result of several lines could go on as entries of its own
 * (`- Earlier objective (completed): …`) in the summary. NEL, which \s leaves, included.
 */
function oneLine(text: string): string {
  return text.replace(/[\s\u0085]+/g, ' ').trim();
}

/** Default size of the whole summary: enough for a few sessions without crowding out the plan. */
export const DEFAULT_THREAD_SUMMARY_CHARS = 6000;

/**
 * Newest sessions matter most: they are kept in full first, older ones are shortened, and the
 * oldest are dropped (counted) once the budget is spent. Returned in chronological order.
 */
export function summariseThread(
  sessions: readonly ThreadSession[],
  maxChars = DEFAULT_THREAD_SUMMARY_CHARS,
  /** Sessions older than all of `sessions` that were not read: omitted too. */
  olderNotRead = 0,
): string {
  const newestFirst = [...sessions].sort((a, b) => b.createdAt - a.createdAt);
  const kept: string[] = [];
  let used = 0;
  let dropped = 0;
  // Room for the "(n older sessions omitted)" line, and a cap per result so the newest session
  // cannot take the whole budget.
  const budget = maxChars - 40;
  const perResult = Math.max(300, Math.floor(maxChars / 3));
  for (const [index, session] of newestFirst.entries()) {
    const left = budget - used;
    const header = `- Earlier objective (${describeStatus(session.status)}): ${headOf(oneLine(session.objective), 300)}`;
    if (left < header.length + 40) {
      // This one and every older one: an older session kept after a newer one left out would
      // break the order the omitted-line promises (the older ones are what is missing).
      dropped = newestFirst.length - index;
      break;
    }
    const result = oneLine(session.result ?? '');
    const room = Math.min(perResult, left - header.length - 12);
    const body =
      result.length === 0
        ? ''
        : `\n  Result: ${result.length > room ? `${headOf(result, Math.max(0, room - 1))}…` : result}`;
    const entry = `${header}${body}`;
    kept.push(entry);
    used += entry.length + 1;
  }
  const lines = kept.reverse();
  dropped += olderNotRead;
  if (dropped > 0) lines.unshift(`(${dropped} older session(s) omitted)`);
  return lines.join('\n');
}
