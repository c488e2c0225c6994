// Builds the Fastify server of MAOS: zod validation/serialisation, OpenAPI, request ids,
// authentication, problem+json errors, SSE streams and the /v1 routes. No listening here.

import type { Server } from 'node:http';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifySchemaCompiler,
  type FastifyServerFactory,
  LogController,
  type RouteOptions,
} from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { CONFIG_DEFAULTS, type Config } from '../config/schema.ts';
import type { SessionService } from '../engine/session-service.ts';
import { AppError } from '../errors/app-error.ts';
import type { Logger } from '../observability/logger.ts';
import { notifyObserver } from '../observability/notify-observer.ts';
import { MAX_PRINCIPAL_LENGTH } from '../security/role-bindings.ts';
import { answerClientError } from './client-error.ts';
import {
  type Authenticator,
  createNoAuthAuthenticator,
  registerAuthentication,
} from './plugins/authenticate.ts';
import { documentBodyProblems } from './plugins/body-problems.ts';
import { MALFORMED_URL_PATH, registerErrorHandling, sendProblem } from './plugins/error-handler.ts';
import { createLazyChildLogger } from './plugins/lazy-child-logger.ts';
import { registerOpenApi } from './plugins/openapi.ts';
import { isOutermost } from './plugins/outermost.ts';
import { REQUEST_ID_HEADER, registerRequestIdEcho, resolveRequestId } from './plugins/request-id.ts';
import { refuseUnstorableText } from './plugins/storable-input.ts';
import { refuseUndeclaredInput } from './plugins/strict-input.ts';
import { type ReadinessProbe, registerHealthRoutes } from './routes/health.ts';
import { registerOpenApiRoute } from './routes/openapi.ts';
import { type RoleRoutesOptions, registerRoleRoutes } from './routes/roles.ts';
import { registerSessionEventRoutes } from './routes/session-events.ts';
import { registerSessionRoutes } from './routes/sessions.ts';
import { withSessionDetailSerializer } from './session-serializer.ts';
import { createSseRegistry } from './sse.ts';
import type { HttpObserver, RegisteredRoute } from './types.ts';

type OptionalHttpSettings =
  | 'maxSseStreamsPerTenant'
  | 'maxSseStreamsPerPrincipal'
  | 'requestTimeoutSeconds'
  | 'trustedProxies';

export interface BuildHttpServerOptions {
  /**
   * HTTP limits; the SSE stream caps, `requestTimeoutSeconds` and `trustedProxies` may be left out
   * (config defaults).
   */
  config: {
    http: Omit<Config['http'], OptionalHttpSettings> & Partial<Pick<Config['http'], OptionalHttpSettings>>;
    /** Selects the security schemes the OpenAPI document declares. */
    auth?: Pick<Config['auth'], 'mode'>;
  };
  service: SessionService;
  logger: Logger;
  /** Readiness checks for /readyz (database, migrations, shutdown state). */
  readiness: ReadinessProbe;
  /** The role catalogue for GET /v1/roles (built-in and the caller's tenant's custom roles). */
  listRoles: RoleRoutesOptions['listRoles'];
  /** One role by name for GET /v1/roles/:name; without it the name is looked up in listRoles. */
  findRole?: RoleRoutesOptions['findRole'];
  /** Counters for problems sent and SSE streams (the metrics registry implements these). */
  observer?: HttpObserver;
  /** Resolves `request.actor`; defaults to auth mode `none`. */
  authenticate?: Authenticator;
  /**
   * Extra plugins (metrics, security headers, rate limits …), registered before the routes and
   * without encapsulation, so their hooks apply to every route; after authentication, except the
   * ones marked outermost (plugins/outermost.ts), which come before the server's own hooks.
   */
  plugins?: FastifyPluginAsync[];
  /**
   * On close, how long in-flight requests may finish before every connection is cut. API requests
   * take milliseconds and SSE streams are ended first, so this only bounds peers that hold a
   * connection open without finishing a request. @defaultValue 2000
   */
  closeGraceMs?: number;
  /** Creates the underlying server, e.g. HTTPS from security/tls.ts; default plain HTTP. */
  serverFactory?: FastifyServerFactory;
}

