// A SessionService and SessionSteering that call a running MAOS server over REST, for
// `maos mcp --server URL`: the stdio MCP server then offers the tools of /mcp, with the server's
// auth, RBAC and audit.
import type { RoleDefinition } from '../agents/roles/role.ts';
import { type ApiClient, ApiProblemError, createApiClient } from '../cli/client.ts';
import { CliError } from '../cli/exit-codes.ts';
import { followSession } from '../cli/follow.ts';
import { DEFAULT_RETRY_FOR_MS } from '../cli/retry.ts';
import { toSessionOverview } from '../domain/session-overview.ts';
import type { SessionDetail, SessionEvent, SessionRecord, TaskRecord } from '../domain/types.ts';
import type { SessionService } from '../engine/session-service.ts';
import { AppError, isErrorCode } from '../errors/app-error.ts';
import type { SessionSteering } from './steering-tools.ts';

export interface RemoteServiceOptions {
  /** Base URL of the MAOS server, e.g. http://127.0.0.1:7070. */
  server: string;
  /** Bearer token or API key; the server derives tenant and principal from it. */
  token?: string;
  /**
   * How long an event watch keeps retrying a server that is unavailable before it ends.
   * @defaultValue DEFAULT_RETRY_FOR_MS (90 s, as `maos logs -f`)
   */
  retryForMs?: number;
}

/** REST caps event pages at http.maxPageSize (100 by default); larger asks would be rejected. */
const REMOTE_EVENT_PAGE = 100;

/**
 * Turns the REST client's errors back into AppErrors with the server's stable code. The CliError
 * stays their cause: whether trying again may help (`retryable`, the CLI's one policy) is judged
 * from it, not from the code (a host name not found and a refused connection are both
 * SERVER_UNREACHABLE; only the second may pass).
 */
function toAppErrorFromRemote(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof CliError) {
    // The server's details as it sent them, so tools answer as over /mcp and in embedded mode.
    const raw = error instanceof ApiProblemError ? error.problemDetails : undefined;
    const options = { cause: error, ...(raw !== undefined ? { details: raw } : {}) };
    if (isErrorCode(error.code)) return new AppError(error.code, error.message, options);
    if (error.code === 'TIMEOUT') return new AppError('TIMEOUT', error.message, options);
    return new AppError('SERVER_UNREACHABLE', error.message, options);
  }
  return new AppError('INTERNAL', 'Calling the MAOS server failed', { cause: error });
}

async function remote<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toAppErrorFromRemote(error);
  }
}

function toMs(value: unknown): number {
  if (typeof value === 'number') return value;
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isNaN(ms) ? 0 : ms;
}

function toMsOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : toMs(value);
}

/** REST sends ISO timestamps; the domain types carry epoch milliseconds. */
function toRecord<T extends SessionRecord | TaskRecord>(dto: object): T {
  const raw = dto as Record<string, unknown>;
  const out: Record<string, unknown> = { ...raw, createdAt: toMs(raw.createdAt) };
  for (const key of ['updatedAt', 'readyAt', 'startedAt', 'finishedAt']) {
    if (key in raw) out[key] = key === 'updatedAt' ? toMs(raw[key]) : toMsOrNull(raw[key]);
  }
  return out as unknown as T;
}

function toDetail(dto: object): SessionDetail {
  const raw = dto as { plan?: SessionDetail['plan']; tasks?: object[]; agents?: SessionDetail['agents'] };
  return {
    ...toRecord<SessionRecord>(dto),
    plan: raw.plan ?? null,
    tasks: (raw.tasks ?? []).map((task) => toRecord<TaskRecord>(task)),
    agents: raw.agents ?? [],
  };
}

function toEvent(dto: object): SessionEvent {
  const raw = dto as SessionEvent & { createdAt: unknown };
  return { ...raw, createdAt: toMs(raw.createdAt) };
}

