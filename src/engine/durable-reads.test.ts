import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SessionDetail } from '../domain/types.ts';
import type { WriteQueue } from '../store/write-queue.ts';
import { withDurableReads } from './durable-reads.ts';
import type { SessionService } from './session-service.ts';

const actor = { tenantId: 'default', principalId: 'p' };

/** A queue whose WAL flush the test completes by hand. */
function queueWithPendingFlush() {
  let release: () => void = () => {};
  let pending: Promise<void> | undefined = new Promise<void>((resolve) => {
    release = () => {
      pending = undefined;
      resolve();
    };
  });
  const queue = { whenDurable: () => pending } as unknown as WriteQueue;
  return { queue, release: () => release() };
}

describe('durable reads', () => {
  test('an answer read from a commit not yet on disk is held back until the flush', async () => {
    const { queue, release } = queueWithPendingFlush();
    const detail = { id: 's1' } as SessionDetail;
    const service = withDurableReads(
      {
        getSession: async () => detail,
        listEvents: async () => [],
        listEventsBefore: async () => [],
      } as unknown as SessionService,
      queue,
    );
    let answered = false;
    const reading = service.getSession(actor, 's1').then((value) => {
      answered = true;
      return value;
    });
    const events = service.listEvents(actor, 's1', 0, 10);
    let newestAnswered = false;
    const newest = service.listEventsBefore(actor, 's1', null, 10).then((value) => {
      newestAnswered = true;
      return value;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(answered, false, 'nothing leaves before the WAL flush');
    assert.equal(newestAnswered, false, 'a newest-first read is held back too');
    release();
    assert.equal(await reading, detail);
    assert.deepEqual(await events, []);
    assert.deepEqual(await newest, []);
  });

  test('with nothing pending, reads answer at once', async () => {
    const queue = { whenDurable: () => undefined } as unknown as WriteQueue;
    const service = withDurableReads(
      { listSessions: async () => ({ items: [], nextCursor: null }) } as unknown as SessionService,
      queue,
    );
    assert.deepEqual(await service.listSessions(actor, { limit: 10 }), { items: [], nextCursor: null });
  });

  test('a failed flush fails the read (the caller gets STORE_UNAVAILABLE, not unflushed data)', async () => {
    const failure = new Error('flush failed');
    const queue = { whenDurable: () => Promise.reject(failure) } as unknown as WriteQueue;
    const service = withDurableReads(
      { getSession: async () => ({ id: 's1' }) } as unknown as SessionService,
      queue,
    );
    await assert.rejects(service.getSession(actor, 's1'), failure);
  });

  test('a session created now is answered at once (its own write is on disk); a replay waits for the flush', async () => {
    const { queue, release } = queueWithPendingFlush();
    const created = { session: { id: 'new' } as SessionDetail, created: true };
    const replayed = { session: { id: 'old' } as SessionDetail, created: false };
    let next = created;
    const service = withDurableReads({ createSession: async () => next } as unknown as SessionService, queue);
    assert.equal(await service.createSession(actor, { objective: 'o' }), created);
    next = replayed;
    let answered = false;
    const replay = service.createSession(actor, { objective: 'o' }, 'key').then((value) => {
      answered = true;
      return value;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(answered, false, 'a replay read its session: held back until the flush');
    release();
    assert.equal(await replay, replayed);
  });
});