/** Builds (but does not start) the HTTP server. Call `listen` or `inject` on the result. */
export async function buildHttpServer(options: BuildHttpServerOptions): Promise<FastifyInstance> {
  const { config, service, logger } = options;
  const httpLog = logger.child({ component: 'http' });
  const app: FastifyInstance = Fastify({
    ...(options.serverFactory ? { serverFactory: options.serverFactory } : {}),
    loggerInstance: logger as FastifyBaseLogger,
    // Request/response lines are the observability plugin's job; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    // The per-request child logger (request id binding) is only built when a request logs something.
    childLoggerFactory: createLazyChildLogger,
    bodyLimit: config.http.bodyLimitBytes,
    // Forwarded headers only from the configured proxies (proxy-addr): anyone else could forge them.
    trustProxy: config.http.trustedProxies?.length ? [...config.http.trustedProxies] : false,
    // The router's default (100 characters, percent-encoded) would refuse a role binding's
    // principal long before its own limit; each of its characters takes up to 9 encoded.
    routerOptions: { maxParamLength: MAX_PRINCIPAL_LENGTH * 9 },
    rewriteUrl: (request) => routeMalformedUrl(request.url ?? '/'),
    genReqId: resolveRequestId,
    requestIdHeader: false,
    // SSE streams would keep close() waiting; they are ended in preClose, idle sockets closed here.
    forceCloseConnections: 'idle',
    // Replaced by the SHUTTING_DOWN hook below, which answers with a problem document.
    return503OnClosing: false,
    clientErrorHandler: (error, socket) => {
      const problem = answerClientError(error, socket);
      if (problem === undefined) return;
      // No hook sees these requests: they are counted and logged here (a 431 from a client's
      // oversized cookies, a slow sender's 408s), by the request id the answer carries.
      notifyObserver(options.observer, 'problemSent', problem.code, problem.status);
      httpLog.info(
        {
          requestId: problem.requestId,
          code: problem.code,
          'http.response.status_code': problem.status,
          'event.kind': 'event',
          'event.category': ['web'],
          'event.type': ['access'],
          'event.outcome': 'failure',
        },
        'request refused by the HTTP parser',
      );
    },
    // What the router still refuses before routing comes here, where no hook runs (see routeMalformedUrl).
    frameworkErrors: (error, request, reply) => {
      reply.header(REQUEST_ID_HEADER, String(request.id));
      notifyObserver(options.observer, 'problemSent', 'VALIDATION_FAILED', 400);
      sendProblem(
        request,
        reply,
        new AppError('VALIDATION_FAILED', 'The URL is malformed.', { cause: error }),
      );
    },
  });
  limitRequestTime(
    app.server,
    (config.http.requestTimeoutSeconds ?? CONFIG_DEFAULTS.requestTimeoutSeconds) * 1000,
  );
  // Fastify's idle keep-alive (72 s) applies to servers it builds, not to one from a serverFactory
  // (HTTPS), which kept Node's 5 s: a load balancer reusing a connection for up to 60 s (AWS ALB's
  // default) then meets one the server has just closed, and answers 502.
  app.server.keepAliveTimeout = app.initialConfig.keepAliveTimeout ?? 72_000;
  app.setValidatorCompiler(explainMissingBody(refuseUnstorableText(validatorCompiler)));
  app.setSerializerCompiler(withSessionDetailSerializer(serializerCompiler));
  registerJsonParser(app);
  recordRoutes(app);
  refuseUndeclaredInput(app);
  documentBodyProblems(app);
  registerErrorHandling(app, options.observer);
  // Hooks run in registration order: tracing goes before the shutdown and authentication hooks, so
  // the requests they refuse get a server span too. The other plugins may need `request.actor`.
  const plugins = options.plugins ?? [];
  for (const plugin of plugins.filter(isOutermost)) await app.register(skipEncapsulation(plugin));
  registerRequestIdEcho(app);
  let closing = false;
  app.addHook('onRequest', (request, _reply, done) => {
    // Requests that still arrive on open connections during shutdown go to another replica.
    if (closing && request.routeOptions.url !== '/healthz') {
      done(new AppError('SHUTTING_DOWN', 'The server is shutting down; retry on another instance.'));
      return;
    }
    done();
  });
  await registerOpenApi(app, config.auth?.mode);
  registerAuthentication(app, options.authenticate ?? createNoAuthAuthenticator());
  for (const plugin of plugins.filter((plugin) => !isOutermost(plugin))) {
    await app.register(skipEncapsulation(plugin));
  }

  const streams = createSseRegistry((delta) => notifyObserver(options.observer, 'sseConnection', delta));
  const closeGraceMs = options.closeGraceMs ?? 2000;
  app.addHook('preClose', async () => {
    closing = true;
    streams.closeAll();
    setTimeout(() => app.server.closeAllConnections(), closeGraceMs).unref();
  });

  registerHealthRoutes(app, options.readiness);
  registerOpenApiRoute(app);
  registerRoleRoutes(app, {
    listRoles: options.listRoles,
    ...(options.findRole ? { findRole: options.findRole } : {}),
  });
  registerSessionRoutes(app, { service, maxPageSize: config.http.maxPageSize });
  registerSessionEventRoutes(app, {
    service,
    maxPageSize: config.http.maxPageSize,
    keepAliveSeconds: config.http.sseKeepAliveSeconds,
    streams,
    maxStreamsPerTenant: config.http.maxSseStreamsPerTenant ?? CONFIG_DEFAULTS.maxSseStreamsPerTenant,
    maxStreamsPerPrincipal:
      config.http.maxSseStreamsPerPrincipal ?? CONFIG_DEFAULTS.maxSseStreamsPerPrincipal,
    onEventsSent: (count) => notifyObserver(options.observer, 'sseEventsSent', count),
    onStreamRefused: () => notifyObserver(options.observer, 'sseStreamRefused'),
    onStreamStalled: () => notifyObserver(options.observer, 'sseStreamDropped'),
  });
  await app.ready();
  return app;
}

