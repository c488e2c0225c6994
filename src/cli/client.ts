// HTTP client of the `maos` CLI for the REST API: JSON calls with problem+json errors mapped to
// CliError (client-errors.ts), and an SSE event reader that the follower (follow.ts) reconnects.
import { context, propagation } from '@opentelemetry/api';
import type { CreateRoleInput } from '../agents/roles/role-service.ts';
import type { CreateSessionInput, RetrySessionInput } from '../domain/session-input.ts';
import type { SessionStatus } from '../domain/types.ts';
import { blockedPortReason, fetchBlockedPort } from '../errors/fetch-failure.ts';
import type { EventDto, RoleDetailDto, RoleDto, SessionDto, SessionSummaryDto } from '../http/dto.ts';
import type {
  AuditCheckpointDto,
  AuditConsistencyProofDto,
  AuditInclusionProofDto,
  AuditRecordDto,
} from '../http/routes/audit.ts';
import type { CallerDto } from '../http/routes/me.ts';
import type { TenantQuotasDto } from '../http/routes/quotas.ts';
import type { UsageReportDto } from '../http/routes/usage.ts';
import type { RoleBinding } from '../security/role-bindings.ts';
import type { Webhook, WebhookDelivery } from '../webhooks/webhook-service.ts';
import {
  ApiProblemError,
  checkToken,
  explainMissingToken,
  explainOlderServer,
  toConnectionError,
  toProblemError,
  toRedirectError,
  UnreachableError,
  withoutBearerPrefix,
} from './client-errors.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { readSseFrames } from './sse-reader.ts';

// The error types are part of the client's interface (callers test for them).
export { ApiProblemError, toProblemError, UnreachableError };

export interface ApiClientOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:7070. */
  server: string;
  /** Bearer token; sent as `Authorization: Bearer <token>` when set. */
  token?: string;
  /** Servers `maos login` stored a token for, this one not among them: named when a 401 comes. */
  storedForOtherServers?: readonly string[];
  /** Limit for one non-streaming request. @defaultValue 30000 */
  requestTimeoutMs?: number;
}

export interface SessionPage {
  items: SessionSummaryDto[];
  nextCursor: string | null;
}

export interface WebhookDeliveryPage {
  items: WebhookDelivery[];
  nextCursor: string | null;
}

export interface StreamOptions {
  /** Resume after this seq (sent as `Last-Event-ID`); 0 = from the first event. */
  afterSeq: number;
  signal?: AbortSignal;
  /**
   * A stream silent for this long while waited for (no event, no keep-alive) counts as dead.
   * @defaultValue 60000
   */
  idleTimeoutMs?: number;
  /** Called once the server accepted the stream (200), before any event. */
  onOpen?: () => void;
}

export type ApiClient = ReturnType<typeof createApiClient>;

/** Session states after which nothing more happens. */
export const FINAL_SESSION_STATUSES: ReadonlySet<SessionStatus> = new Set([
  'completed',
  'failed',
  'cancelled',
]);

/** Events per JSON page; the server lowers larger values to its `http.maxPageSize` (default 100). */
const EVENT_PAGE_SIZE = 100;

