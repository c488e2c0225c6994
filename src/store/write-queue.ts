// Group commit: write operations from all worker slots and API calls are queued and applied
// together. SQLite: ONE transaction (one WAL flush) per batch, each operation inside its own
// savepoint so a failing one rolls back alone; PostgreSQL: one transaction per operation on the
// batch's connection (postgres-write-batch.ts). An operation's promise settles only after its
// commit, and (SQLite `synchronous: full`) after the WAL flush that puts it on disk
// (commit-durability.ts), so an acknowledged write is durable. The queue does not wait for that
// flush itself: the next batch commits while the last one is being flushed.
//
// Deferred durability (SQLite `synchronous: full`, `deferCommits` set): the engine's own progress
// (claims, heartbeats, output, finishes: ops queued with `deferred: true`) is acknowledged at
// commit, also when it shares its batch with other writes, and the WAL flush runs right after on a
// libuv thread. The chain's next step then never waits for an fsync. Nothing read from the
// database leaves the process before the flush that covers it: readers call `whenDurable()` (the
// session service does, for every read it answers). A power cut can thus lose only progress nobody
// outside has seen; those tasks run again, as after an expired lease. See
// docs/adr/0002-lease-based-scheduler.md.
import { AsyncLocalStorage } from 'node:async_hooks';
import { type Kysely, sql } from 'kysely';
import type { CommitDurability } from './commit-durability.ts';
import type { DialectName } from './db.ts';
import { type OpOutcome, runPostgresOpsInTransactions } from './postgres-write-batch.ts';
import type { Database } from './schema.ts';
import { asStorageFailure, toStoreWriteError } from './store-failure.ts';

/** A unit of work run inside the shared transaction. Must not keep `trx` after it returns. */
export type WriteOp<T> = (trx: Kysely<Database>) => Promise<T>;

