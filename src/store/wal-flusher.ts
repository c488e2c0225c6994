// Makes deferred SQLite commits durable off the event loop: after a commit made with
// synchronous=NORMAL (no fsync), the WAL file is flushed with fdatasync on a libuv thread, and
// whoever must not send unflushed data out of the process waits for that flush. Used by the write
// queue (write-queue.ts, "Deferred durability").
//
// Why this is sound: in WAL mode every commit appends its frames to `<db>-wal` before the commit
// returns, and a commit is durable once those frames are on disk (SQLite's own FULL mode does
// exactly this fsync, only inline). An fdatasync of the same file through another descriptor
// flushes the same inode, so a flush started after commit N covers commits 1..N.
import { open } from 'node:fs/promises';
import { AppError } from '../errors/app-error.ts';

export interface WalFlusher {
  /** Call after every commit: `deferred` when it was made without its own fsync. */
  committed(deferred: boolean): void;
  /** Undefined when every commit so far is on disk; otherwise settles once they are. */
  whenDurable(): Promise<void> | undefined;
  /** Deferred commits so far (benchmarks). */
  deferredCommits(): number;
  /** Completed WAL flushes so far (benchmarks, tests). */
  flushes(): number;
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
  let deferredCount = 0;
  let flushCount = 0;
  let flushing = false;
  let waiters: Waiter[] = [];

  function settle(upTo: number): void {
    durableSeq = Math.max(durableSeq, upTo);
    const done = waiters.filter((waiter) => waiter.seq <= durableSeq);
    waiters = waiters.filter((waiter) => waiter.seq > durableSeq);
    for (const waiter of done) waiter.resolve();
  }

  function fail(upTo: number, error: unknown): void {
    const failure = new AppError('STORE_UNAVAILABLE', 'Flushing the database log to disk failed', {
      cause: error,
    });
    const failed = waiters.filter((waiter) => waiter.seq <= upTo);
    waiters = waiters.filter((waiter) => waiter.seq > upTo);
    for (const waiter of failed) waiter.reject(failure);
  }

  function flush(): void {
    if (flushing || durableSeq >= commitSeq) return;
    flushing = true;
    const target = commitSeq;
    // Opened per flush: two cheap calls next to the fdatasync, and no descriptor to leak or to go
    // stale if SQLite ever recreates the file.
    void (async () => {
      const handle = await open(walPath, 'r');
      try {
        await handle.datasync();
      } finally {
        await handle.close();
      }
    })().then(
      () => {
        flushCount++;
        flushing = false;
        settle(target);
        flush();
      },
      (error: unknown) => {
        flushing = false;
        // No retry loop on a failing disk: the next commit or reader starts the next attempt.
        fail(target, error);
      },
    );
  }

  return {
    committed(deferred) {
      commitSeq++;
      if (!deferred) {
        // SQLite synced the WAL itself, which covers every earlier commit too.
        settle(commitSeq);
        return;
      }
      deferredCount++;
      flush();
    },
    whenDurable() {
      if (durableSeq >= commitSeq) return undefined;
      const seq = commitSeq;
      const promise = new Promise<void>((resolve, reject) => waiters.push({ seq, resolve, reject }));
      flush();
      return promise;
    },
    deferredCommits: () => deferredCount,
    flushes: () => flushCount,
  };
}
