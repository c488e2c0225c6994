import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import { createWalFlusher } from './wal-flusher.ts';

/** Runs `body` with the path of a WAL file in a temp dir (`exists`: the file is there). */
async function withWalFile(exists: boolean, body: (wal: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'maos-walflush-'));
  const wal = join(dir, 'x.db-wal');
  if (exists) writeFileSync(wal, 'frames');
  try {
    await body(wal);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('WAL flusher', () => {
  test('one flush in flight at a time; commits made meanwhile are covered by the next one', () =>
    withWalFile(true, async (wal) => {
      const flusher = createWalFlusher(wal);
      flusher.committed();
      flusher.committed();
      const first = flusher.whenDurable();
      assert.ok(first);
      await first;
      // The first commit started a flush; the second came during it and needed one more.
      assert.equal(flusher.flushes(), 2);
      flusher.committed();
      await flusher.whenDurable();
      assert.equal(flusher.flushes(), 3);
      // Once flushed, nothing is left to wait for.
      assert.equal(flusher.whenDurable(), undefined);
      flusher.close();
    }));

  test('close during a flush waits for it; a flush after close opens the file again', () =>
    withWalFile(true, async (wal) => {
      const flusher = createWalFlusher(wal);
      flusher.committed();
      const pending = flusher.whenDurable();
      flusher.close();
      await pending;
      flusher.committed();
      await flusher.whenDurable();
      assert.equal(flusher.flushes(), 2);
      flusher.close();
    }));

  test('a flush that fails rejects the waiters with STORE_UNAVAILABLE; the next one retries', () =>
    withWalFile(false, async (wal) => {
      const flusher = createWalFlusher(wal);
      flusher.committed();
      await assert.rejects(
        flusher.whenDurable() ?? Promise.resolve(),
        (error: unknown) => error instanceof AppError && error.code === 'STORE_UNAVAILABLE',
      );
      writeFileSync(wal, 'frames');
      await flusher.whenDurable();
      assert.equal(flusher.whenDurable(), undefined);
      flusher.close();
    }));

  test(
    'a commit made while a flush fails is not left waiting: its own flush is attempted',
    { timeout: 10_000 },
    () =>
      withWalFile(false, async (wal) => {
        const flusher = createWalFlusher(wal);
        flusher.committed();
        const first = flusher.whenDurable() ?? Promise.resolve();
        // Committed while the first flush is in flight: only a flush started after it covers it.
        flusher.committed();
        const second = flusher.whenDurable() ?? Promise.resolve();
        const unavailable = (error: unknown) =>
          error instanceof AppError && error.code === 'STORE_UNAVAILABLE';
        await assert.rejects(first, unavailable);
        // Settles (here: fails as well, the file is still missing) instead of waiting for a next commit.
        await assert.rejects(second, unavailable);
        writeFileSync(wal, 'frames');
        flusher.committed();
        await flusher.whenDurable();
        flusher.close();
      }),
  );
});
