// HTTP dates (RFC 9110 §5.6.7): the three formats a recipient must accept, every one of them GMT.
// Date.parse alone reads an asctime date in the server's own time zone and takes many strings that
// are no date at all ("1.5", "-5", "Fri 2027") for one.

const DAYS = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAYS = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = new RegExp(`^${DAYS}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`, 'i');
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC_850 = new RegExp(`^${LONG_DAYS}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`, 'i');
// Sun Nov  6 08:49:37 1994 (no zone: GMT, whatever the server's own; Date.parse reads it as local)
const ASCTIME = new RegExp(`^${DAYS} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`, 'i');

interface DateParts {
  year: number;
  month: string;
  day: string;
  time: string[];
}

/** The parts of `value` in one of the three formats, or null. */
function dateParts(value: string, now: number): DateParts | null {
  const fixdate = IMF_FIXDATE.exec(value);
  if (fixdate) {
    const [, day = '', month = '', year = '', ...time] = fixdate;
    return { year: Number(year), month, day, time };
  }
  const rfc850 = RFC_850.exec(value);
  if (rfc850) {
    const [, day = '', month = '', shortYear = '', ...time] = rfc850;
    const thisYear = new Date(now).getUTCFullYear();
    const year = Math.floor(thisYear / 100) * 100 + Number(shortYear);
    return { year: year > thisYear + 50 ? year - 100 : year, month, day, time };
  }
  const asctime = ASCTIME.exec(value);
  if (asctime) {
    const [, month = '', day = '', hours = '', minutes = '', seconds = '', year = ''] = asctime;
    return { year: Number(year), month, day: day.trim(), time: [hours, minutes, seconds] };
  }
  return null;
}

/**
 * Unix ms of an HTTP date (IMF-fixdate, RFC 850 or asctime), or null for anything else, an
 * impossible day or time included. A two-digit RFC 850 year more than 50 years ahead of `now` is
 * the latest past year that ends in those digits (RFC 9110 §5.6.7).
 */
export function parseHttpDate(value: string, now: number): number | null {
  const parts = dateParts(value, now);
  if (parts === null) return null;
  const month = MONTHS.indexOf(parts.month.toLowerCase());
  const day = Number(parts.day);
  const [hours = 0, minutes = 0, seconds = 0] = parts.time.map(Number);
  if (hours > 23 || minutes > 59 || seconds > 60) return null;
  // The day checked alone: Date.UTC rolls 31 Feb over into March (such a date is none), and a leap
  // second (23:59:60, at the end of June or December) into the next day, which it is: the instant
  // after 23:59:59.
  const midnight = Date.UTC(parts.year, month, day);
  const check = new Date(midnight);
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month) return null;
  return midnight + ((hours * 60 + minutes) * 60 + seconds) * 1000;
}

/**
 * A Retry-After header (RFC 9110 §10.2.3: delay-seconds or an HTTP date) as ms from `now`; null when
 * absent or neither. Date.parse alone reads "1.5", "-5", "x 1" or "Fri 2027" as dates, and an
 * asctime date in this machine's time zone: a wait the sender never asked for.
 */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = parseHttpDate(trimmed, now);
  return at === null ? null : Math.max(0, at - now);
}
