// An in-memory SessionService for the HTTP unit tests only: just enough behaviour (idempotency,
// pagination, events, cancel) to exercise the routes without the engine and the store.
import { createHash, randomUUID } from 'node:crypto';
import type { CreateSessionInput } from '../domain/session-input.ts';
import { toSessionOverview } from '../domain/session-overview.ts';
import { type SessionDetail, type SessionEvent, ZERO_USAGE } from '../domain/types.ts';
import type {
  Actor,
  CreateSessionResult,
  ListSessionsQuery,
  Page,
  SessionService,
} from '../engine/session-service.ts';
import { AppError } from '../errors/app-error.ts';

export interface FakeSessionService extends SessionService {
  /** Appends an event to a session's log and wakes its watchers. */
  appendEvent(sessionId: string, type: string, data?: Record<string, unknown>): SessionEvent;
  /** Sets the session status (e.g. to a terminal one) without emitting events. */
  setStatus(sessionId: string, status: SessionDetail['status']): void;
  /** Makes the next call of any method throw this error. */
  failNextCallWith(error: unknown): void;
}

/** Creates an empty fake. */
export function createFakeSessionService(): FakeSessionService {
  const sessions = new Map<string, SessionDetail>();
  const events = new Map<string, SessionEvent[]>();
  const watchers = new Map<string, Set<() => void>>();
  const idempotency = new Map<string, { hash: string; sessionId: string }>();
  let clock = Date.UTC(2026, 0, 1);
  let pendingFailure: unknown = null;

  const checkFailure = (): void => {
    if (pendingFailure === null) return;
    const failure = pendingFailure;
    pendingFailure = null;
    throw failure;
  };
  const find = (actor: Actor, id: string): SessionDetail => {
    const session = sessions.get(id);
    if (!session || session.tenantId !== actor.tenantId) {
      throw new AppError('SESSION_NOT_FOUND', `Session ${id} not found.`);
    }
    return session;
  };

  const service: FakeSessionService = {
    async createSession(actor, input: CreateSessionInput, key): Promise<CreateSessionResult> {
      checkFailure();
      const hash = createHash('sha256').update(JSON.stringify(input)).digest('hex');
      if (key) {
        const previous = idempotency.get(`${actor.tenantId}:${key}`);
        if (previous && previous.hash !== hash) {
          throw new AppError('IDEMPOTENCY_KEY_REUSED', 'Idempotency-Key was used with a different body.');
        }
        if (previous) return { session: find(actor, previous.sessionId), created: false };
      }
      clock += 1000;
      const id = randomUUID();
      const session: SessionDetail = {
        id,
        tenantId: actor.tenantId,
        objective: input.objective,
        strategy: input.strategy ?? 'parallel',
        status: 'running',
        metadata: input.metadata ?? {},
        planVersion: 1,
        usage: { ...ZERO_USAGE },
        error: null,
        result: null,
        createdAt: clock,
        updatedAt: clock,
        startedAt: clock,
        finishedAt: null,
        retryOf: null,
        plan: null,
        tasks: [],
        agents: [],
      };
      sessions.set(id, session);
      events.set(id, []);
      if (key) idempotency.set(`${actor.tenantId}:${key}`, { hash, sessionId: id });
      service.appendEvent(id, 'session.created', { objective: input.objective });
      return { session, created: true };
    },
    async getSession(actor, id) {
      checkFailure();
      return find(actor, id);
    },
    async getSessionOverview(actor, id) {
      checkFailure();
      return toSessionOverview(find(actor, id));
    },
    async listSessions(actor, query: ListSessionsQuery): Promise<Page<SessionDetail>> {
      checkFailure();
      let offset = 0;
      if (query.cursor !== undefined) {
        offset = Number(Buffer.from(query.cursor, 'base64url').toString('utf8'));
        if (!Number.isInteger(offset) || offset < 0) throw new AppError('INVALID_CURSOR', 'Bad cursor.');
      }
      const all = [...sessions.values()]
        .filter((s) => s.tenantId === actor.tenantId && (!query.status || s.status === query.status))
        .sort((a, b) => b.createdAt - a.createdAt);
      const items = all.slice(offset, offset + query.limit);
      const next = offset + items.length;
      return {
        items,
        nextCursor: next < all.length ? Buffer.from(String(next)).toString('base64url') : null,
      };
    },
    async retrySession(actor, id, _input, key) {
      checkFailure();
      const original = find(actor, id);
      if (original.status !== 'failed' && original.status !== 'cancelled') {
        throw new AppError('INVALID_STATE', `Session is ${original.status}.`);
      }
      const result = await service.createSession(actor, { objective: original.objective }, key);
      result.session.retryOf = id;
      return result;
    },
    async cancelSession(actor, id) {
      checkFailure();
      const session = find(actor, id);
      if (session.status === 'completed' || session.status === 'failed') {
        throw new AppError('INVALID_STATE', `Session is ${session.status}.`);
      }
      if (session.status !== 'cancelled') {
        session.status = 'cancelled';
        service.appendEvent(id, 'session.finished', { status: 'cancelled' });
      }
      return session;
    },
    async deleteSession(actor, id) {
      checkFailure();
      const session = find(actor, id);
      if (!['completed', 'failed', 'cancelled'].includes(session.status)) {
        throw new AppError('INVALID_STATE', `Session is ${session.status}; cancel it first.`);
      }
      sessions.delete(id);
      events.delete(id);
    },
    async listEvents(actor, id, afterSeq, limit) {
      checkFailure();
      find(actor, id);
      return (events.get(id) ?? []).filter((e) => e.seq > afterSeq).slice(0, limit);
    },
    async listEventsBefore(actor, id, beforeSeq, limit) {
      checkFailure();
      find(actor, id);
      const older = (events.get(id) ?? []).filter((e) => beforeSeq === null || e.seq < beforeSeq);
      return older.slice(-limit).reverse();
    },
    watchEvents(id, onWake) {
      const set = watchers.get(id) ?? new Set();
      set.add(onWake);
      watchers.set(id, set);
      return () => set.delete(onWake);
    },
    appendEvent(id, type, data = {}) {
      const log = events.get(id);
      if (!log) throw new Error(`no session ${id}`);
      clock += 1;
      const event: SessionEvent = { sessionId: id, seq: log.length + 1, type, data, createdAt: clock };
      log.push(event);
      for (const wake of watchers.get(id) ?? []) wake();
      return event;
    },
    setStatus(id, status) {
      const session = sessions.get(id);
      if (session) session.status = status;
    },
    failNextCallWith(error) {
      pendingFailure = error;
    },
  };
  return service;
}
