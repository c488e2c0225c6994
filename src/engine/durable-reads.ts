// The session service with every answer held back until what it read is on disk: the engine's own
// progress may commit before its WAL flush (store/write-queue.ts, "Deferred durability"), and
// nothing read from such a commit may leave the process before that flush (a power cut would
// otherwise take back a status or an event id a client has already seen).
import type { WriteQueue } from '../store/write-queue.ts';
import type { SessionService } from './session-service.ts';

/** Wraps the reads of `service` (its writes already answer only once their commit is on disk). */
export function withDurableReads(service: SessionService, queue: WriteQueue): SessionService {
  // Read first, then wait: the flush awaited covers every commit the read could have seen.
  const hold = async <T>(read: Promise<T>): Promise<T> => {
    const value = await read;
    await queue.whenDurable();
    return value;
  };
  return Object.freeze({
    // A session created now is answered from the rows its own write stored, acknowledged once on
    // disk: waiting for later commits (the engine keeps committing its steps meanwhile) would only
    // delay the answer. A replay's session is read, and is held back like any read.
    createSession: async (actor, input, idempotencyKey) => {
      const result = await service.createSession(actor, input, idempotencyKey);
      if (!result.created) await queue.whenDurable();
      return result;
    },
    // Its answer is read after the write, so it may show the engine's later progress: held back.
    retrySession: (actor, sessionId, input, idempotencyKey) =>
      hold(service.retrySession(actor, sessionId, input, idempotencyKey)),
    getSession: (actor, sessionId) => hold(service.getSession(actor, sessionId)),
    getSessionOverview: (actor, sessionId) => hold(service.getSessionOverview(actor, sessionId)),
    listSessions: (actor, query) => hold(service.listSessions(actor, query)),
    cancelSession: (actor, sessionId) => hold(service.cancelSession(actor, sessionId)),
    // A write acknowledged after its commit, like a cancel; it answers nothing read.
    deleteSession: (actor, sessionId) => service.deleteSession(actor, sessionId),
    listEvents: (actor, sessionId, afterSeq, limit) =>
      hold(service.listEvents(actor, sessionId, afterSeq, limit)),
    listEventsBefore: (actor, sessionId, beforeSeq, limit) =>
      hold(service.listEventsBefore(actor, sessionId, beforeSeq, limit)),
    watchEvents: (sessionId, onWake) => service.watchEvents(sessionId, onWake),
  } satisfies SessionService);
}
