// The engine's public surface: what REST, CLI, MCP and the console call. Implemented in
// engine/session-service-impl.ts; interfaces depend on this type only.
import type { CreateSessionInput, RetrySessionInput } from '../domain/session-input.ts';
import type {
  SessionDetail,
  SessionEvent,
  SessionOverview,
  SessionRecord,
  SessionStatus,
} from '../domain/types.ts';

/** Who is acting: every call is scoped to one tenant. */
export interface Actor {
  tenantId: string;
  principalId: string;
}

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page; null when this is the last page. */
  nextCursor: string | null;
}

export interface ListSessionsQuery {
  status?: SessionStatus;
  /** Only the retries of this session (POST /v1/sessions/:id/retry). */
  retryOf?: string;
  limit: number;
  cursor?: string;
}

export interface CreateSessionResult {
  session: SessionDetail;
  /** False when an earlier request with the same Idempotency-Key already created it. */
  created: boolean;
}

export interface SessionService {
  /** Validates the plan (roles, runners, DAG) and stores the session with its tasks, in one transaction. */
  createSession(
    actor: Actor,
    input: CreateSessionInput,
    idempotencyKey?: string,
  ): Promise<CreateSessionResult>;
  /**
   * Starts a new session retrying a failed or cancelled one (retry-session.ts): its succeeded tasks
   * carried over with their results, the others run again. SESSION_NOT_FOUND, INVALID_STATE (it has
   * not ended, completed, or ended waiting for plan approval), INVALID_ROLE, VALIDATION_FAILED (a
   * task to run again cannot run on this server), QUOTA_EXCEEDED as at a submit.
   */
  retrySession(
    actor: Actor,
    sessionId: string,
    input: RetrySessionInput,
    idempotencyKey?: string,
  ): Promise<CreateSessionResult>;
  getSession(actor: Actor, sessionId: string): Promise<SessionDetail>;
  /**
   * The session as getSession gives it without its tasks (GET /v1/sessions/:id?tasks=none): its
   * tasks' results are not read. Same access rules as getSession.
   */
  getSessionOverview(actor: Actor, sessionId: string): Promise<SessionOverview>;
  listSessions(actor: Actor, query: ListSessionsQuery): Promise<Page<SessionRecord>>;
  /** Cancels pending tasks, aborts running ones, ends the session `cancelled`. Idempotent on a cancelled session. */
  cancelSession(actor: Actor, sessionId: string): Promise<SessionDetail>;
  /**
   * Deletes a finished (completed, failed, cancelled) session with everything of it: plans, agents,
   * tasks, messages, artifacts, events, idempotency keys, settings. SESSION_NOT_FOUND for an unknown
   * or another tenant's session, INVALID_STATE for one that has not finished. The tenant's per-day
   * spend ledger keeps what the session was charged.
   */
  deleteSession(actor: Actor, sessionId: string): Promise<void>;
  /** Events with seq > afterSeq, oldest first. */
  listEvents(actor: Actor, sessionId: string, afterSeq: number, limit: number): Promise<SessionEvent[]>;
  /**
   * Events with seq < beforeSeq, or the newest events when beforeSeq is null, NEWEST FIRST: reads
   * the end of a log of any length in one call. Same access rules and page cap as listEvents.
   */
  listEventsBefore(
    actor: Actor,
    sessionId: string,
    beforeSeq: number | null,
    limit: number,
  ): Promise<SessionEvent[]>;
  /**
   * Calls `onWake` whenever new events may exist for the session (in this process or, in cluster
   * mode, another replica). Returns an unsubscribe function. Readers re-query with listEvents.
   */
  watchEvents(sessionId: string, onWake: () => void): () => void;
}