/** Creates a client bound to one server and credentials. */
export function createApiClient(options: ApiClientOptions) {
  const baseUrl = normaliseBaseUrl(options.server);
  const token = withoutBearerPrefix(options.token);
  checkToken(token);
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;

  /** The error of a non-2xx answer, with how to give a token when none was sent and a 401 came. */
  function answerError(response: Response, text: string): CliError {
    const error = toProblemError(response, text);
    return token ? error : explainMissingToken(error, options.storedForOtherServers);
  }

  function headers(extra: Record<string, string> = {}): Record<string, string> {
    const out: Record<string, string> = { accept: 'application/json', ...extra };
    if (token) out.authorization = `Bearer ${token}`;
    // The active trace context, so the server joins its trace (`maos mcp` in remote mode: its span
    // with OTEL_* set, else the client's `_meta` context); a no-op where nothing set one up.
    propagation.inject(context.active(), out);
    return out;
  }

  async function send(url: URL, init: RequestInit): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(url, { ...init, redirect: 'manual' });
    } catch (error) {
      throw toConnectionError(error, baseUrl);
    }
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw toRedirectError(response, url, baseUrl, init.method ?? 'GET');
    }
    return response;
  }

  /** One JSON request; `path` is relative to the base URL (so a base path like /maos/ is kept). */
  async function requestJson<T>(
    method: string,
    path: string,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
  ): Promise<T> {
    return (await requestWithStatus<T>(method, path, body, extraHeaders)).body;
  }

  /** `requestJson` with the success status, for answers where it carries meaning (201 vs 200). */
  async function requestWithStatus<T>(
    method: string,
    path: string,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
  ): Promise<{ status: number; body: T }> {
    const url = new URL(path, baseUrl);
    const init: RequestInit = {
      method,
      headers: headers(
        body === undefined ? extraHeaders : { 'content-type': 'application/json', ...extraHeaders },
      ),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(requestTimeoutMs),
    };
    const response = await send(url, init);
    const text = await response.text();
    if (!response.ok) throw answerError(response, text);
    try {
      return { status: response.status, body: (text === '' ? {} : JSON.parse(text)) as T };
    } catch {
      throw new CliError(
        'BAD_RESPONSE',
        `${method} ${url.pathname}: the server did not return JSON`,
        EXIT.SERVER,
      );
    }
  }

  /**
   * A POST to `path` that makes a session, telling a new one (201) from the replay of an earlier
   * request with the same Idempotency-Key (200).
   */
  async function postSession(
    path: string,
    input: CreateSessionInput | RetrySessionInput,
    idempotencyKey?: string,
  ): Promise<{ session: SessionDto; created: boolean }> {
    const extra: Record<string, string> = idempotencyKey ? { 'idempotency-key': idempotencyKey } : {};
    const { status, body } = await requestWithStatus<SessionDto>('POST', path, input, extra);
    return { session: body, created: status === 201 };
  }

  /** `POST /v1/sessions`; `created` false when an earlier request with the same key made it. */
  const submitSession = (input: CreateSessionInput, idempotencyKey?: string) =>
    postSession('v1/sessions', input, idempotencyKey);

  return {
    baseUrl,

    /** `POST /v1/sessions`. */
    async createSession(input: CreateSessionInput, idempotencyKey?: string): Promise<SessionDto> {
      return (await submitSession(input, idempotencyKey)).session;
    },

    submitSession,

    /**
     * `POST /v1/sessions/:id/retry`: a new session retrying a failed or cancelled one (its succeeded
     * tasks carried over); `created` false when an earlier request with the same key made it.
     */
    async retrySession(
      id: string,
      input: RetrySessionInput,
      idempotencyKey?: string,
    ): Promise<{ session: SessionDto; created: boolean }> {
      return postSession(`v1/sessions/${encodeId(id)}/retry`, input, idempotencyKey);
    },

    /** `GET /v1/sessions` (one page). */
    async listSessions(query: {
      status?: string;
      retryOf?: string;
      limit?: number;
      cursor?: string;
    }): Promise<SessionPage> {
      const params = new URLSearchParams();
      if (query.status) params.set('status', query.status);
      if (query.retryOf) params.set('retryOf', query.retryOf);
      if (query.limit !== undefined) params.set('limit', String(query.limit));
      if (query.cursor) params.set('cursor', query.cursor);
      const qs = params.size > 0 ? `?${params}` : '';
      const body = await requestJson<Partial<SessionPage>>('GET', `v1/sessions${qs}`);
      return { items: body.items ?? [], nextCursor: body.nextCursor ?? null };
    },

    /** `GET /v1/sessions/:id`. */
    async getSession(id: string): Promise<SessionDto> {
      return requestJson<SessionDto>('GET', `v1/sessions/${encodeId(id)}`);
    },

    /** `POST /v1/sessions/:id/cancel`. */
    async cancelSession(id: string): Promise<SessionDto> {
      return requestJson<SessionDto>('POST', `v1/sessions/${encodeId(id)}/cancel`);
    },

    /** `DELETE /v1/sessions/:id`: a finished session with everything of it. */
    async deleteSession(id: string): Promise<void> {
      await requestJson('DELETE', `v1/sessions/${encodeId(id)}`);
    },

    /**
     * `POST /v1/sessions/:id/approve`, as planned or with an edited plan (a new plan version);
     * `planVersion`: the version decided on, refused (INVALID_STATE) when another one waits.
     */
    async approveSession(
      id: string,
      plan?: unknown,
      planVersion?: number,
      options: PlanVersionOptions = {},
    ): Promise<{ planVersion: number; readied: number; renamedTasks?: Record<string, string> }> {
      const path = `v1/sessions/${encodeId(id)}/approve`;
      const body = plan === undefined ? {} : { plan };
      if (planVersion === undefined) return requestJson('POST', path, body);
      return withoutPlanVersionOnOlderServer(
        () => requestJson('POST', path, { ...body, planVersion }),
        () => requestJson('POST', path, body),
        options,
      );
    },

    /** `POST /v1/sessions/:id/reject`: the session fails with the reason (`planVersion` as for approve). */
    async rejectSession(
      id: string,
      reason: string,
      planVersion?: number,
      options: PlanVersionOptions = {},
    ): Promise<void> {
      const path = `v1/sessions/${encodeId(id)}/reject`;
      if (planVersion === undefined) return void (await requestJson('POST', path, { reason }));
      await withoutPlanVersionOnOlderServer(
        () => requestJson('POST', path, { reason, planVersion }),
        () => requestJson('POST', path, { reason }),
        options,
      );
    },

    /** `POST /v1/sessions/:id/messages`: a steering message for the orchestrator. */
    async sendMessage(id: string, message: string): Promise<{ id: string; createdAt: string }> {
      return requestJson('POST', `v1/sessions/${encodeId(id)}/messages`, { message });
    },

    /** `GET /v1/sessions/:id/events?after=&limit=` as JSON (one page, oldest first). */
    async listEvents(id: string, afterSeq: number, limit = EVENT_PAGE_SIZE): Promise<EventDto[]> {
      const path = `v1/sessions/${encodeId(id)}/events?after=${afterSeq}&limit=${limit}`;
      const body = await requestJson<{ items?: unknown[] }>('GET', path);
      return (body.items ?? []).map((raw) => toSessionEvent(raw, id));
    },

    /**
     * `GET /v1/sessions/:id/events?order=desc&before=&limit=` (one page, NEWEST first): the events
     * with seq < `beforeSeq`, or the newest ones when it is null.
     */
    async listEventsBefore(
      id: string,
      beforeSeq: number | null,
      limit = EVENT_PAGE_SIZE,
    ): Promise<EventDto[]> {
      const params = new URLSearchParams({ order: 'desc', limit: String(limit) });
      if (beforeSeq !== null) params.set('before', String(beforeSeq));
      const path = `v1/sessions/${encodeId(id)}/events?${params}`;
      let body: { items?: unknown[] };
      try {
        body = await requestJson<{ items?: unknown[] }>('GET', path);
      } catch (error) {
        throw explainOlderServer(error);
      }
      return (body.items ?? []).map((raw) => toSessionEvent(raw, id));
    },

    /** `GET /v1/roles`. */
    async listRoles(): Promise<RoleDto[]> {
      return (await requestJson<{ items?: RoleDto[] }>('GET', 'v1/roles')).items ?? [];
    },

    /** `GET /v1/roles/{name}`: one role with its system prompt. */
    async getRole(name: string): Promise<RoleDetailDto> {
      if (name.trim() === '') throw new CliError('USAGE', 'the role name must not be empty', EXIT.USAGE);
      return requestJson<RoleDetailDto>('GET', `v1/roles/${encodeSegment(name, 'role name')}`);
    },

    /** `POST /v1/roles`: a custom role of the caller's tenant. */
    async createRole(input: CreateRoleInput): Promise<RoleDto> {
      return requestJson<RoleDto>('POST', 'v1/roles', input);
    },

    /** `DELETE /v1/roles/:name`: removes a custom role of the caller's tenant. */
    async deleteRole(name: string): Promise<void> {
      if (name.trim() === '') throw new CliError('USAGE', 'the role name must not be empty', EXIT.USAGE);
      await requestJson('DELETE', `v1/roles/${encodeSegment(name, 'role name')}`);
    },

    /** `GET /v1/usage?from=&to=[&groupBy=]`: the tenant's usage over [from, to) (see docs/api.md). */
    async usageReport(query: {
      from: string;
      to: string;
      groupBy?: 'day' | 'role' | 'model';
    }): Promise<UsageReportDto> {
      const params = new URLSearchParams({ from: query.from, to: query.to });
      if (query.groupBy) params.set('groupBy', query.groupBy);
      return requestJson<UsageReportDto>('GET', `v1/usage?${params}`);
    },

    /**
     * `GET /v1/admin/role-bindings`: the roles granted to principals of the tenant (of one, when
     * given), every page of them.
     */
    async listRoleBindings(principal?: string): Promise<RoleBinding[]> {
      const items: RoleBinding[] = [];
      let cursor: string | null = null;
      do {
        const params = new URLSearchParams(principal === undefined ? {} : { principal });
        if (cursor !== null) params.set('cursor', cursor);
        const qs = params.size > 0 ? `?${params}` : '';
        const page = await requestJson<{ items?: RoleBinding[]; nextCursor?: string | null }>(
          'GET',
          `v1/admin/role-bindings${qs}`,
        );
        items.push(...(page.items ?? []));
        cursor = page.nextCursor ?? null;
      } while (cursor !== null);
      return items;
    },

    /** `PUT /v1/admin/role-bindings?principal=&role=`: grants the role; `created` false when it was already. */
    async grantRole(principal: string, role: string): Promise<{ binding: RoleBinding; created: boolean }> {
      const { status, body } = await requestWithStatus<RoleBinding>('PUT', roleBindingPath(principal, role));
      return { binding: body, created: status === 201 };
    },

    /** `DELETE /v1/admin/role-bindings?principal=&role=`: revokes the role (404 when it was not granted). */
    async revokeRole(principal: string, role: string): Promise<void> {
      await requestJson('DELETE', roleBindingPath(principal, role));
    },

    /** `GET /v1/me`: who the server takes the credentials for (principal, tenant, roles, permissions). */
    async whoami(): Promise<CallerDto> {
      return requestJson<CallerDto>('GET', 'v1/me');
    },

    /** `GET /v1/audit` (one page, oldest first): the tenant's records after seq `after` (or the one with `id`). */
    async listAuditRecords(query: { after?: number; id?: string; limit: number }): Promise<AuditRecordDto[]> {
      const params = new URLSearchParams({ limit: String(query.limit) });
      if (query.after !== undefined) params.set('cursor', String(query.after));
      if (query.id !== undefined) params.set('id', query.id);
      return (await requestJson<{ items?: AuditRecordDto[] }>('GET', `v1/audit?${params}`)).items ?? [];
    },

    /** `GET /v1/audit/checkpoint`: the latest signed checkpoint and the server's verifier key. */
    async auditCheckpoint(): Promise<AuditCheckpointDto> {
      return requestJson<AuditCheckpointDto>('GET', 'v1/audit/checkpoint');
    },

    /** `GET /v1/audit/proof/inclusion`: the audit path of record `index` in the first `size`. */
    async auditInclusionProof(index: number, size: number): Promise<AuditInclusionProofDto> {
      return requestJson<AuditInclusionProofDto>(
        'GET',
        `v1/audit/proof/inclusion?index=${index}&size=${size}`,
      );
    },

    /** `GET /v1/audit/proof/consistency`: that the first `from` records start the first `to`. */
    async auditConsistencyProof(from: number, to: number): Promise<AuditConsistencyProofDto> {
      return requestJson<AuditConsistencyProofDto>('GET', `v1/audit/proof/consistency?from=${from}&to=${to}`);
    },

    /** `GET /v1/quotas`: the tenant's quotas, what it uses of them now, and its session defaults. */
    async quotas(): Promise<TenantQuotasDto> {
      return requestJson<TenantQuotasDto>('GET', 'v1/quotas');
    },

    /** `GET /v1/webhooks`: the tenant's webhook subscriptions, oldest first (never their secrets). */
    async listWebhooks(): Promise<Webhook[]> {
      return (await requestJson<{ items?: Webhook[] }>('GET', 'v1/webhooks')).items ?? [];
    },

    /** `POST /v1/webhooks`: the new subscription with its signing secret, which no other call returns. */
    async createWebhook(input: { url: string; events: string[] }): Promise<Webhook & { secret: string }> {
      return requestJson<Webhook & { secret: string }>('POST', 'v1/webhooks', input);
    },

    /** `DELETE /v1/webhooks/:id`: the subscription with its secret and deliveries. */
    async deleteWebhook(id: string): Promise<void> {
      await requestJson('DELETE', `v1/webhooks/${encodeId(id, 'webhook')}`);
    },

    /** `POST /v1/webhooks/:id/rotate-secret`: the new signing secret, shown only in this answer. */
    async rotateWebhookSecret(
      id: string,
    ): Promise<{ id: string; secret: string; previousSecretExpiresAt: string | null }> {
      return requestJson('POST', `v1/webhooks/${encodeId(id, 'webhook')}/rotate-secret`);
    },

    /** `POST /v1/webhooks/:id/enable`: re-enables a subscription disabled automatically. */
    async enableWebhook(id: string): Promise<Webhook> {
      return requestJson<Webhook>('POST', `v1/webhooks/${encodeId(id, 'webhook')}/enable`);
    },

    /** `GET /v1/webhooks/:id/deliveries` (one page, newest first). */
    async listWebhookDeliveries(
      id: string,
      query: { limit?: number; cursor?: string } = {},
    ): Promise<WebhookDeliveryPage> {
      const params = new URLSearchParams();
      if (query.limit !== undefined) params.set('limit', String(query.limit));
      if (query.cursor) params.set('cursor', query.cursor);
      const qs = params.size > 0 ? `?${params}` : '';
      const path = `v1/webhooks/${encodeId(id, 'webhook')}/deliveries${qs}`;
      const body = await requestJson<Partial<WebhookDeliveryPage>>('GET', path);
      return { items: body.items ?? [], nextCursor: body.nextCursor ?? null };
    },

    /**
     * One SSE connection to `GET /v1/sessions/:id/events`: yields events until the server closes
     * the stream, the signal aborts or the stream stays silent past the idle timeout (while the
     * consumer holds an event, the stream is not waited for: that time does not count).
     */
    async *streamEvents(id: string, stream: StreamOptions): AsyncGenerator<EventDto> {
      // Aborted already (Ctrl-C while the caller printed): no stream is opened, as none would end.
      if (stream.signal?.aborted) return;
      const idleTimeoutMs = stream.idleTimeoutMs ?? 60_000;
      const controller = new AbortController();
      const onAbort = () => controller.abort(stream.signal?.reason);
      stream.signal?.addEventListener('abort', onAbort, { once: true });
      let idleTimer: NodeJS.Timeout | undefined;
      const armIdleTimer = () => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => controller.abort(new Error('stream idle')), idleTimeoutMs);
        idleTimer.unref();
      };
      try {
        const extra: Record<string, string> = { accept: 'text/event-stream' };
        if (stream.afterSeq > 0) extra['last-event-id'] = String(stream.afterSeq);
        armIdleTimer();
        const response = await send(new URL(`v1/sessions/${encodeId(id)}/events`, baseUrl), {
          method: 'GET',
          headers: headers(extra),
          signal: controller.signal,
        });
        if (!response.ok) throw answerError(response, await response.text());
        stream.onOpen?.();
        if (!response.body) return;
        const body = response.body as AsyncIterable<Uint8Array>;
        const watched = watchActivity(body, armIdleTimer);
        for await (const frame of readSseFrames(watched)) {
          const event = parseFrameData(frame.data, frame.id, frame.event, id);
          if (!event) continue;
          // The consumer's time with the event (printing that waits for a paused stdout) is no
          // silence of the server: the idle timeout counts only the waits for the stream.
          clearTimeout(idleTimer);
          yield event;
          armIdleTimer();
        }
      } catch (error) {
        if (stream.signal?.aborted) return;
        if (error instanceof CliError) throw error;
        // Dropped or idle connection: the caller reconnects with Last-Event-ID.
        throw new CliError('STREAM_INTERRUPTED', 'event stream interrupted', EXIT.UNREACHABLE);
      } finally {
        clearTimeout(idleTimer);
        stream.signal?.removeEventListener('abort', onAbort);
        controller.abort();
      }
    },
  };
}

