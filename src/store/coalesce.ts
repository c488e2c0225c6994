// Coalesces many small writes of one kind (e.g. "task finished") into ONE operation of the write
// queue, so a batch of N finishes costs a few multi-row statements instead of N × several.
import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';
import type { RunOptions, WriteQueue } from './write-queue.ts';

/**
 * Returns a function that queues `item`; all items queued before the operation runs are handed to
 * `apply` together. `apply` returns one result per item, in order. If it throws, every item of that
 * run is rejected (its writes were rolled back to the operation's savepoint).
 */
export function createCoalescer<I, R>(
  queue: WriteQueue,
  apply: (trx: Kysely<Database>, items: I[]) => Promise<R[]>,
  runOptions?: RunOptions,
): (item: I) => Promise<R> {
  let pending: Array<{ item: I; resolve(value: R): void; reject(error: unknown): void }> = [];
  let queued = false;
  return (item) =>
    new Promise<R>((resolve, reject) => {
      pending.push({ item, resolve, reject });
      if (queued) return;
      queued = true;
      let taken: typeof pending = [];
      let took = false;
      queue
        .run(async (trx) => {
          // The queue may run an op again after a transient conflict: it must apply the same items.
          if (!took) {
            took = true;
            taken = pending;
            pending = [];
            queued = false;
          }
          return apply(
            trx,
            taken.map((entry) => entry.item),
          );
        }, runOptions)
        .then(
          (results) => {
            for (const [index, entry] of taken.entries()) entry.resolve(results[index]!);
          },
          (error: unknown) => {
            // The op may fail before it took the items (e.g. the whole commit failed).
            const failed = took ? taken : pending.splice(0);
            if (!took) queued = false;
            for (const entry of failed) entry.reject(error);
          },
        );
    });
}