/**
 * A route that needs a body and got none (nothing sent, or an empty JSON body) says so, instead of
 * the schema's "expected object, received null" about a value the client never sent.
 */
function explainMissingBody<T>(compiler: FastifySchemaCompiler<T>): FastifySchemaCompiler<T> {
  return (route) => {
    const validate = compiler(route);
    if (route.httpPart !== 'body') return validate;
    return (data: unknown) => {
      const result = validate(data);
      // Fastify hands a missing body over as null (as a body of `null`, which is no object either).
      if (data != null || typeof result !== 'object' || !('error' in result) || !result.error) return result;
      const message = 'a JSON body is required, and the request has none';
      return { error: [{ keyword: 'required', instancePath: '', schemaPath: '', params: {}, message }] };
    };
  };
}

/**
 * Decodes a body as UTF-8, refusing (TypeError) bytes that are not: decoded leniently they would
 * become U+FFFD and be stored so, e.g. the Latin-1 `é` of a client that ignores JSON's UTF-8 rule.
 */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The API takes JSON only (other media types and compressed bodies get 415), in UTF-8 (RFC 8259;
 * other bytes get 400).
 * An empty JSON body counts as no body, so body-less POSTs sent with a JSON content type work.
 */
function registerJsonParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    // Bodies are read as sent: a compressed one (or one merely labelled so) is refused as RFC 9110
    // §15.5.16 says, rather than failing as bytes that are not UTF-8 or read as if uncompressed.
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      done(
        new AppError(
          'UNSUPPORTED_MEDIA_TYPE',
          'A compressed body (Content-Encoding) is not supported; send it uncompressed.',
        ),
        undefined,
      );
      return;
    }
    let text: string;
    try {
      text = typeof body === 'string' ? body : strictUtf8.decode(body);
    } catch {
      done(new AppError('VALIDATION_FAILED', 'The body is not valid UTF-8.'), undefined);
      return;
    }
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    parseJson(request, text, (error, value) => {
      if (error) done(new AppError('VALIDATION_FAILED', describeRefusedJson(text)), undefined);
      else done(null, value);
    });
  });
}

