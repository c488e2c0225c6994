// An outage of the database as one of the scheduler's loops sees it (claim rounds, heartbeats): logged
// once when it starts and once when the loop's next write works again, not at every failed try.
import { AppError } from '../errors/app-error.ts';
import type { Logger } from '../observability/logger.ts';

/** Whether `error` says the database cannot be reached (as opposed to a failure of the work itself). */
export function isStoreUnavailable(error: unknown): boolean {
  return error instanceof AppError && error.code === 'STORE_UNAVAILABLE';
}

/** One loop's outage, kept across its tries: since when (local time) and how many tries failed. */
export interface StoreOutage {
  current: { since: number; failed: number } | null;
}

/** Counts a try that failed with STORE_UNAVAILABLE; logs `message` (with `err`) when it is the first. */
export function noteOutageFailure(
  outage: StoreOutage,
  logger: Logger,
  fields: { err: Error },
  message: string,
  now: number,
): void {
  if (outage.current) {
    // Logged when it started; counted for the line that says it ended.
    outage.current.failed++;
    return;
  }
  logger.error(fields, message);
  outage.current = { since: now, failed: 1 };
}

/** After a try that worked: logs `message` with the outage's count (as `countField`) and length, if there was one. */
export function noteOutageEnd(
  outage: StoreOutage,
  logger: Logger,
  countField: string,
  message: string,
  now: number,
): void {
  if (!outage.current) return;
  logger.info({ [countField]: outage.current.failed, outageMs: now - outage.current.since }, message);
  outage.current = null;
}
