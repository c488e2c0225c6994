// The output flushes of all the runs of one flush tick in one write operation: N runs streaming at
// once cost one transaction per tick, not N (PostgreSQL, where the write queue commits each
// operation on its own: one commit instead of N; SQLite: one savepoint in the queue's batch instead
// of N, which already shared a commit). Each run still learns whether its own flush was stored.
//
// A flush that fails (a statement of its session refused) fails the batch's statements for all: the
// batch is rolled back to its savepoint and each flush is written again on its own in the same
// transaction, so the failing one is left out alone (its lines are lost, as a failed flush's always
// were) and the others are stored once, in their order, before any later flush of theirs. Both
// are counted (maos_task_output_batch_fallbacks_total, maos_task_output_flush_failures_total).
//
// Tracing: each run whose flush runs in a recording span gets a `store task.output` span under it
// (its run's trace), ended when its flush is settled. A flush written alone runs its queries inside
// that span; the queries of a batch of several runs belong to no one run's trace and are not traced.
import { type Context, context, ROOT_CONTEXT, type Span, SpanKind, trace } from '@opentelemetry/api';
import { type Kysely, sql } from 'kysely';
import { markSpanFailed, TRACER_NAME } from '../observability/tracing.ts';
import { isTransientConflict } from '../store/postgres-write-batch.ts';
import type { Database } from '../store/schema.ts';
import { asStorageFailure } from '../store/store-failure.ts';
import { ENGINE_PROGRESS, type WriteQueue } from '../store/write-queue.ts';
import { lockProgressSessions, type RunProgress, recordRunsProgress } from './task-output.ts';

/** Queues a run's flush; resolves once committed with whether its claim still held (it was stored). */
export type RecordProgress = (progress: RunProgress) => Promise<boolean>;

/** The span of one run's flush. */
export const STORE_OUTPUT_SPAN = 'store task.output';

interface Entry {
  progress: RunProgress;
  /** The context the run flushed from: its run's trace. */
  context: Context;
  span?: Span;
  resolve(stored: boolean): void;
  reject(error: unknown): void;
}

type Outcome = { ok: true; stored: boolean } | { ok: false; error: unknown };

// One name for every savepoint here: they never nest.
const SAVEPOINT = sql.raw('output_flush');

/** What the operator sees of the flushes (metrics): both called once the write has settled. */
export interface ProgressRecorderObserver {
  /** A write of several runs' flushes failed as a whole and was written again flush by flush. */
  batchFellBack?(): void;
  /** A run's flush could not be stored. */
  flushFailed?(): void;
}

/**
 * Returns a function that queues a run's flush; all flushes queued before the write operation runs
 * (every flush of one tick of the flush clock) are written by that one operation.
 */
export function createProgressRecorder(
  queue: WriteQueue,
  now: () => number,
  observer: ProgressRecorderObserver = {},
): RecordProgress {
  let pending: Entry[] = [];
  let queued = false;

  function queueBatch(): void {
    let taken: Entry[] | undefined;
    // Whether the run of the operation that committed wrote its flushes one by one (a run the queue
    // repeats after a transient conflict starts over).
    let fellBack = false;
    queue
      .run(async (trx) => {
        // The queue may run the operation again after a transient conflict: the same flushes.
        if (!taken) {
          taken = pending;
          pending = [];
          queued = false;
          startSpans(taken);
        }
        fellBack = false;
        return recordBatch(trx, taken, now(), () => {
          fellBack = true;
        });
      }, ENGINE_PROGRESS)
      .then(
        (outcomes) => {
          if (fellBack) observer.batchFellBack?.();
          for (const [index, entry] of taken!.entries()) settle(entry, outcomes[index]!, observer);
        },
        (error: unknown) => {
          // The operation may fail before it took the flushes (the queue's batch failed to start).
          const failed = taken ?? pending.splice(0);
          if (!taken) queued = false;
          for (const entry of failed) settle(entry, { ok: false, error }, observer);
        },
      );
  }

  return (progress) =>
    new Promise<boolean>((resolve, reject) => {
      pending.push({ progress, context: context.active(), resolve, reject });
      if (queued) return;
      queued = true;
      queueBatch();
    });
}

