// Durations in the config that end up in a timer. Node keeps at most 2^31-1 ms (about 24.8 days)
// in a timer and fires a longer one after 1 ms, so an "off in practice" value such as a year would
// run a periodic job every millisecond, end a grace period at once, or time every run out as it
// starts. The schema refuses such values with this limit named, instead of each timer capping them.
import { z } from 'zod';

/** The longest delay a Node timer keeps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** MAX_TIMER_MS in whole seconds (2,147,483 s). */
export const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

const LIMIT = 'about 24.8 days, the longest a timer waits';

/** A duration in seconds that becomes a timer: at most MAX_TIMER_SECONDS. */
export function timerSeconds() {
  return z.number().max(MAX_TIMER_SECONDS, { error: `must be at most ${MAX_TIMER_SECONDS} (${LIMIT})` });
}

/** A duration in milliseconds that becomes a timer: at most MAX_TIMER_MS. */
export function timerMs() {
  return z.number().max(MAX_TIMER_MS, { error: `must be at most ${MAX_TIMER_MS} (${LIMIT})` });
}