/** A SessionService, steering operations and role list backed by the REST API of a running server. */
export function createRemoteSessionService(options: RemoteServiceOptions): {
  service: SessionService;
  steering: SessionSteering;
  listRoles: () => Promise<RoleDefinition[]>;
  client: ApiClient;
} {
  const retryForMs = options.retryForMs ?? DEFAULT_RETRY_FOR_MS;
  const client = createApiClient({
    server: options.server,
    ...(options.token === undefined ? {} : { token: options.token }),
  });

  const service: SessionService = {
    createSession: (_actor, input, idempotencyKey) =>
      remote(async () => {
        // REST answers 201 for a new session, 200 for the replay of an Idempotency-Key.
        const { session, created } = await client.submitSession(input, idempotencyKey);
        return { session: toDetail(session), created };
      }),
    retrySession: (_actor, sessionId, input, idempotencyKey) =>
      remote(async () => {
        const { session, created } = await client.retrySession(sessionId, input, idempotencyKey);
        return { session: toDetail(session), created };
      }),
    getSession: (_actor, sessionId) => remote(async () => toDetail(await client.getSession(sessionId))),
    getSessionOverview: (_actor, sessionId) =>
      remote(async () => toSessionOverview(toDetail(await client.getSession(sessionId)))),
    listSessions: (_actor, query) =>
      remote(async () => {
        const page = await client.listSessions(query);
        return {
          items: page.items.map((item) => toRecord<SessionRecord>(item)),
          nextCursor: page.nextCursor,
        };
      }),
    cancelSession: (_actor, sessionId) => remote(async () => toDetail(await client.cancelSession(sessionId))),
    deleteSession: (_actor, sessionId) => remote(() => client.deleteSession(sessionId)),
    listEvents: (_actor, sessionId, afterSeq, limit) =>
      remote(async () => {
        const events = await client.listEvents(sessionId, afterSeq, Math.min(limit, REMOTE_EVENT_PAGE));
        return events.map(toEvent);
      }),
    listEventsBefore: (_actor, sessionId, beforeSeq, limit) =>
      remote(async () => {
        const page = Math.min(limit, REMOTE_EVENT_PAGE);
        return (await client.listEventsBefore(sessionId, beforeSeq, page)).map(toEvent);
      }),
    watchEvents(sessionId, onWake) {
      const controller = new AbortController();
      // The CLI's follower and its one retry policy (cli/retry.ts): a dropped stream or an
      // unavailable server (refused, 502/503/504, 429) is retried with backoff for `retryForMs`;
      // 401, 403, 404 and other answers that will not change end the watch at once. It also ends
      // once the session has ended and every event was delivered.
      // The watch only needs what comes next: it starts after the newest event so far instead of
      // replaying the whole log (a wake per past event). When that read fails, from the start.
      const watch = async () => {
        const newest = await client.listEventsBefore(sessionId, null, 1).catch(() => []);
        if (controller.signal.aborted) return;
        await followSession(client, sessionId, {
          afterSeq: newest[0]?.seq ?? 0,
          signal: controller.signal,
          retryForMs,
          onEvent: () => onWake(),
        });
      };
      watch().catch(() => {
        // The watch is over for good: one last wake makes the reader query again, and that query
        // reports the failure with the server's code (SESSION_NOT_FOUND, INVALID_TOKEN, …).
        if (!controller.signal.aborted) onWake();
      });
      return () => controller.abort();
    },
  };

  // `POST /v1/sessions/:id/approve|reject|messages`; the server checks `sessions:approve` etc.
  const steering: SessionSteering = {
    // A plan_version is never dropped for a server that cannot check it: the tools promise that
    // plan only, and the caller is told to decide without it instead.
    approvePlan: (_actor, sessionId, editedPlan, planVersion) =>
      remote(() =>
        client.approveSession(sessionId, editedPlan, planVersion, { sendWithoutOnOlderServer: false }),
      ),
    rejectPlan: (_actor, sessionId, reason, planVersion) =>
      remote(() => client.rejectSession(sessionId, reason, planVersion, { sendWithoutOnOlderServer: false })),
    sendMessage: (_actor, sessionId, message) =>
      remote(async () => {
        const stored = await client.sendMessage(sessionId, message);
        return { id: stored.id, createdAt: toMs(stored.createdAt) };
      }),
  };

  const listRoles = () =>
    remote(async () =>
      (await client.listRoles()).map((role) => ({
        name: role.name,
        description: role.description,
        capabilities: role.capabilities,
        instructions: (role as { instructions?: string }).instructions ?? '',
        builtIn: (role as { builtIn?: boolean }).builtIn ?? true,
      })),
    );

  return { service, steering, listRoles, client };
}
