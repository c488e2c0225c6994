// The error a failed database write becomes: STORE_UNAVAILABLE (503) with the reason in words when
// the database said which condition it hit (disk full, read-only file, I/O error…), so a client and
// the operator reading the log see "the disk holding the database is full", not just "failed".
import { AppError } from '../errors/app-error.ts';

/**
 * SQLite result codes (primary code, the part before any `_` suffix of an extended code) and
 * PostgreSQL SQLSTATEs whose meaning is safe and useful to show to anyone.
 */
const REASONS: Record<string, string> = {
  SQLITE_FULL: 'the disk holding the database is full',
  SQLITE_IOERR: 'the disk holding the database reported an I/O error',
  SQLITE_READONLY: 'the database file is read-only',
  SQLITE_CORRUPT: 'the database file is damaged',
  SQLITE_CANTOPEN: 'the database file cannot be opened',
  SQLITE_BUSY: 'the database is locked by another process',
  SQLITE_NOMEM: 'the database ran out of memory',
  ENOSPC: 'the disk holding the database is full',
  EIO: 'the disk holding the database reported an I/O error',
  EROFS: 'the disk holding the database is read-only',
  '53100': 'the database server is out of disk space',
  '53200': 'the database server is out of memory',
  '53300': 'the database server has too many connections',
  '25006': 'the database server accepts only reads (a standby or read-only transaction)',
  // A statement_timeout the database or role sets (managed services often do), or a cancel request.
  '57014': 'the database server cancelled the statement (its statement_timeout, or a cancel request)',
  // A lock_timeout the database or role sets (ALTER ROLE … SET lock_timeout): the statement waited
  // for a row or advisory lock another transaction held for longer than that.
  '55P03':
    'a statement waited for a lock held by another transaction longer than the database server allows (its lock_timeout)',
};

/**
 * The `Retry-After` (seconds) of a failure whose cause passes by itself: a lock is held by one
 * transaction, which ends in moments, so the same request asked again shortly may well succeed.
 */
const RETRY_AFTER_SECONDS: Record<string, number> = {
  '55P03': 1,
};

/** The wait after which the failed request may succeed, or undefined when the failure names none. */
export function storeFailureRetryAfter(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  return RETRY_AFTER_SECONDS[String((error as { code?: unknown }).code ?? '')];
}

/** PostgreSQL's message when a COMMIT cannot queue its notifications (SQLSTATE 54000). */
const NOTIFY_QUEUE_FULL = /too many notifications in the NOTIFY queue/i;
const NOTIFY_QUEUE_FULL_REASON =
  "the database server's notification queue is full (a LISTEN session that reads nothing holds it)";

/** The reason for a database failure in words, or undefined when its code names none. */
export function describeStoreFailure(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = String((error as { code?: unknown }).code ?? '');
  // program_limit_exceeded names many limits (most of them a statement's own, which no retry gets
  // past); at a commit it is PostgreSQL's notification queue, which drains.
  if (code === '54000' && NOTIFY_QUEUE_FULL.test(error.message)) return NOTIFY_QUEUE_FULL_REASON;
  const primary = code.startsWith('SQLITE_') ? code.split('_').slice(0, 2).join('_') : code;
  return REASONS[primary];
}

/**
 * `error` as the AppError a failed write reports: an AppError unchanged, anything else
 * STORE_UNAVAILABLE whose message names the reason where the database gave one (the original
 * error stays attached as `cause`, for the log).
 */
export function toStoreWriteError(error: unknown, what = 'The database write failed'): AppError {
  if (error instanceof AppError) return error;
  const reason = describeStoreFailure(error);
  const retryAfterSeconds = storeFailureRetryAfter(error);
  return new AppError('STORE_UNAVAILABLE', reason ? `${what}: ${reason}` : what, {
    cause: error,
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });
}

/**
 * An operation's own error as its caller should see it: a storage condition (disk full, read-only…)
 * becomes STORE_UNAVAILABLE, anything else (a constraint the service maps to CONFLICT, a bug) stays
 * as it is.
 */
export function asStorageFailure(error: unknown): unknown {
  return describeStoreFailure(error) === undefined ? error : toStoreWriteError(error);
}
