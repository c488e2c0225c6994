// DELETE /v1/sessions/:id in the engine: a finished session and everything of it, in steps on the
// write queue, so the deletion is serialised with every other write (a finish, a stopped run's
// charge, the retention job on PostgreSQL through the row lock) and no step holds the write lock for
// long: its outputs (events, messages, artifacts) go in batches, the rest in one final step.
import type { Kysely } from 'kysely';
import { isTerminalSessionStatus } from '../domain/session-state.ts';
import type { SessionStatus } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import type { Database } from '../store/schema.ts';
import {
  deleteSessionOutputs,
  deleteSessionRecord,
  lockSessionForDeletion,
  totalDeleted,
} from '../store/session-deletion.ts';
import type { WriteQueue } from '../store/write-queue.ts';

/**
 * Output rows deleted per step (one write-queue operation each): a step holds the write lock (SQLite)
 * or its row locks (PostgreSQL) for a few milliseconds, like a batch of the retention job.
 */
export const DELETE_ROWS_PER_STEP = 1000;

type StepResult = 'gone' | 'more' | 'deleted';

/**
 * One step: checks that the session exists in the tenant and has finished, then deletes up to
 * `limit` of its output rows, or, once none are left, the rest of it. `gone`: no such session
 * (another tenant's included).
 */
async function deleteStep(
  trx: Kysely<Database>,
  tenantId: string,
  sessionId: string,
  limit: number,
): Promise<StepResult> {
  const row = await lockSessionForDeletion(trx, sessionId, tenantId);
  if (!row || row.tenantId !== tenantId) return 'gone';
  if (!isTerminalSessionStatus(row.status as SessionStatus)) {
    throw new AppError(
      'INVALID_STATE',
      `The session is ${row.status}; only a finished session (completed, failed or cancelled) can be deleted: cancel it first`,
      { details: { status: row.status } },
    );
  }
  if (totalDeleted(await deleteSessionOutputs(trx, sessionId, limit)) >= limit) return 'more';
  await deleteSessionRecord(trx, sessionId);
  return 'deleted';
}

/**
 * Deletes the tenant's finished session with all its rows. SESSION_NOT_FOUND for an unknown id or
 * another tenant's session; INVALID_STATE for one that has not finished (nothing is deleted then).
 * A deletion cut short (a crash between steps) leaves the session with fewer events: deleting it
 * again finishes the job. Of two deletions of one session at once, one that started before the
 * other's last step succeeds too; one that starts after it gets SESSION_NOT_FOUND.
 */
export async function deleteFinishedSession(
  queue: WriteQueue,
  tenantId: string,
  sessionId: string,
  limit = DELETE_ROWS_PER_STEP,
): Promise<void> {
  for (let first = true; ; first = false) {
    const result = await queue.run((trx) => deleteStep(trx, tenantId, sessionId, limit));
    if (result === 'gone') {
      // Gone after a first step: deleted meanwhile (another request, the retention job).
      if (first) throw new AppError('SESSION_NOT_FOUND', `Session ${sessionId} not found`);
      return;
    }
    if (result === 'deleted') return;
  }
}
