// The lock `maos login` and `maos logout` take turns through: a stale lock (left by a process that
// died) is taken over by exactly one of the processes that find it at once, never by two.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { acquireFileLock, FileLockTimeoutError } from './file-lock.ts';

/** Makes `lock` look left behind `agoMs` ago. */
function leaveLock(lock: string, agoMs: number): void {
  writeFileSync(lock, '');
  const then = new Date(Date.now() - agoMs);
  utimesSync(lock, then, then);
}

test('a stale lock found by several threads at once is taken over by one at a time', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-file-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const module = new URL('./file-lock.ts', import.meta.url).href;
  // In each round the threads wait at a barrier, then all find the same lock, left 60 s ago, at the
  // same moment (as parallel CI jobs' `maos login` do). Several rounds: the window is short.
  const rounds = 40;
  const threads = 4;
  const locks = Array.from({ length: rounds }, (_, round) => join(dir, `credentials-${round}.json.lock`));
  for (const lock of locks) leaveLock(lock, 60_000);
  const script = `const { workerData, parentPort } = require('node:worker_threads');
const flags = new Int32Array(workerData.barrier);
const holders = new Int32Array(workerData.holders);
const pause = new Int32Array(new SharedArrayBuffer(4));
(async () => {
  const { acquireFileLock } = await import(workerData.module);
  for (const [round, lock] of workerData.locks.entries()) {
    Atomics.add(flags, round + 1, 1);
    while (Atomics.load(flags, 0) <= round) Atomics.wait(flags, 0, round);
    const held = await acquireFileLock(lock, { staleMs: 30000, waitMs: 20000, pollMs: 1 });
    const now = Atomics.add(holders, round, 1) + 1;
    parentPort.postMessage({ round, holders: now });
    Atomics.wait(pause, 0, 0, 3);
    Atomics.sub(holders, round, 1);
    held.release();
  }
  parentPort.postMessage({ done: true });
})().catch((error) => parentPort.postMessage({ error: String(error?.message ?? error) }));`;
  const barrier = new SharedArrayBuffer(4 * (rounds + 1));
  const holders = new SharedArrayBuffer(4 * rounds);
  const flags = new Int32Array(barrier);
  const seen: { round: number; holders: number }[] = [];
  const errors: string[] = [];
  let done = 0;
  const workers = Array.from(
    { length: threads },
    () => new Worker(script, { eval: true, workerData: { barrier, holders, module, locks } }),
  );
  try {
    const failed = new Promise<never>((_, reject) => {
      for (const worker of workers) worker.once('error', reject);
    });
    const finished = new Promise<void>((resolve) => {
      for (const worker of workers) {
        worker.on('message', (message) => {
          if (message.error) errors.push(message.error);
          if (message.done || message.error) done += 1;
          else seen.push(message);
          if (done === threads) resolve();
        });
      }
    });
    for (let round = 0; round < rounds; round++) {
      while (Atomics.load(flags, round + 1) < threads && done < threads) {
        await Promise.race([new Promise((resolve) => setTimeout(resolve, 2)), failed]);
      }
      Atomics.store(flags, 0, round + 1);
      Atomics.notify(flags, 0);
    }
    await Promise.race([finished, failed]);
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
  assert.deepEqual(errors, []);
  assert.equal(seen.length, rounds * threads, 'every thread took every lock once');
  const shared = seen.filter((entry) => entry.holders > 1);
  assert.deepEqual(shared, [], 'no lock was held by two threads at once');
  assert.deepEqual(readdirSync(dir), [], 'no lock and no takeover claim left behind');
});

test('a lock that is not stale is waited for, then reported as held', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-file-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lock = join(dir, 'credentials.json.lock');
  leaveLock(lock, 1_000);
  await assert.rejects(acquireFileLock(lock, { staleMs: 30_000, waitMs: 50 }), FileLockTimeoutError);
  assert.equal(readFileSync(lock, 'utf8'), '', 'the holder keeps its lock');
});

test('a claim left by a process that died while taking a lock over is removed by the next holder', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-file-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lock = join(dir, 'credentials.json.lock');
  writeFileSync(join(dir, 'credentials.json.lock.takeover-1-2-3'), '');
  writeFileSync(join(dir, 'other.lock.takeover-1-2-3'), '');
  const held = await acquireFileLock(lock, { staleMs: 30_000, waitMs: 1_000 });
  assert.equal(readFileSync(lock, 'utf8'), `${process.pid}\n`);
  held.release();
  assert.deepEqual(readdirSync(dir), ['other.lock.takeover-1-2-3'], "only this lock's claims are removed");
});

test('a holder whose lock was taken over meanwhile does not remove the new holder’s lock', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-file-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lock = join(dir, 'credentials.json.lock');
  const slow = await acquireFileLock(lock, { staleMs: 30_000, waitMs: 1_000 });
  // The slow holder's lock looks 60 s old: another process takes it over.
  const then = new Date(Date.now() - 60_000);
  utimesSync(lock, then, then);
  const next = await acquireFileLock(lock, { staleMs: 30_000, waitMs: 1_000 });
  slow.release();
  assert.deepEqual(readdirSync(dir), ['credentials.json.lock'], "the new holder's lock stays");
  next.release();
  assert.deepEqual(readdirSync(dir), []);
});
