// A retry racing the deletion of its original, on SQLite and PostgreSQL: the deletion goes in steps
// (engine/delete-session.ts), so a retry stored between two of them would find the original with
// part of its messages gone and copy the rest as if that were all. It is refused instead, with
// INVALID_STATE naming the deletion, also when the deletion was cut short (the original stays
// refused until it is deleted again); an original nobody is deleting is retried with all its messages.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deleteFinishedSession } from '../../src/engine/delete-session.ts';
import { type SessionRetrySpec, storeSessionRetry } from '../../src/engine/retry-session.ts';
import { AppError } from '../../src/errors/app-error.ts';
import type { DatabaseHandle } from '../../src/store/db.ts';
import { newId } from '../../src/store/ids.ts';
import { IGNORE_DAMAGED_JSON } from '../../src/store/rows.ts';
import { createWriteQueue, type WriteQueue } from '../../src/store/write-queue.ts';
import { seedSessionRows } from '../fixtures/session-rows.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

const NOW = Date.now();

function retrySpec(originalId: string): SessionRetrySpec {
  return {
    tenantId: 'default',
    originalId,
    sessionId: newId(),
    maxAttempts: 2,
    settingsOf: (settings, requestedBudget) => ({ settings, requestedBudget }),
    checkRunnable: () => {},
    reportDamagedJson: IGNORE_DAMAGED_JSON,
  };
}

/** The queue, with `between` run once after the first `run` has committed and before the second starts. */
function queueWithPause(queue: WriteQueue, between: () => Promise<void>): WriteQueue {
  let runs = 0;
  return {
    ...queue,
    async run(op, options) {
      runs += 1;
      if (runs === 2) await between();
      return queue.run(op, options);
    },
  };
}

function isDeletingRefusal(error: unknown): boolean {
  assert.ok(error instanceof AppError, String(error));
  assert.equal(error.code, 'INVALID_STATE', error.message);
  assert.match(error.message, /being deleted/);
  assert.deepEqual(error.details, { status: 'failed', deleting: true });
  return true;
}

for (const backend of STORE_BACKENDS) {
  describe(`a retry racing its original's deletion: ${backend.name}`, { timeout: 60_000 }, () => {
    let handle: DatabaseHandle;
    let queue: WriteQueue;
    let dispose: () => Promise<void>;
    before(async () => {
      const opened = await backend.open(1);
      handle = opened.handles[0]!;
      dispose = opened.dispose;
      queue = createWriteQueue({ db: handle.db, dialect: handle.dialect });
    });
    after(async () => {
      await queue?.close();
      await dispose?.();
    });

    const messagesOf = async (sessionId: string) =>
      (await handle.db.selectFrom('messages').select('id').where('session_id', '=', sessionId).execute())
        .length;

    test('an original nobody deletes is retried with all its messages', async () => {
      await seedSessionRows(handle.db, { id: 'kept', status: 'failed', finishedAt: NOW - 1000, messages: 3 });
      const stored = await queue.run((trx) => storeSessionRetry(trx, retrySpec('kept'), undefined, NOW));
      assert.equal(stored.created, true);
      assert.equal(await messagesOf(stored.sessionId), 3);
    });

    test('a retry between two steps of the deletion is refused; the deletion finishes', async () => {
      // Five events, three messages, one artifact: a first step of six rows leaves two messages.
      await seedSessionRows(handle.db, {
        id: 'doomed',
        status: 'failed',
        finishedAt: NOW - 1000,
        messages: 3,
      });
      let retried: Promise<unknown> | undefined;
      const paused = queueWithPause(queue, async () => {
        assert.equal(await messagesOf('doomed'), 2, 'the first step deleted one message');
        retried = queue.run((trx) => storeSessionRetry(trx, retrySpec('doomed'), undefined, NOW));
        await retried.catch(() => {});
      });
      await deleteFinishedSession(paused, 'default', 'doomed', 6);
      assert.ok(retried, 'the retry ran between the steps');
      await assert.rejects(retried, isDeletingRefusal);
      const left = await handle.db
        .selectFrom('sessions')
        .select('id')
        .where('retry_of', '=', 'doomed')
        .execute();
      assert.deepEqual(left, [], 'no retry of the deleted session was stored');
      const gone = await handle.db.selectFrom('sessions').select('id').where('id', '=', 'doomed').execute();
      assert.deepEqual(gone, []);
    });

    test('an original whose deletion was cut short is refused until it is deleted again', async () => {
      await seedSessionRows(handle.db, {
        id: 'halfway',
        status: 'failed',
        finishedAt: NOW - 1000,
        messages: 3,
      });
      const crashing = queueWithPause(queue, async () => {
        throw new Error('the process died between two steps');
      });
      await assert.rejects(deleteFinishedSession(crashing, 'default', 'halfway', 6), /died/);
      await assert.rejects(
        queue.run((trx) => storeSessionRetry(trx, retrySpec('halfway'), undefined, NOW)),
        isDeletingRefusal,
      );
      await deleteFinishedSession(queue, 'default', 'halfway', 6);
      const gone = await handle.db.selectFrom('sessions').select('id').where('id', '=', 'halfway').execute();
      assert.deepEqual(gone, []);
    });
  });
}
