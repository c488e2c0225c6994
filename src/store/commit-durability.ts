// SQLite `synchronous: full` without blocking the event loop on fsync. The connection runs with
// synchronous=NORMAL, so a commit only writes its WAL frames; this module notices every commit on
// the connection and has the WAL flushed on a libuv thread (wal-flusher.ts). A write is
// acknowledged only after the flush that covers it: the connection's release (sqlite-dialect.ts)
// waits for it, so `await db.insertInto(…).execute()` or a transaction resolves once its data is
// on disk, as with FULL, while other requests keep running during the fsync.
//
// The write queue waits for the flush per operation instead of at the release (write-queue.ts), and
// acknowledges the engine's own progress at commit ("Deferred durability"); readers that send data
// out of the process wait for `whenDurable()`. See docs/adr/0002-lease-based-scheduler.md.
import type { Statement } from 'better-sqlite3';
import type { SqliteStatement } from 'kysely';
import { createWalFlusher } from './wal-flusher.ts';

export interface CommitDurability {
  /** Wraps a prepared statement of the connection so that the commits it makes are noticed. */
  track(statement: Statement, text: string): SqliteStatement;
  /**
   * The write queue, inside a batch: the release of the connection does not wait for the flush of
   * this use's commits; the queue waits for `whenDurable()` per operation instead (or, for the
   * engine's own progress, not at all).
   */
  deferCurrentCommits(): void;
  /**
   * The driver, when the connection is released: the flush of the commits made since it was
   * acquired, to wait for before the caller gets its answer (undefined: nothing to wait for).
   */
  endOfUse(): Promise<void> | undefined;
  /** Undefined when every commit so far is on disk; otherwise settles once they are. */
  whenDurable(): Promise<void> | undefined;
  /** WAL flushes done (benchmarks, metrics). */
  stats(): { flushes: number };
  /** Releases the WAL file descriptor (after the connection closed). */
  close(): void;
}

/** INSERT, UPDATE, DELETE (REPLACE, WITH …): whether they wrote is told by their changed rows. */
const DATA_CHANGE = /^\s*(insert|update|delete|replace|with)\b/i;
/** Transaction control writes nothing itself (BEGIN IMMEDIATE is not read-only to SQLite: it locks). */
const TRANSACTION_CONTROL = /^\s*(begin|commit|end|savepoint|release|rollback)\b/i;
const ROLLBACK = /^\s*rollback\s*(transaction\s*)?;?\s*$/i;

/** How a statement tells whether it wrote: never, by its changed rows, or always (DDL, pragmas). */
type WriteKind = 'none' | 'by-changes' | 'always';

/** A pragma read (`pragma journal_mode`), which SQLite does not flag read-only either. */
const PRAGMA_READ = /^\s*pragma\s+[\w.]+\s*;?\s*$/i;

function writeKindOf(statement: Statement, text: string): WriteKind {
  if (statement.readonly || TRANSACTION_CONTROL.test(text) || PRAGMA_READ.test(text)) return 'none';
  return DATA_CHANGE.test(text) ? 'by-changes' : 'always';
}

/**
 * Durability for the SQLite connection `inTransaction` reports on, whose WAL is `walPath`.
 * `inTransaction` is read after each statement: a write followed by the end of the transaction
 * (autocommit, COMMIT, or the outermost RELEASE) is a commit.
 */
export function createCommitDurability(walPath: string, inTransaction: () => boolean): CommitDurability {
  const flusher = createWalFlusher(walPath);
  // Rows written in the open transaction (or by the last autocommit statement) not yet committed.
  let uncommittedWrite = false;
  // A commit since the connection was acquired (endOfUse resets it).
  let committedInUse = false;
  let deferred = false;

  function afterStatement(wrote: boolean, text: string): void {
    if (wrote) uncommittedWrite = true;
    if (!uncommittedWrite || inTransaction()) return;
    uncommittedWrite = false;
    // A rolled-back transaction left nothing to flush.
    if (!ROLLBACK.test(text)) committedInUse = true;
  }

  return {
    track(statement, text) {
      const kind = writeKindOf(statement, text);
      return {
        reader: statement.reader,
        all(parameters) {
          const rows = statement.all(parameters);
          // A write that returns rows (RETURNING) changed exactly those.
          afterStatement(kind === 'always' || (kind === 'by-changes' && rows.length > 0), text);
          return rows;
        },
        run(parameters) {
          const result = statement.run(parameters);
          afterStatement(kind === 'always' || (kind === 'by-changes' && Number(result.changes) > 0), text);
          return result;
        },
        // Kysely streams SELECTs only: nothing to notice.
        iterate: (parameters) => statement.iterate(parameters),
      };
    },
    deferCurrentCommits() {
      deferred = true;
    },
    endOfUse() {
      const committed = committedInUse;
      const wasDeferred = deferred;
      committedInUse = false;
      deferred = false;
      if (!committed) return undefined;
      flusher.committed();
      return wasDeferred ? undefined : flusher.whenDurable();
    },
    whenDurable: () => flusher.whenDurable(),
    stats: () => ({ flushes: flusher.flushes() }),
    close: () => flusher.close(),
  };
}
