// A receiver's Retry-After, read as RFC 9110 §10.2.3 defines it: delay-seconds, or an HTTP date in
// any of the three formats a recipient must accept (§5.6.7), every one of them GMT. Anything else is
// not a wait the receiver asked for, and the delivery's own schedule applies.

import { parseHttpDate } from '../domain/http-date.ts';

/** Parses Retry-After (seconds or an HTTP date) into ms from `now`; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Date.parse alone reads "1.5", "-5", "x 1" or "Fri 2027" as dates, and an asctime date in the
  // server's time zone: a wait the receiver never asked for.
  const at = parseHttpDate(trimmed, now);
  return at === null ? null : Math.max(0, at - now);
}