async function* watchActivity(
  body: AsyncIterable<Uint8Array>,
  onActivity: () => void,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    onActivity();
    yield chunk;
  }
}

/**
 * The server's base URL; not a URL, not http(s), with a user name or password, or on a port fetch
 * refuses for every request (a WHATWG "bad port", e.g. 6000) is a usage error (INVALID_SERVER_URL,
 * exit 2).
 */
export function normaliseBaseUrl(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new CliError(
      'INVALID_SERVER_URL',
      `not a valid server URL: ${withoutUserInfo(server)}`,
      EXIT.USAGE,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(
      'INVALID_SERVER_URL',
      `server URL must be http or https: ${withoutUserInfo(server)}`,
      EXIT.USAGE,
    );
  }
  // fetch refuses such a URL for every request, and its error repeated the password: said here, without it.
  if (url.username !== '' || url.password !== '') {
    url.username = '';
    url.password = '';
    throw new CliError(
      'INVALID_SERVER_URL',
      `server URL ${url.origin}${url.pathname === '/' ? '' : url.pathname} must not hold a user name or password: give the credential with --token, MAOS_TOKEN or \`maos login\``,
      EXIT.USAGE,
    );
  }
  // No request to it could ever go out: said before any, not as a server that is down.
  const port = fetchBlockedPort(url);
  if (port !== undefined) {
    throw new CliError('INVALID_SERVER_URL', `server URL ${server}: ${blockedPortReason(port)}`, EXIT.USAGE);
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

/**
 * `server` as given, without a user name or password before its host: a URL refused for its scheme
 * or its syntax is named without them, as one that holds them is.
 */
function withoutUserInfo(server: string): string {
  return server.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/*)[^/?#]*@/, '$1');
}

/**
 * An id as one path segment; an empty one would address the collection instead, and `.` or `..`
 * (which encodeURIComponent leaves as they are) a path fetch resolves: another route, or none.
 */
function encodeId(id: string, what = 'session'): string {
  if (id.trim() === '') throw new CliError('USAGE', `the ${what} id must not be empty`, EXIT.USAGE);
  return encodeSegment(id, `${what} id`);
}

/** `value` as one path segment; `.` and `..` name none (see encodeId). */
function encodeSegment(value: string, what: string): string {
  if (value === '.' || value === '..') {
    throw new CliError('USAGE', `the ${what} "${value}" is not valid`, EXIT.USAGE);
  }
  return encodeURIComponent(value);
}

/**
 * One role binding, named in the query: a path segment could not carry every principal (fetch
 * drops or resolves `.` and `..`, also written `%2e`).
 */
function roleBindingPath(principal: string, role: string): string {
  return `v1/admin/role-bindings?${new URLSearchParams({ principal, role })}`;
}

/** Normalises an event from a JSON page. */
function toSessionEvent(raw: unknown, sessionId: string): EventDto {
  const entry = (raw ?? {}) as Record<string, unknown>;
  return {
    sessionId: typeof entry.sessionId === 'string' ? entry.sessionId : sessionId,
    seq: Number(entry.seq ?? 0),
    type: String(entry.type ?? 'message'),
    data: (entry.data && typeof entry.data === 'object' ? entry.data : {}) as Record<string, unknown>,
    createdAt: String(entry.createdAt ?? new Date().toISOString()),
  };
}

/**
 * An SSE frame's data is either the whole event (`{seq, type, data, …}`) or only its payload, with
 * seq in the frame id and the type in the frame's event name. Frames without a seq are not events.
 */
function parseFrameData(
  data: string,
  frameId: string | undefined,
  frameEvent: string,
  sessionId: string,
): EventDto | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    parsed = { text: data };
  }
  const entry = (parsed ?? {}) as Record<string, unknown>;
  if (typeof entry.seq === 'number' && typeof entry.type === 'string') {
    return toSessionEvent(entry, sessionId);
  }
  const seq = Number(frameId);
  if (!frameId || !Number.isInteger(seq)) return undefined;
  return {
    sessionId,
    seq,
    type: frameEvent,
    data: (typeof parsed === 'object' && parsed !== null ? parsed : { value: parsed }) as Record<
      string,
      unknown
    >,
    createdAt: new Date().toISOString(),
  };
}

/** What an approve or reject with `planVersion` does on a server older than this client. */
export interface PlanVersionOptions {
  /**
   * `false`: the server's refusal of the field stands (as VALIDATION_FAILED saying that nothing was
   * decided), for a caller that promised its own caller that plan only (the MCP tools in remote
   * mode, whose `plan_version` is documented to decide nothing when another plan waits).
   * @defaultValue true (sent again without it: the plan waiting is decided)
   */
  sendWithoutOnOlderServer?: boolean;
}

/**
 * An approve or reject with `planVersion`, sent again without it to a server older than this client,
 * which refuses the field it does not know (a strict body): the decision is then on the plan waiting,
 * as such a server always decides it — unless the caller said the version must be checked. Any other
 * refusal stands.
 */
async function withoutPlanVersionOnOlderServer<T>(
  call: () => Promise<T>,
  callWithout: () => Promise<T>,
  options: PlanVersionOptions,
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const refusedField =
      error instanceof CliError &&
      error.code === 'VALIDATION_FAILED' &&
      /Unrecognized key: "planVersion"/.test([error.message, ...error.details].join(' '));
    if (!refusedField) throw error;
    if (options.sendWithoutOnOlderServer === false) {
      throw new CliError(
        error.code,
        'The server is older than this client and cannot check the plan version: nothing was decided. Upgrade the server, or decide without a plan version (the plan waiting then is decided)',
        error.exitCode,
        [error.message, ...error.details],
      );
    }
    return callWithout();
  }
}
