// The numeric option values of the CLI (--limit, --after, --port, --max-tokens …), parsed one way:
// plain decimal digits. Number() alone also takes '' (as 0), '1e2', '0x10', ' 5' and '5 ', so one
// command accepted what another refused; a bad value is a usage error naming the flag.
import { CliError, EXIT } from './exit-codes.ts';

/** The values a numeric option takes: from `min` (exclusive when `aboveMin`) up to `max`. */
export interface OptionRange {
  min: number;
  max?: number;
  /** The value must be greater than `min` (e.g. a cost that cannot be 0). */
  aboveMin?: boolean;
}

const DIGITS = /^\d+$/;
const DECIMAL = /^\d+(\.\d+)?$/;

/** A whole-number option value (digits only) within `range`; a usage error naming `flag` otherwise. */
export function parseIntegerOption(flag: string, text: string, range: OptionRange): number {
  const value = Number(text);
  if (!DIGITS.test(text) || !Number.isSafeInteger(value) || !within(value, range)) {
    throw refusal(flag, text, 'a whole number', range);
  }
  return value;
}

/**
 * A page size (`--limit` of the list commands): a whole number ≥ 1, sent as given. The server lowers
 * one above its largest page (`http.maxPageSize`) to that page, as the API does for any such limit,
 * so the CLI sets no maximum of its own: one (1000) refused what the server would have answered.
 * A value past what a number holds exactly is sent as the largest one that does (lowered alike).
 */
export function parsePageLimitOption(flag: string, text: string): number {
  if (!DIGITS.test(text) || Number(text) < 1) throw refusal(flag, text, 'a whole number', { min: 1 });
  return Math.min(Number(text), Number.MAX_SAFE_INTEGER);
}

/**
 * A number option value (digits with an optional decimal fraction, e.g. 0.5) within `range`; a
 * usage error naming `flag` otherwise.
 */
export function parseNumberOption(flag: string, text: string, range: OptionRange): number {
  const value = Number(text);
  if (!DECIMAL.test(text) || !Number.isFinite(value) || !within(value, range)) {
    throw refusal(flag, text, 'a number', range);
  }
  return value;
}

function within(value: number, range: OptionRange): boolean {
  const aboveMin = range.aboveMin ? value > range.min : value >= range.min;
  return aboveMin && (range.max === undefined || value <= range.max);
}

function refusal(flag: string, text: string, kind: string, range: OptionRange): CliError {
  const bounds =
    range.max !== undefined
      ? `from ${range.min} to ${range.max}`
      : range.aboveMin
        ? `greater than ${range.min}`
        : `≥ ${range.min}`;
  return new CliError('USAGE', `${flag} must be ${kind} ${bounds} (got "${text}")`, EXIT.USAGE);
}
