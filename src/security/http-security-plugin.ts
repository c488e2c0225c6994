// The HTTP security layer: authentication (via the server's authenticate hook), tenant-first RBAC
// from each route's `config.permission`, rate limits, RFC 6750 challenges, security headers and
// an audit record for every state-changing request and every denial.
import { trace } from '@opentelemetry/api';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Actor } from '../engine/session-service.ts';
import { AppError } from '../errors/app-error.ts';
import { setCredentialWatcher } from '../http/plugins/authenticate.ts';
import { setStreamHeaderHook } from '../http/sse.ts';
import type { Logger } from '../observability/logger.ts';
import type { AuditLog } from './audit/audit-log.ts';
import type { AuditEventInput } from './audit/audit-record.ts';
import type { AuditWriteCounters } from './audit/counted-audit-log.ts';
import { AUDIT_WAIT_MS, waitForAuditAppend } from './audit-wait.ts';
import type { Authenticator } from './authenticate.ts';
import { answerPreflight, applyCorsHeaders, type CorsOptions, isPreflight } from './cors.ts';
import { createCredentialWatch } from './credential-watch.ts';
import { describeAuditActor, type JsonRpcCall, readJsonRpcCall } from './http-audit-fields.ts';
import { auditedCallsOfBatch, countBatchRequests } from './json-rpc-batch.ts';
import { formatBearerChallenge, type Principal, readAuthFailure } from './principal.ts';
import type { TenantQuotas } from './quotas.ts';
import type { RateLimitDecision, RateLimiter } from './rate-limit.ts';
import { authorize, isPermission, type Permission } from './rbac.ts';
import type { ScopeForPermission } from './scope-challenge.ts';
import { applySecurityHeaders } from './security-headers.ts';

// Importers of these helpers from here keep working.
export { describeAuditActor, type JsonRpcCall, readJsonRpcCall } from './http-audit-fields.ts';

/**
 * Counters the security layer reports to (the metrics registry implements these). Audit writes are
 * counted by the audit log itself (createSecurity wraps it with countAuditWrites).
 */
export interface SecurityMetrics extends AuditWriteCounters {
  recordAuthFailure?(reason: string): void;
  recordRateLimitRejection?(limiter: string): void;
  recordBudgetRejection?(scope: string): void;
}

export interface HttpSecurityOptions {
  authenticator: Authenticator;
  rateLimiter: RateLimiter;
  /** Counted by the caller (countAuditWrites): the layer itself does not count appends. */
  auditLog: AuditLog;
  realm: string;
  logger: Logger;
  /** Checked on `POST` routes that need `sessions:create`. */
  quotas?: TenantQuotas | null;
  /** Browser origins allowed cross-origin; none = same-origin only. */
  cors?: CorsOptions;
  /**
   * When OIDC is on: served at `/.well-known/oauth-protected-resource` (RFC 9728) and advertised in
   * 401 challenges as `resource_metadata`; MCP clients use it to find the authorization server.
   */
  protectedResource?: { resource: string; authorizationServer: string } | null;
  /**
   * The `scope` a 403 challenge names when an OIDC token lacks a permission (scope-challenge.ts);
   * absent = never. API keys never get one: they have no scopes to ask for.
   */
  scopeFor?: ScopeForPermission;
  metrics?: SecurityMetrics;
  /** How long a response waits for its audit record (audit-wait.ts). @defaultValue AUDIT_WAIT_MS */
  auditWaitMs?: number;
  /**
   * How often the credentials of open event streams are verified again (credential-watch.ts): the
   * streams' keep-alive interval. @defaultValue 15000
   */
  credentialRecheckMs?: number;
}