interface Queued {
  op: WriteOp<unknown>;
  deferred: boolean;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export interface RunOptions {
  /**
   * The engine's internal progress, which nobody is told about directly: may resolve at commit,
   * before the commit is on disk (only with `deferCommits`; otherwise the same as an ordinary op).
   */
  deferred?: boolean;
}

/**
 * The options of the engine's own progress (claims, heartbeats, output, finishes, expiries): it may
 * resolve before it is on disk; readers that send data out of the process wait for the flush.
 */
export const ENGINE_PROGRESS: RunOptions = { deferred: true };

export interface WriteQueue {
  /** Queues `op`; resolves with its value after the batch containing it has committed. */
  run<T>(op: WriteOp<T>, options?: RunOptions): Promise<T>;
  /** Resolves once every operation queued so far has been committed (or failed). */
  drain(): Promise<void>;
  /** Drains: every queued operation committed and on disk. */
  close(): Promise<void>;
  /**
   * Undefined when every commit so far is durable; otherwise a promise that settles once they are
   * (rejects with STORE_UNAVAILABLE if the disk flush failed). Call it after reading, before
   * sending what was read out of the process.
   */
  whenDurable(): Promise<void> | undefined;
  /** Counters for benchmarks and metrics. */
  stats(): { batches: number; ops: number; deferredBatches: number; walFlushes: number };
}

export interface WriteQueueOptions {
  db: Kysely<Database>;
  dialect: DialectName;
  /** Largest batch per transaction; bounds how long readers wait for the connection. */
  maxBatch?: number;
  /**
   * Run each operation in its caller's async context (tracing on: its queries become database spans
   * of the caller's trace, not of whichever caller's flush picked it up). Off: no per-op cost.
   */
  keepCallerContext?: boolean;
  /** The database's commit durability (SQLite `synchronous: full`): what `whenDurable` waits for. */
  durability?: CommitDurability;
  /** Acknowledge batches of deferred ops at commit, before their flush (see the header). */
  deferCommits?: boolean;
}

/** Creates the queue. Batches flush on the next macrotask, so everything queued in one tick shares a commit. */
export function createWriteQueue(options: WriteQueueOptions): WriteQueue {
  const maxBatch = options.maxBatch ?? 256;
  let queue: Queued[] = [];
  let flushing: Promise<void> | null = null;
  let scheduled = false;
  let batches = 0;
  let ops = 0;
  // Batches with operations acknowledged at commit, before their flush.
  let deferredBatches = 0;
  const durability = options.dialect === 'sqlite' ? options.durability : undefined;
  const deferCommits = durability !== undefined && options.deferCommits === true;

  function schedule(): void {
    if (scheduled || flushing) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      flushing = flushLoop().finally(() => {
        flushing = null;
        if (queue.length > 0) schedule();
      });
    });
  }

  async function flushLoop(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.slice(0, maxBatch);
      queue = queue.slice(batch.length);
      await flushBatch(batch);
    }
  }

  async function flushBatch(batch: Queued[]): Promise<void> {
    const outcomes: OpOutcome[] = [];
    try {
      await options.db.connection().execute(async (conn) => {
        if (options.dialect === 'postgres') {
          // Cluster mode: one transaction per operation, so no batch holds row locks across ops.
          outcomes.push(
            ...(await runPostgresOpsInTransactions(
              conn,
              batch.map((item) => item.op),
            )),
          );
          return;
        }
        // The connection is released at commit: each operation below waits for the flush itself
        // (or, the engine's own progress, does not), so the next batch commits meanwhile.
        durability?.deferCurrentCommits();
        await commitSqliteBatch(conn, batch, outcomes);
      });
    } catch (error) {
      const failure = toStoreWriteError(error);
      for (const item of batch) item.reject(failure);
      return;
    }
    batches++;
    ops += batch.length;
    const atCommit = (item: Queued) => deferCommits && item.deferred;
    // Acknowledged once on disk, except the engine's own progress (header): in a batch that mixes
    // both, a new session's first claim starts its tasks while the session's insert is flushed.
    // Only operations that succeeded wait: a flush nobody waits for must not reject unobserved.
    const waiting = batch.some((item, index) => outcomes[index]!.ok && !atCommit(item));
    const flushed = waiting ? durability?.whenDurable() : undefined;
    if (durability && batch.some(atCommit)) deferredBatches++;
    for (const [index, item] of batch.entries()) {
      const outcome = outcomes[index]!;
      if (!outcome.ok) item.reject(outcome.error);
      else if (!flushed || atCommit(item)) item.resolve(outcome.value);
      else flushed.then(() => item.resolve(outcome.value), item.reject);
    }
  }

  async function drain(): Promise<void> {
    while (queue.length > 0 || flushing || scheduled) {
      if (flushing) await flushing;
      else await new Promise((resolve) => setImmediate(resolve));
    }
    await durability?.whenDurable();
  }

  return {
    run<T>(op: WriteOp<T>, runOptions?: RunOptions): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({
          op: options.keepCallerContext ? AsyncLocalStorage.bind(op) : op,
          deferred: runOptions?.deferred === true,
          resolve: resolve as (value: unknown) => void,
          reject,
        });
        schedule();
      });
    },
    drain,
    async close() {
      await drain().catch(() => undefined);
    },
    whenDurable: () => durability?.whenDurable(),
    stats: () => ({
      batches,
      ops,
      deferredBatches,
      walFlushes: durability?.stats().flushes ?? 0,
    }),
  };
}

/**
 * One SQLite transaction for the batch, each op in its own savepoint; fills `outcomes` in order. An
 * op alone in its batch (a chain's step) needs no savepoint: its failure rolls back the whole
 * transaction, which holds nothing else.
 */
async function commitSqliteBatch(
  conn: Kysely<Database>,
  batch: Queued[],
  outcomes: OpOutcome[],
): Promise<void> {
  // SQLite: take the write lock up front, so a transaction that reads first never fails to upgrade.
  await sql`begin immediate`.execute(conn);
  const alone = batch.length === 1;
  // One name for every savepoint: they never nest, and the statements stay cacheable.
  const savepoint = sql.raw('wq_op');
  try {
    for (const item of batch) {
      if (!alone) await sql`savepoint ${savepoint}`.execute(conn);
      try {
        const value = await item.op(conn);
        if (!alone) await sql`release savepoint ${savepoint}`.execute(conn);
        outcomes.push({ ok: true, value });
      } catch (error) {
        outcomes.push({ ok: false, error: asStorageFailure(error) });
        try {
          if (alone) {
            await sql`rollback`.execute(conn);
            return;
          }
          // Undoes only this op; the others of the batch still commit.
          await sql`rollback to savepoint ${savepoint}`.execute(conn);
          await sql`release savepoint ${savepoint}`.execute(conn);
        } catch {
          // SQLite itself rolled the whole transaction back (disk full, I/O error): nothing of the
          // batch is stored, so every op of it fails with the error that ended it.
          throw error;
        }
      }
    }
    await sql`commit`.execute(conn);
  } catch (error) {
    await sql`rollback`.execute(conn).catch(() => undefined);
    throw error;
  }
}
