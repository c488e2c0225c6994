// Makes SQLite commits durable off the event loop: the connection runs with synchronous=NORMAL (a
// commit writes its WAL frames without an fsync), and after each commit the WAL file is flushed
// with fdatasync on a libuv thread; whoever must not act on unflushed data waits for that flush.
// Used by commit-durability.ts, which finds the commits and decides who waits.
//
// Why this is sound: in WAL mode every commit appends its frames to `<db>-wal` before the commit
// returns, and a commit is durable once those frames are on disk (SQLite's own FULL mode does
// exactly this fsync, only inline). An fdatasync of the same file through another descriptor
// flushes the same inode, so a flush started after commit N covers commits 1..N.
import { closeSync, fdatasync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { toStoreWriteError } from './store-failure.ts';
import { syncDirectory } from './sync-directory.ts';

export interface WalFlusher {
  /** Call after every commit; starts a flush unless one is running. */
  committed(): void;
  /** Undefined when every commit so far is on disk; otherwise settles once they are. */
  whenDurable(): Promise<void> | undefined;
  /** Completed WAL flushes so far (benchmarks, tests). */
  flushes(): number;
  /** Releases the file descriptor (after the last commit; a later flush opens it again). */
  close(): void;
}

interface Waiter {
  seq: number;
  resolve(): void;
  reject(error: unknown): void;
}

/** One flush in flight at a time; the next one starts when it ends, if commits came in meanwhile. */
export function createWalFlusher(walPath: string): WalFlusher {
  let commitSeq = 0;
  let durableSeq = 0;
  let flushCount = 0;
  let flushing = false;
  let waiters: Waiter[] = [];
  let fd: number | undefined;
  // SQLite creates the WAL file at each start (and removes it when the last connection closes): its
  // directory entry is synced once with the first flush after the file was opened, or a power cut
  // could lose the whole file and every commit in it.
  let entrySynced = false;
  // close() while a flush is in flight waits for it: the descriptor must not be reused under it.
  let closeAfterFlush = false;

  function settle(upTo: number): void {
    durableSeq = Math.max(durableSeq, upTo);
    const done = waiters.filter((waiter) => waiter.seq <= durableSeq);
    waiters = waiters.filter((waiter) => waiter.seq > durableSeq);
    for (const waiter of done) waiter.resolve();
  }

  function fail(upTo: number, error: unknown): void {
    const failure = toStoreWriteError(error, 'Flushing the database log to disk failed');
    const failed = waiters.filter((waiter) => waiter.seq <= upTo);
    waiters = waiters.filter((waiter) => waiter.seq > upTo);
    for (const waiter of failed) waiter.reject(failure);
  }

  function closeFile(): void {
    closeAfterFlush = false;
    if (fd === undefined) return;
    try {
      closeSync(fd);
    } catch {
      // Already gone: nothing to release.
    }
    fd = undefined;
    entrySynced = false;
  }

  function flush(): void {
    if (flushing || durableSeq >= commitSeq) return;
    flushing = true;
    const target = commitSeq;
    // One descriptor for the flusher's life and one libuv job per flush: opening and closing the
    // file per flush cost as much main-thread time as the engine's statements. The database
    // connection keeps the WAL file (SQLite removes it only when the last connection closes).
    new Promise<void>((resolve, reject) => {
      try {
        fd ??= openSync(walPath, 'r');
      } catch (error) {
        reject(error);
        return;
      }
      fdatasync(fd, (error) => (error ? reject(error) : resolve()));
    })
      .then(async () => {
        if (entrySynced) return;
        await syncDirectory(dirname(walPath));
        entrySynced = true;
      })
      .then(
        () => {
          flushCount++;
          flushing = false;
          if (closeAfterFlush) closeFile();
          settle(target);
          flush();
        },
        (error: unknown) => {
          flushing = false;
          // Reopened by the next attempt, in case the file was replaced.
          closeFile();
          // No retry loop on a failing disk: the next commit or reader starts the next attempt. Only
          // the waiters for commits made during this flush get one at once (they were promised a
          // flush started after their commit); when it fails too, none is left and it stops there.
          fail(target, error);
          if (waiters.length > 0) flush();
        },
      );
  }

  return {
    committed() {
      commitSeq++;
      flush();
    },
    whenDurable() {
      if (durableSeq >= commitSeq) return undefined;
      const seq = commitSeq;
      const promise = new Promise<void>((resolve, reject) => waiters.push({ seq, resolve, reject }));
      flush();
      return promise;
    },
    flushes: () => flushCount,
    close() {
      if (flushing) closeAfterFlush = true;
      else closeFile();
    },
  };
}