/** What the layer learned about one request. */
interface RequestState {
  principal?: Principal;
  challenge?: string;
  rateLimitHeaders?: Record<string, string>;
  denial?: string;
  /**
   * Refused by the rate limiter, but not as the first refusal of its counter's window: answered
   * 429 and counted, not audited (see auditCallsOf).
   */
  repeatedRateLimit?: boolean;
  /** Its audit record was written (or attempted) before the response was sent. */
  audited?: boolean;
  /** A JSON-RPC batch refused whole by the rate limits (429, or 413 over a whole quota). */
  refusedBatch?: boolean;
  /**
   * A permission refused inside the route (authorizeRequest), not counted yet: counted as
   * `permission_denied` only if the request is answered 403 for it (see onSend).
   */
  deniedInRoute?: boolean;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** What auditCallsOf answers for a request without a record, and for one with the generic record. */
const NO_RECORD: readonly (JsonRpcCall | null)[] = Object.freeze([]);
const REQUEST_RECORD: readonly (JsonRpcCall | null)[] = Object.freeze([null]);

export interface HttpSecurity {
  /** Pass to buildHttpServer as `authenticate`: resolves request.actor or throws (RFC 6750). */
  authenticate(request: FastifyRequest): Promise<Actor>;
  /** Pass to buildHttpServer in `plugins`: RBAC, rate limits, headers and audit on every route. */
  plugin: FastifyPluginAsync;
  /** RBAC check for an extra permission inside a route (e.g. per MCP tool). */
  authorizeRequest(request: FastifyRequest, permission: Permission): void;
  /** The principal of an authenticated request, if any. */
  getPrincipal(request: FastifyRequest): Principal | undefined;
  /** Stops the re-checks of open streams' credentials. */
  close(): void;
}

/** Creates the HTTP security layer. */
export function createHttpSecurity(options: HttpSecurityOptions): HttpSecurity {
  const { authenticator, rateLimiter, auditLog, realm, logger, metrics } = options;
  const auditWaitMs = options.auditWaitMs ?? AUDIT_WAIT_MS;
  const credentials = createCredentialWatch({
    authenticator,
    recheckIntervalMs: options.credentialRecheckMs ?? 15_000,
    onRecheckError: (error) =>
      logger.warn({ err: error }, "an open stream's credential could not be checked again; kept open"),
  });
  const states = new WeakMap<FastifyRequest, RequestState>();
  const stateOf = (request: FastifyRequest): RequestState => {
    let state = states.get(request);
    if (!state) {
      state = {};
      states.set(request, state);
    }
    return state;
  };

  async function authenticate(request: FastifyRequest): Promise<Actor> {
    const state = stateOf(request);
    const guarded = authenticator.mode !== 'none';
    // A burst of guesses from one address waits its turn (admitCheck), so the failures of the first
    // are counted before the others are verified.
    const giveBack = guarded ? await rateLimiter.admitCheck(request.ip) : null;
    try {
      return await authenticateInTurn(request, state, guarded);
    } finally {
      giveBack?.();
    }
  }

  async function authenticateInTurn(
    request: FastifyRequest,
    state: RequestState,
    guarded: boolean,
  ): Promise<Actor> {
    // An address out of failed logins is refused before its credential is looked at, valid or not:
    // verifying it would cost a key lookup or a signature check per request, and answering a good
    // guess differently from a bad one would leave guessing unlimited. The refusal is charged (and
    // so audited once per window) like one after a failed login. On PostgreSQL the shared counter is
    // read only for addresses this replica charged in the last window; why the limit still holds
    // (one more guess per other replica and window at most) is argued at createChargedNetworks.
    const mark = guarded ? rateLimiter.chargeMark(request.ip) : 0;
    if (guarded && (await rateLimiter.isExhausted(request.ip))) await refuseExhausted(request, state);
    const source = {
      authorization: headerAsSent(request, 'authorization'),
      'x-api-key': headerAsSent(request, 'x-api-key'),
    };
    let principal: Principal;
    try {
      principal = await authenticator.authenticate(source);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      const failure = readAuthFailure(error);
      // An outage (503: the store or the identity provider cannot answer) refused nothing: it is not
      // charged, or every client behind one address would be told 429 for the outage's length.
      if (!failure) throw error;
      state.challenge = formatBearerChallenge(
        realm,
        failure.bearerError ?? undefined,
        failure.bearerError ? failure.reason : undefined,
      );
      state.denial = failure.reason;
      metrics?.recordAuthFailure?.(classifyAuthFailure(failure.bearerError, failure.reason));
      // Refused credentials count against the caller's IP, so guessing keys or tokens is throttled.
      const decision = await rateLimiter.consume({ ip: request.ip });
      if (!decision.allowed) {
        state.rateLimitHeaders = decision.headers;
        // The answer is the 429, not the failed login: its audit record says so (the failed logins
        // before it are recorded with their own reasons).
        throw rateLimited(state, decision, 'Too many failed authentication attempts; retry later');
      }
      throw error;
    }
    // A failure of the same address was charged here while this credential was checked (guesses
    // sent together): the credential is accepted only once the counter says the address may still
    // try, as if the failure had come first.
    if (
      guarded &&
      rateLimiter.chargeMark(request.ip) !== mark &&
      (await rateLimiter.isExhausted(request.ip))
    ) {
      await refuseExhausted(request, state);
    }
    state.principal = principal;
    if (principal.authMethod !== 'none') {
      // A stream also ends once its principal loses the permission of its route (a binding
      // removed), or one the handler names for what it streams (an MCP tool's own).
      const permission = request.routeOptions.config?.permission;
      const routePermissions = permission !== undefined && isPermission(permission) ? [permission] : [];
      setCredentialWatcher(request, (permissions = []) =>
        credentials.watch(source, principal, [...routePermissions, ...permissions]),
      );
    }
    return { tenantId: principal.tenantId, principalId: principal.id };
  }

  /** Charges a request of an address found out of failed logins; throws its 429 when refused. */
  async function refuseExhausted(request: FastifyRequest, state: RequestState): Promise<void> {
    const decision = await rateLimiter.consume({ ip: request.ip });
    if (!decision.allowed) {
      state.rateLimitHeaders = decision.headers;
      throw rateLimited(state, decision, 'Too many failed authentication attempts; retry later');
    }
  }

  function authorizeRequest(request: FastifyRequest, permission: Permission): void {
    const state = states.get(request);
    const principal = state?.principal;
    if (!state || !principal) throw new AppError('UNAUTHENTICATED', 'authentication required');
    try {
      authorize(principal, permission);
    } catch (error) {
      // Refused as a whole (an MCP resume that needs a tool's permission: 403), the request's audit
      // record and challenge name this permission, not the route's it had.
      noteMissingPermission(state, principal, permission);
      state.deniedInRoute = true;
      throw error;
    }
  }

  /** The audit reason and the 403 challenge (RFC 6750 `insufficient_scope`) of a missing permission. */
  function noteMissingPermission(state: RequestState, principal: Principal, permission: Permission): void {
    state.denial = `missing permission ${permission}`;
    const scope = principal.authMethod === 'oidc' ? options.scopeFor?.(permission) : null;
    state.challenge = formatBearerChallenge(
      realm,
      'insufficient_scope',
      `requires ${permission}`,
      scope ? { scope } : {},
    );
  }

  async function checkAccess(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const config = request.routeOptions.config;
    if (config?.public === true || request.routeOptions.url === undefined) return;
    const state = stateOf(request);
    const principal = state.principal;
    if (!principal) throw new AppError('UNAUTHENTICATED', 'authentication required');
    const permission = config?.permission;
    const anyAuthenticated = config?.anyAuthenticated === true && permission === undefined;
    if (!anyAuthenticated && (permission === undefined || !isPermission(permission))) {
      // Deny by default: a route without a declared permission is a bug, never open.
      logger.error({ route: request.routeOptions.url }, 'route declares no permission; denied');
      state.denial = 'route declares no permission';
      throw new AppError('PERMISSION_DENIED', 'This operation is not permitted');
    }
    const decision = await rateLimiter.consume({ tenantId: principal.tenantId, principalId: principal.id });
    for (const [name, value] of Object.entries(decision.headers)) reply.header(name, value);
    if (!decision.allowed) throw rateLimited(state, decision, 'Rate limit exceeded; retry later');
    if (anyAuthenticated || permission === undefined) return;
    try {
      authorize(principal, permission);
    } catch (error) {
      noteMissingPermission(state, principal, permission);
      metrics?.recordAuthFailure?.('permission_denied');
      throw error;
    }
    // The submit only: a steering message (same permission) is checked by the engine, against the
    // daily token cap alone (a tenant at its cap of unfinished sessions may still steer them). A
    // replay of a stored Idempotency-Key passes: it gets its session back, it starts none.
    if ((config.submitsSession === true || config.submitsSession === 'retry') && options.quotas) {
      try {
        const key = request.headers['idempotency-key'];
        const params = request.params as { id?: string } | undefined;
        await options.quotas.assertSessionAllowed(
          principal.tenantId,
          undefined,
          typeof key === 'string' ? key : undefined,
          config.submitsSession === 'retry' ? params?.id : undefined,
        );
      } catch (error) {
        noteQuotaDenial(state, error);
        throw error;
      }
    }
  }

  /**
   * Charges the requests of a JSON-RPC batch beyond the first (its POST was charged one point in
   * onRequest, before the body was read), all or none: a batch the counters have no room for is
   * refused whole with 429, none of it run, and one of more requests than a limit's whole quota
   * (which no wait would let through) with 413.
   */
  async function chargeBatch(request: FastifyRequest, reply: FastifyReply, more: number): Promise<void> {
    const state = stateOf(request);
    const principal = state.principal;
    if (!principal) return;
    const decision = await rateLimiter.consumeMore(
      { tenantId: principal.tenantId, principalId: principal.id },
      more,
    );
    const over = decision.exceedsQuota;
    if (over) {
      state.refusedBatch = true;
      state.denial = 'batch over the rate limit';
      metrics?.recordRateLimitRejection?.('requests');
      throw new AppError(
        'PAYLOAD_TOO_LARGE',
        `The batch carries ${more + 1} requests; the ${over.name} rate limit allows ${over.quota} per ${over.windowSeconds} s: send them in smaller batches`,
        { details: { requests: more + 1, limit: over.name, quota: over.quota } },
      );
    }
    for (const [name, value] of Object.entries(decision.headers)) reply.header(name, value);
    if (decision.allowed) return;
    state.refusedBatch = true;
    throw rateLimited(
      state,
      decision,
      `Rate limit exceeded: the batch carries ${more + 1} requests, more than are left; retry later`,
    );
  }

  /**
   * Notes a rate-limit refusal (audit reason and dedup, metric); returns its 429 error, whose
   * Retry-After is the decision's.
   */
  function rateLimited(state: RequestState, decision: RateLimitDecision, message: string): AppError {
    state.repeatedRateLimit = decision.firstRefusal !== true;
    state.denial = 'rate limited';
    metrics?.recordRateLimitRejection?.('requests');
    return new AppError('RATE_LIMITED', message, { retryAfterSeconds: decision.retryAfterSeconds });
  }

  /**
   * Audit reason and metric of a QUOTA_EXCEEDED refusal (its Retry-After is the error's own, see
   * quotas.ts); other errors pass.
   */
  function noteQuotaDenial(state: RequestState, error: unknown): void {
    if (!(error instanceof AppError) || error.code !== 'QUOTA_EXCEEDED') return;
    const quota = (error.details as { quota?: string } | undefined)?.quota;
    state.denial = 'quota exceeded';
    metrics?.recordRateLimitRejection?.(quota === 'daily_tokens' ? 'tokens' : 'sessions');
    // The daily token cap is the tenant's budget: its refusals feed the budget-rejection alert too.
    if (quota === 'daily_tokens') metrics?.recordBudgetRejection?.('tenant');
  }

  function buildAuditEvent(
    request: FastifyRequest,
    reply: FastifyReply,
    rpc: JsonRpcCall | null,
  ): AuditEventInput {
    const state = states.get(request) ?? {};
    const principal = state.principal;
    const permission = request.routeOptions.config?.permission;
    const route = request.routeOptions.url ?? 'unmatched';
    const actor = describeAuditActor(request, principal);
    const params = request.params as Record<string, unknown> | undefined;
    // Routes name their object `:id`, or `:name` for named ones (providers, roles); a create names
    // the object it made in its `Location` header.
    const created = reply.getHeader('location');
    const targetId =
      typeof params?.id === 'string'
        ? params.id
        : typeof params?.name === 'string'
          ? params.name
          : typeof created === 'string'
            ? decodeURIComponent(created.slice(created.lastIndexOf('/') + 1))
            : null;
    const status = reply.statusCode;
    const named = request.routeOptions.config?.audit;
    return {
      action: rpc ? `mcp:${rpc.method}` : (named?.action ?? permission ?? `${request.method} ${route}`),
      actor,
      target: {
        type: rpc ? 'mcp_tool' : (named?.targetType ?? permission?.split(':')[0] ?? 'route'),
        id: rpc ? rpc.tool : named?.targetId ? named.targetId(request) : targetId,
        tenant: principal?.tenantId ?? null,
      },
      outcome: status < 400 ? 'success' : 'failure',
      reason: status < 400 ? null : (state.denial ?? `HTTP ${status}`),
      request_id: String(request.id),
      trace_id: trace.getActiveSpan()?.spanContext().traceId ?? null,
    };
  }

  const plugin: FastifyPluginAsync = async (app) => {
    const resource = options.protectedResource;
    if (resource) {
      const metadata = {
        resource: resource.resource,
        authorization_servers: [resource.authorizationServer],
        bearer_methods_supported: ['header'],
        resource_name: 'MAOS',
      };
      app.get(
        RESOURCE_METADATA_PATH,
        { config: { public: true }, schema: { hide: true } },
        async () => metadata,
      );
    }
    const cors = options.cors ?? { allowedOrigins: [], maxAgeSeconds: 600 };
    app.addHook('onRequest', async (request, reply) => {
      // Preflights carry no credentials; routes have no OPTIONS handler, so answer them here.
      if (isPreflight(request) && request.routeOptions.url === undefined) {
        return answerPreflight(request, reply, cors);
      }
      await checkAccess(request, reply);
      // An event stream skips onSend, where these headers are added to every other answer.
      setStreamHeaderHook(request, () => addResponseHeaders(request, reply));
      return undefined;
    });
    // A JSON-RPC batch costs one point per request it carries (countBatchRequests), the first paid
    // in onRequest. A callback hook: requests that are not batches pass without a promise.
    app.addHook('preValidation', (request, reply, done) => {
      const body = request.body;
      if (!Array.isArray(body) || request.routeOptions.config?.jsonRpc === undefined) return done();
      const more = countBatchRequests(body) - 1;
      if (more <= 0) return done();
      chargeBatch(request, reply, more).then(() => done(), done);
    });
    const addResponseHeaders = (request: FastifyRequest, reply: FastifyReply): void => {
      applySecurityHeaders(reply, request.protocol === 'https');
      applyCorsHeaders(request, reply, cors);
      const state = states.get(request);
      if (state?.rateLimitHeaders) {
        for (const [name, value] of Object.entries(state.rateLimitHeaders)) reply.header(name, value);
      }
      let challenge: string | undefined;
      if (state?.challenge && [400, 401, 403].includes(reply.statusCode)) challenge = state.challenge;
      else if (reply.statusCode === 401) challenge = formatBearerChallenge(realm);
      // /mcp advertises its own, MCP-specific metadata (mcp/protected-resource.ts); one attribute only.
      const ownMetadata = request.routeOptions.config.ownResourceMetadata === true;
      if (challenge && reply.statusCode === 401 && options.protectedResource && !ownMetadata) {
        const url = resourceMetadataUrl(request);
        if (url) challenge += `, resource_metadata="${url}"`;
      }
      if (challenge) reply.header('www-authenticate', challenge);
    };
    // A submit that passed the early quota check can still be refused in the insert's transaction
    // (a concurrent submit took the last slot): same audit reason and metric. Runs
    // before the error handler renders the problem; errors only, so not on the hot path.
    app.addHook('onError', (request, _reply, error, done) => {
      const state = stateOf(request);
      // Refused by the early check: already noted (this hook sees that error too).
      if (state.denial === undefined) noteQuotaDenial(state, error);
      // Forbidden for a reason the route states (a runner the tenant may not use, an Origin /mcp
      // does not take): the audit record says why, not `HTTP 403`. A permission RBAC refused is
      // already noted (noteMissingPermission).
      if (state.denial === undefined && error instanceof AppError && error.status === 403) {
        state.denial = boundedReason(error.message);
      }
      done();
    });
    // The audit record is stored BEFORE the response leaves (awaited here, in onSend): a client
    // that has its answer knows the record of it is stored (durably with SQLite `synchronous: full`).
    // A callback hook: reads that were not denied (the hot path) pass without a promise.
    app.addHook('onSend', (request, reply, payload, done) => {
      try {
        addResponseHeaders(request, reply);
      } catch (error) {
        done(error as Error);
        return;
      }
      countRouteDenial(request, reply);
      // Once per request: an error in a later onSend hook sends an error reply through here again.
      if (states.get(request)?.audited === true) return done(null, payload);
      const calls = auditCallsOf(request, reply);
      if (calls.length === 0) return done(null, payload);
      stateOf(request).audited = true;
      const onLate = () =>
        logger.warn(
          { requestId: String(request.id), waitedMs: auditWaitMs },
          'audit record not stored yet: answered without it (the append goes on)',
        );
      waitForAuditAppend(writeAudits(request, reply, calls), auditWaitMs, onLate).then(
        (outcome) => {
          // The change was made and is answered as the handler answered it (see writeAudit); the
          // header tells the client its record is missing, or not stored yet.
          if (outcome !== 'stored') reply.header(AUDIT_FAILED_HEADER, outcome);
          done(null, payload);
        },
        (error: Error) => done(error),
      );
    });
    // Replies that skip onSend (an SSE stream takes the socket over) are recorded once answered.
    app.addHook('onResponse', (request, reply, done) => {
      if (states.get(request)?.audited === true) return done();
      const calls = auditCallsOf(request, reply);
      if (calls.length === 0) return done();
      writeAudits(request, reply, calls).then(() => done(), done);
    });
  };

  /**
   * Counts a permission refused inside the route once the request is answered 403 for it (an MCP
   * resume), as a refused route is counted. A tool call refused inside a POST is answered 200 with a
   * tool error: the request was served, so it is not an authorization failure of the request.
   */
  function countRouteDenial(request: FastifyRequest, reply: FastifyReply): void {
    const state = states.get(request);
    if (state?.deniedInRoute !== true || reply.statusCode !== 403) return;
    state.deniedInRoute = false;
    metrics?.recordAuthFailure?.('permission_denied');
  }

  /**
   * The audit records of a request: none, or one per JSON-RPC call it carried that is recorded
   * (null: the route's generic record, as for a plain REST request). State changes and denials are
   * recorded; reads are not.
   */
  function auditCallsOf(request: FastifyRequest, reply: FastifyReply): readonly (JsonRpcCall | null)[] {
    const status = reply.statusCode;
    const state = states.get(request);
    // A batch refused whole by the rate limits (also with 413) is a denial: nothing of it ran.
    const denied = status === 401 || status === 403 || status === 429 || state?.refusedBatch === true;
    // A caller over its rate limit gets one record per counter window (its first refusal): one per
    // request would let anyone, without credentials, append to the never-pruned log and fill the
    // append queue as fast as the server can refuse requests, which is what the limit is there to
    // stop. Nothing was done for these requests; each is still counted (recordRateLimitRejection).
    if (status === 429 && state?.repeatedRateLimit === true) return NO_RECORD;
    if (SAFE_METHODS.has(request.method) && !denied) return NO_RECORD;
    if (request.routeOptions.config?.public === true && !denied) return NO_RECORD;
    const jsonRpc = request.routeOptions.config?.jsonRpc;
    if (jsonRpc === undefined) return REQUEST_RECORD;
    // MCP sends every message as a POST; only tool calls change anything (reads are not audited),
    // and a route that records its tool calls itself (one record naming the tool) gets no second
    // one. A refused request gets one record, naming its call when it carried one.
    const body = request.body;
    if (Array.isArray(body))
      return denied ? REQUEST_RECORD : auditedCallsOfBatch(body, jsonRpc.auditsToolCalls);
    const rpc = readJsonRpcCall(body);
    if (rpc && (rpc.method !== 'tools/call' || jsonRpc.auditsToolCalls) && !denied) return NO_RECORD;
    return [rpc];
  }

  /** Writes the records of `calls` (appended in their order); false when any could not be written. */
  async function writeAudits(
    request: FastifyRequest,
    reply: FastifyReply,
    calls: readonly (JsonRpcCall | null)[],
  ): Promise<boolean> {
    if (calls.length === 1) return writeAudit(request, reply, calls[0] ?? null);
    const written = await Promise.all(calls.map((rpc) => writeAudit(request, reply, rpc)));
    return written.every(Boolean);
  }

  async function writeAudit(
    request: FastifyRequest,
    reply: FastifyReply,
    rpc: JsonRpcCall | null,
  ): Promise<boolean> {
    const event = buildAuditEvent(request, reply, rpc);
    try {
      await auditLog.append(event);
      return true;
    } catch (error) {
      // The change (if any) is made and cannot be taken back; answering 5xx instead would say it
      // failed, invite a retry that repeats it, and lose a body shown once (a new API key). So the
      // answer stays the handler's, and the loss is made visible: counted by the log (alert
      // MaosAuditWriteFailures, audit/counted-audit-log.ts), logged with the request id, flagged
      // in a response header.
      logger.error({ err: error, requestId: String(request.id) }, 'audit record could not be written');
      return false;
    }
  }

  return {
    authenticate,
    plugin,
    authorizeRequest,
    getPrincipal: (request) => states.get(request)?.principal,
    close: () => credentials.close(),
  };
}

/**
 * A header's values as the client sent them: several when it was repeated. `request.headers` keeps
 * only the first `Authorization` and joins repeated `x-api-key` values with ", ", so two credentials
 * (which a proxy in front might read the other way) would pass as one.
 */
function headerAsSent(request: FastifyRequest, name: string): string | string[] | undefined {
  // `headersDistinct` is Node's; an injected test request may lack it.
  const values = request.raw.headersDistinct?.[name];
  if (values === undefined) return request.headers[name];
  return values.length === 1 ? values[0] : values;
}

/**
 * Longest audit reason taken from an error's message, in characters: a message may quote what the
 * caller sent (an Origin header of kilobytes), and every 403 is recorded in the never-pruned log.
 */
const MAX_REASON_CHARS = 500;

/** `message`, cut to MAX_REASON_CHARS code points (`…` at the cut, only where it cuts). */
function boundedReason(message: string): string {
  // `length` counts UTF-16 units, never fewer than code points: a message that short is whole; a
  // longer one may still be (characters outside the BMP take two units each).
  if (message.length <= MAX_REASON_CHARS) return message;
  const chars = [...message];
  if (chars.length <= MAX_REASON_CHARS) return message;
  return `${chars.slice(0, MAX_REASON_CHARS - 1).join('')}…`;
}

/** Metric label for an authentication failure (allow-list in observability/metric-labels.ts). */
export function classifyAuthFailure(bearerError: string | null, reason: string): string {
  if (bearerError === null) return 'missing_credentials';
  if (reason.includes('API key')) return 'invalid_api_key';
  if (reason === 'token expired') return 'expired_token';
  if (reason.includes('audience')) return 'wrong_audience';
  return bearerError === 'invalid_token' ? 'invalid_token' : '_OTHER';
}

/**
 * Response header set when the request's audit record could not be stored (`not-recorded`), or was
 * not stored yet when the answer could wait no longer (`pending`, see AUDIT_WAIT_MS).
 */
export const AUDIT_FAILED_HEADER = 'maos-audit';

/** Path of the RFC 9728 protected-resource metadata document. */
export const RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';

/**
 * True when `host` is a plain host[:port] (a name, an IPv4 address or a bracketed IPv6 address):
 * only such a Host is echoed into a challenge, so a forged one cannot inject attributes.
 */
export function isPlainHost(host: string): boolean {
  return /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host);
}

function resourceMetadataUrl(request: FastifyRequest): string | null {
  const host = request.host;
  if (!isPlainHost(host)) return null;
  return `${request.protocol}://${host}${RESOURCE_METADATA_PATH}`;
}