/**
 * Why the JSON parser refused `text`. It also refuses well-formed JSON holding a `__proto__` key or a
 * `constructor` key with a `prototype` (prototype poisoning): saying such a body "is not valid
 * JSON" sent its author looking for a syntax error that is not there.
 */
function describeRefusedJson(text: string): string {
  try {
    JSON.parse(text);
  } catch {
    return 'The body is not valid JSON.';
  }
  return 'The body holds a key "__proto__", or a key "constructor" whose value has a key "prototype", which are refused in every object of a body.';
}

/**
 * The URL a request is routed by: its own, or MALFORMED_URL_PATH when its path, or the query of an
 * API route (`/v1/…`), does not percent-decode (`%ZZ`, a cut-off or invalid UTF-8 sequence such as
 * Latin-1 `%E9`). The router would hand such a path to Fastify's bad-URL answer (frameworkErrors),
 * which runs no hook: no X-Request-Id, metrics, access log line, span or rate limit; the query
 * parser would keep such a value as its literal text (`caf%E9`: a role granted to a principal
 * nobody has) or put U+FFFD in its place. No route has MALFORMED_URL_PATH, so the not-found handler
 * answers it 400 with every hook run; `request.originalUrl` keeps what the client sent. The probes,
 * documents and console read no query and ignore theirs (a health checker's cache-buster).
 */
function routeMalformedUrl(url: string): string {
  if (!url.includes('%')) return url;
  const end = url.search(/[?#]/);
  const path = end === -1 ? url : url.slice(0, end);
  try {
    decodeURIComponent(path.startsWith('/v1/') ? url : path);
    return url;
  } catch {
    return MALFORMED_URL_PATH;
  }
}

/** Keeps the options of every route (read lazily: later onRoute hooks may still adjust them). */
function recordRoutes(app: FastifyInstance): void {
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
  app.decorate('listRegisteredRoutes', (): RegisteredRoute[] =>
    routes.map((route) => ({
      methods: [route.method].flat().map(String),
      url: route.url,
      public: route.config?.public === true,
      permission: route.config?.permission,
      auditAction: route.config?.audit?.action,
      anyAuthenticated: route.config?.anyAuthenticated === true,
      hidden: (route.schema as { hide?: boolean } | undefined)?.hide === true,
    })),
  );
}

/** Same effect as fastify-plugin's `skip-override`: hooks of the plugin apply to the whole server. */
function skipEncapsulation(plugin: FastifyPluginAsync): FastifyPluginAsync {
  const wrapped: FastifyPluginAsync = async (instance, opts) => plugin(instance, opts);
  Object.defineProperty(wrapped, Symbol.for('skip-override'), { value: true });
  return wrapped;
}

/**
 * Bounds the time a client may take to send a request, headers and body, on the server Fastify
 * built (plain or from a serverFactory). Fastify turns Node's request timeout off by default, and
 * Node then never expires a request whose headers or body trickle in: a client, authenticated or
 * not, could hold any number of connections open by sending a byte now and then (slowloris). Such
 * a request gets 408 (client-error.ts) and its connection is closed. Only receiving is bounded: the
 * answer (an event stream, a long MCP wait) may take as long as it takes.
 */
function limitRequestTime(server: Server, timeoutMs: number): void {
  server.requestTimeout = timeoutMs;
  // Node requires headersTimeout <= requestTimeout.
  server.headersTimeout = Math.min(server.headersTimeout, timeoutMs);
  // Node looks for expired requests on an interval (30 s by default), read when the server starts
  // listening (a property Node's types do not declare): a quarter of the timeout keeps the overrun
  // small for short timeouts.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.min(
    30_000,
    Math.max(250, Math.floor(timeoutMs / 4)),
  );
}