/** The flushes in the caller's transaction: all in one go, or each alone when that failed. */
async function recordBatch(
  trx: Kysely<Database>,
  entries: Entry[],
  at: number,
  fallingBack: () => void,
): Promise<Outcome[]> {
  if (entries.length === 1) {
    // Alone: its failure is its own, and the write queue rolls its operation back.
    const entry = entries[0]!;
    const [stored] = await context.with(spanContext(entry), () =>
      recordRunsProgress(trx, [entry.progress], at),
    );
    return [{ ok: true, stored: stored! }];
  }
  // The batch's statements (its savepoint too) belong to no one run's trace.
  return context.with(ROOT_CONTEXT, () => recordShared(trx, entries, at, fallingBack));
}

/** Several runs' flushes: all in one savepoint, or each in its own when that failed. */
async function recordShared(
  trx: Kysely<Database>,
  entries: Entry[],
  at: number,
  fallingBack: () => void,
): Promise<Outcome[]> {
  const all = await inSavepoint(trx, () =>
    recordRunsProgress(
      trx,
      entries.map((entry) => entry.progress),
      at,
    ),
  );
  if (all.ok) return all.value.map((stored) => ({ ok: true, stored }));
  fallingBack();
  // Nothing of the batch is stored: each flush again on its own, in the batch's order. Their
  // sessions are locked first, all at once in id order, outside the savepoints (which would let a
  // rolled-back flush's locks go): locked flush by flush, a session of a higher id was held while
  // one of a lower id was waited for, and another replica locking both in id order (a reaper pass,
  // finishes of several sessions) deadlocked with this transaction (PostgreSQL).
  await lockProgressSessions(
    trx,
    entries.map((entry) => entry.progress),
  );
  const outcomes: Outcome[] = [];
  for (const entry of entries) {
    // Written alone: its statements in its own span.
    const alone = await context.with(spanContext(entry), () =>
      inSavepoint(trx, () => recordRunsProgress(trx, [entry.progress], at)),
    );
    outcomes.push(
      alone.ok ? { ok: true, stored: alone.value[0]! } : { ok: false, error: asStorageFailure(alone.error) },
    );
  }
  return outcomes;
}

/**
 * Runs `write` in a savepoint, rolled back alone if it throws. Rethrows what the whole operation
 * must fail with: a transient conflict (PostgreSQL: the write queue runs the operation again), or
 * an error that ended the transaction itself (SQLite rolled it back, the connection was lost).
 */
async function inSavepoint<T>(
  trx: Kysely<Database>,
  write: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  await sql`savepoint ${SAVEPOINT}`.execute(trx);
  try {
    const value = await write();
    await sql`release savepoint ${SAVEPOINT}`.execute(trx);
    return { ok: true, value };
  } catch (error) {
    if (isTransientConflict(error)) throw error;
    try {
      await sql`rollback to savepoint ${SAVEPOINT}`.execute(trx);
      await sql`release savepoint ${SAVEPOINT}`.execute(trx);
    } catch {
      throw error;
    }
    return { ok: false, error };
  }
}

/** A `store task.output` span under each run's recording span (none while tracing is off). */
function startSpans(entries: Entry[]): void {
  for (const entry of entries) {
    if (trace.getSpan(entry.context)?.isRecording() !== true) continue;
    entry.span = trace.getTracer(TRACER_NAME).startSpan(
      STORE_OUTPUT_SPAN,
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          'maos.output.lines': entry.progress.lines.length,
          // How many runs' flushes share the transaction.
          'maos.output.batch.runs': entries.length,
        },
      },
      entry.context,
    );
  }
}

function spanContext(entry: Entry): Context {
  return entry.span ? trace.setSpan(entry.context, entry.span) : entry.context;
}

function settle(entry: Entry, outcome: Outcome, observer: ProgressRecorderObserver): void {
  if (outcome.ok) {
    entry.span?.end();
    entry.resolve(outcome.stored);
    return;
  }
  observer.flushFailed?.();
  if (entry.span) {
    markSpanFailed(entry.span, outcome.error);
    entry.span.end();
  }
  entry.reject(outcome.error);
}
