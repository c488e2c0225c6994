// The bounded wait of a response for its audit record: the record is stored before the answer
// leaves, unless storing it takes so long that waiting longer would hold the server's answers.

/**
 * The longest a response waits for its audit record (a normal append takes milliseconds). Why a
 * bound: an append waits for the audit lock (PostgreSQL) or the database; a replica stuck inside an
 * append, or a locked database, would otherwise hold every change and denial of every replica
 * unanswered (sockets and memory piling up). Past it the answer goes out flagged
 * `Maos-Audit: pending`; the append goes on, and a loss is still counted and logged.
 */
export const AUDIT_WAIT_MS = 5_000;

/**
 * The outcome of `append` (true: stored), or `pending` once it has taken longer than `waitMs`
 * (`onLate` is then called; the append is not stopped).
 */
export function waitForAuditAppend(
  append: Promise<boolean>,
  waitMs: number,
  onLate: () => void,
): Promise<'stored' | 'not-recorded' | 'pending'> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      onLate();
      resolve('pending');
    }, waitMs);
    timer.unref();
    append.then(
      (stored) => {
        clearTimeout(timer);
        resolve(stored ? 'stored' : 'not-recorded');
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
