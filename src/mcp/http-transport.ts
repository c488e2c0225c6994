// Fastify plugin serving MCP Streamable HTTP at /mcp: one SDK transport + McpServer per MCP
// session (Mcp-Session-Id), SSE responses, Last-Event-ID resumption from the durable stream log
// (on any replica), DNS-rebinding checks.
// Routes declare `config.permission`, so authentication, RBAC, rate limits and audit of the
// REST API apply unchanged; each tool then checks its own permission for the same request.
import { randomUUID } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { isInitializeRequest, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { BUILT_IN_ROLES } from '../agents/roles/catalogue.ts';
import type { RoleDefinition } from '../agents/roles/role.ts';
import type { Config } from '../config/schema.ts';
import type { Actor, SessionService } from '../engine/session-service.ts';
import { AppError } from '../errors/app-error.ts';
import { watchRequestCredential } from '../http/plugins/authenticate.ts';
import { dropWhenClientStalls, STALLED_CLIENT_INTERVALS } from '../http/stalled-client.ts';
import type { Logger } from '../observability/logger.ts';
import type { McpRequestRecorder } from '../observability/mcp-request-metrics.ts';
import type { McpTelemetry } from '../observability/mcp-telemetry.ts';
import { INTERNAL_PRINCIPALS } from '../security/principal.ts';
import type { Permission } from '../security/rbac.ts';
import { type McpCaller, resolveCallerFromAuthInfo, type ToolCallRecord, toAuthInfo } from './caller.ts';
import { type RequestTracker, trackRequests } from './cancelled-requests.ts';
import { createCapacitySlots, type ReleaseSlot } from './capacity-slots.ts';
import { type LiveWithinLimitOptions, liveWithinLimit } from './live-stream-limit.ts';
import {
  buildMcpResourceMetadata,
  createChallengeHook,
  MCP_METADATA_PATH,
  readOidcIssuer,
} from './protected-resource.ts';
import { assertOriginAllowed } from './request-guard.ts';
import { createRequestSlots, type ReserveRequest } from './request-limit.ts';
import { invalidParamsAnswer } from './request-params-check.ts';
import { endAfterResponse } from './resumed-stream.ts';
import { createMcpServer, type MaosMcpServer } from './server.ts';
import type { SessionSteering } from './steering-tools.ts';
import {
  ANSWERED_STREAM_END,
  BATCH_STREAM_START,
  CANCELLED_STREAM_END,
  CLOSED_STREAM_END,
  type FoundStream,
  openStreamsNeeding,
  type SessionEventStore,
  STANDALONE_STREAM_ID,
  type StreamEventLog,
  type StreamOwner,
} from './stream-event-log.ts';
import { createFollowStream, type FollowStreamOptions, PrunedMessagesError } from './stream-follower.ts';
import { openAtOnce } from './stream-opening.ts';
import { permissionsOfToolCalls } from './tool-runner.ts';
import { readWithinUnreadLimit } from './unread-stream-limit.ts';

export interface McpHttpPluginOptions {
  service: SessionService;
  /** `auth` (optional) enables the RFC 9728 metadata when OIDC is configured. */
  config: Pick<Config, 'mcp' | 'host' | 'http'> & Partial<Pick<Config, 'auth'>>;
  /**
   * Checks that the caller of `request` holds `permission` (throws PERMISSION_DENIED otherwise):
   * the RBAC check of the security plugin. Absent = every authenticated caller may use every tool.
   */
  authorize?: (request: FastifyRequest, permission: Permission) => void;
  /** Records state-changing tool calls and denials (see `createToolAuditor`); absent = none. */
  auditToolCall?: (request: FastifyRequest, record: ToolCallRecord) => Promise<void>;
  /** Plan approval and steering messages; without it those tools are not offered. */
  steering?: SessionSteering;
  /** Roles for `list_roles` and `maos://roles`; defaults to the built-in catalogue. */
  listRoles?: (actor: Actor) => Promise<RoleDefinition[]>;
  /**
   * Durable log of SSE messages (migration 0006) for Last-Event-ID resumption on any replica;
   * absent, or `mcp.replayBufferSize` 0, = streams cannot be resumed.
   */
  streamEvents?: StreamEventLog;
  logger?: Logger;
  /** Counts MCP requests by method and outcome (metrics); absent = not counted. */
  onRequest?: McpRequestRecorder;
  /** A span and an mcp.server.operation.duration sample per request (`tcp`); absent = none. */
  telemetry?: McpTelemetry;
  /**
   * Called when an event stream is dropped (metrics): its client stopped reading, fell behind a
   * stream that cannot be read from the log, or lacks messages the log pruned.
   */
  onStreamDropped?: () => void;
  /** Called when a request is refused for mcp.maxRequestsInFlightPerSession/PerPrincipal (metrics). */
  onRequestRefused?: () => void;
  /**
   * Called when an MCP session (initialize) or a resumed stream is refused for mcp.maxSessions,
   * mcp.maxSessionsPerTenant or mcp.maxSessionsPerPrincipal (metrics).
   */
  onSessionRefused?: () => void;
}

interface McpSessionEntry {
  transport: WebStandardStreamableHTTPServerTransport;
  mcp: MaosMcpServer;
  owner: Actor;
  /** When it was last used, by the monotonic clock (performance.now): a step of the wall clock is no idle time. */
  lastSeenAt: number;
  /** Open SSE responses; a session listening for notifications is not idle. */
  openStreams: number;
  /** Gives the session's capacity slot back; called when its transport closes. */
  releaseSlot: ReleaseSlot;
  /** Requests in flight; set once the MCP server is connected. */
  requests?: RequestTracker;
  /** The session's durable stream log; absent when streams cannot be resumed. */
  eventStore?: SessionEventStore;
  /** Settles once the ends of its streams are stored, after its transport closed. */
  closed?: Promise<void>;
}

/** Path of the endpoint; MCP clients are configured with `<base URL>/mcp`. */
export const MCP_PATH = '/mcp';

/** Minimum permission to reach /mcp at all; each tool checks its own on top. */
const ROUTE_PERMISSION = 'sessions:read';

/** The answer to an empty JSON-RPC batch, as JSON-RPC 2.0 gives it. */
const EMPTY_BATCH_ANSWER = {
  jsonrpc: '2.0',
  id: null,
  error: { code: -32600, message: 'Invalid Request: an empty batch' },
} as const;

/**
 * The answer to JSON that is no JSON-RPC message (nor a batch of them), as JSON-RPC 2.0 gives it and
 * `maos mcp` answers such a line: the SDK calls it a Parse error (-32700), which JSON-RPC keeps for
 * text that is not JSON.
 */
const INVALID_REQUEST_ANSWER = {
  jsonrpc: '2.0',
  id: null,
  error: { code: -32600, message: 'Invalid Request: not a JSON-RPC 2.0 message' },
} as const;

function isJsonRpcBody(body: unknown): boolean {
  return (Array.isArray(body) ? body : [body]).every(
    (message) => JSONRPCMessageSchema.safeParse(message).success,
  );
}

/** Why the idle sweep runs at most this often: closing idle sessions is housekeeping, not urgent. */
const MAX_SWEEP_INTERVAL_MS = 60_000;

/**
 * How often a stream resumed on a replica that does not hold its MCP session reads the log for
 * new messages: the session's own process writes them, and no wake-up crosses processes here.
 */
const FOLLOW_POLL_MS = 250;

/**
 * How often a replica following a stream of an MCP session held elsewhere notes in the log that
 * the session is in use (while one of its streams is followed there): a quarter of
 * `mcp.sessionIdleSeconds`, at most 15 s, so the holder always finds a note far younger than the
 * idle time (no floor: with a 1 s idle time a note every second would be as old as that at times).
 */
export function activityIntervalMs(idleMs: number): number {
  return Math.min(15_000, Math.round(idleMs / 4));
}

function readLastEventId(request: FastifyRequest): string | undefined {
  const value = request.headers['last-event-id'];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function readSessionId(request: FastifyRequest): string | undefined {
  const value = request.headers['mcp-session-id'];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function streamOwnerOf(request: FastifyRequest, mcpSessionId: string): StreamOwner {
  return { tenantId: request.actor.tenantId, principalId: request.actor.principalId, mcpSessionId };
}

/** `reserve`, telling `refused` of each request it refuses (RESOURCE_LIMIT_EXCEEDED) before it throws. */
function countRefusals(reserve: ReserveRequest, refused: (() => void) | undefined): ReserveRequest {
  if (refused === undefined) return reserve;
  return () => {
    try {
      return reserve();
    } catch (error) {
      refused();
      throw error;
    }
  };
}

function sameActor(a: Actor, b: Actor): boolean {
  return a.tenantId === b.tenantId && a.principalId === b.principalId;
}

/** The Fastify request as a WHATWG Request (headers only: the body was already parsed). */
function toWebRequest(request: FastifyRequest): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return new Request(new URL(request.url, 'http://localhost'), { method: request.method, headers });
}

/**
 * An event stream's body that ends (cleanly, as the SDK's own end would) once the credential of its
 * request is revoked or expires, or its principal loses the route's permission or one of
 * `permissions`, then calls `onEnded`; `source` is then cancelled, and so is it when the client leaves.
 */
function endWhenCredentialEnds(
  reply: FastifyReply,
  source: Readable,
  permissions: readonly Permission[] = [],
  onEnded = (): void => {},
): Readable {
  const body = new PassThrough();
  const end = (): void => {
    source.unpipe(body);
    body.end();
    onEnded();
  };
  const stopWatching = watchRequestCredential(reply.request, reply, end, permissions);
  if (stopWatching === undefined) return source;
  source.pipe(body);
  // A pipe does not pass errors on: a source that failed (unread-stream-limit.ts destroys it with
  // the error) must end the response, and with it the connection.
  source.once('error', (error) => body.destroy(error));
  body.once('close', () => {
    stopWatching();
    source.destroy();
  });
  return body;
}

/**
 * The plugin with its options bound, for `buildHttpServer({ plugins: [...] })`. Registers nothing
 * when `mcp.enabled` is false. Works encapsulated or not: its only hook is route-level.
 */
export function createMcpHttpPlugin(options: McpHttpPluginOptions): FastifyPluginAsync {
  return async (app) => mcpHttpPlugin(app, options);
}

/** Fastify plugin: `app.register(mcpHttpPlugin, options)`. */
export async function mcpHttpPlugin(app: FastifyInstance, options: McpHttpPluginOptions): Promise<void> {
  const { service, config } = options;
  if (!config.mcp.enabled) return;
  const logger = options.logger ?? (app.log as unknown as Logger);
  const listRoles = options.listRoles ?? (async () => [...BUILT_IN_ROLES]);
  const sessions = new Map<string, McpSessionEntry>();
  const perTenant = { max: config.mcp.maxSessionsPerTenant, setting: 'mcp.maxSessionsPerTenant' };
  const perPrincipal = { max: config.mcp.maxSessionsPerPrincipal, setting: 'mcp.maxSessionsPerPrincipal' };
  const onRefused = options.onSessionRefused;
  const sessionSlots = createCapacitySlots({
    what: 'open MCP sessions',
    total: { max: config.mcp.maxSessions, setting: 'mcp.maxSessions' },
    perTenant,
    perPrincipal,
    ...(onRefused ? { onRefused } : {}),
  });
  // As many as MCP sessions: a replica serves at most that many clients' streams.
  const followSlots = createCapacitySlots({
    what: 'resumed MCP streams',
    total: { max: config.mcp.maxSessions, setting: 'mcp.maxSessions' },
    perTenant,
    perPrincipal,
    ...(onRefused ? { onRefused } : {}),
  });
  // Requests in flight (a tool call, a resource read) per MCP session, and per caller across its
  // sessions: one caller's long waits cannot hold this process without bound.
  const requestsPerSession = {
    max: config.mcp.maxRequestsInFlightPerSession,
    setting: 'mcp.maxRequestsInFlightPerSession',
  };
  const unbounded = { max: Number.POSITIVE_INFINITY, setting: '' };
  const requestSlotsOfCallers = createCapacitySlots({
    what: 'MCP requests in flight',
    total: unbounded,
    perTenant: unbounded,
    perPrincipal: {
      max: config.mcp.maxRequestsInFlightPerPrincipal,
      setting: 'mcp.maxRequestsInFlightPerPrincipal',
    },
  });
  const streamEvents = config.mcp.replayBufferSize > 0 ? options.streamEvents : undefined;
  /** Ends resumed streams that follow the log when the server shuts down. */
  const shutdown = new AbortController();
  const idleMs = config.mcp.sessionIdleSeconds * 1000;
  /**
   * MCP sessions held elsewhere with a stream followed here, by owner: how many streams, and the
   * timer that notes the session's activity in the log meanwhile.
   */
  const followedSessions = new Map<string, { streams: number; timer: NodeJS.Timeout }>();
  const policy = {
    allowedOrigins: config.mcp.allowedOrigins,
    allowedHosts: config.mcp.allowedHosts,
    bindHost: config.host,
  };

  function callerFor(request: FastifyRequest): McpCaller {
    const { auditToolCall } = options;
    return {
      actor: request.actor,
      authorize: (permission) => options.authorize?.(request, permission),
      ...(auditToolCall ? { audit: (record: ToolCallRecord) => auditToolCall(request, record) } : {}),
    };
  }

  async function openSession(owner: Actor): Promise<McpSessionEntry> {
    // Taken before the first await: the session only enters `sessions` once the SDK has
    // initialized it, so counting that map would let concurrent initializes overshoot the caps.
    const releaseSlot = sessionSlots.reserve(owner.tenantId, owner.principalId);
    try {
      return await createSessionEntry(owner, releaseSlot);
    } catch (error) {
      releaseSlot();
      throw error;
    }
  }

  async function createSessionEntry(owner: Actor, releaseSlot: ReleaseSlot): Promise<McpSessionEntry> {
    // Generated up front: the durable event store is bound to the session id and its owner.
    const mcpSessionId = randomUUID();
    const streamOwner: StreamOwner = {
      tenantId: owner.tenantId,
      principalId: owner.principalId,
      mcpSessionId,
    };
    const eventStore = streamEvents?.forSession(streamOwner);
    const entry: McpSessionEntry = {
      transport: new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => mcpSessionId,
        onsessioninitialized: (id) => {
          sessions.set(id, entry);
        },
        onsessionclosed: (id) => {
          sessions.delete(id);
        },
        ...(eventStore ? { eventStore } : {}),
        keepAliveMs: config.http.sseKeepAliveSeconds * 1000,
      }),
      mcp: createMcpServer({
        service,
        listRoles: (caller) => listRoles(caller.actor),
        resolveCaller: resolveCallerFromAuthInfo,
        ...(options.steering ? { steering: options.steering } : {}),
        ...(options.onRequest ? { onRequest: options.onRequest } : {}),
        ...(options.telemetry ? { telemetry: options.telemetry } : {}),
        // Progress during a wait keeps the request alive as keep-alive comments keep a stream.
        progressKeepAliveMs: config.http.sseKeepAliveSeconds * 1000,
        requestSlots: () =>
          countRefusals(
            createRequestSlots(requestsPerSession, () =>
              requestSlotsOfCallers.reserve(owner.tenantId, owner.principalId),
            ),
            options.onRequestRefused,
          ),
        logger,
      }),
      owner: { ...owner },
      lastSeenAt: performance.now(),
      openStreams: 0,
      releaseSlot,
      ...(eventStore ? { eventStore } : {}),
    };
    // Every way a session ends (DELETE, idle sweep, rejected initialize, shutdown) closes its transport.
    entry.transport.onclose = () => {
      if (entry.transport.sessionId !== undefined) sessions.delete(entry.transport.sessionId);
      entry.releaseSlot();
      entry.mcp.dispose();
      entry.closed = storeStreamEnds(entry);
    };
    await entry.mcp.server.connect(entry.transport);
    // A cancelled request gets no response, so its SSE stream is ended without one; the log
    // records the end for resumes on other replicas (and after a restart).
    entry.requests = trackRequests(entry.transport, {
      onStreamCancelled: (streamId) => void eventStore?.storeEvent(streamId, CANCELLED_STREAM_END),
      // A batch's stream ends at its last response: the log marks where a resume of it ends.
      onBatchStream: (streamId) => void eventStore?.storeEvent(streamId, BATCH_STREAM_START),
      onBatchAnswered: (streamId) => void eventStore?.storeEvent(streamId, ANSWERED_STREAM_END),
    });
    return entry;
  }

  /**
   * Drops the connection of an event stream of `mcpSessionId` whose client takes nothing of what
   * waits for it for four keep-alive intervals, by the rule REST event streams follow too
   * (dropWhenClientStalls): Fastify then destroys the body, which cancels its source, and the stream
   * is closed, so its MCP session can idle out. It may resume with Last-Event-ID.
   */
  function dropWhenStalled(reply: FastifyReply, mcpSessionId: string | undefined): void {
    dropWhenClientStalls(reply.raw, {
      intervalMs: config.http.sseKeepAliveSeconds * 1000,
      onStalled: (unsentBytes) => {
        options.onStreamDropped?.();
        reply.request.log.info(
          { mcpSessionId, unsentBytes },
          `MCP event stream dropped: its client took nothing for ${STALLED_CLIENT_INTERVALS} keep-alive intervals (it may resume with Last-Event-ID)`,
        );
      },
    });
  }

  /**
   * Stores, once `entry` has closed, the end of each of its streams on which something was still to
   * come (a request not answered, the standalone stream): nothing ever will, and a resume of them
   * (on any replica, after a restart) ends there instead of waiting for `mcp.sessionIdleSeconds`.
   */
  async function storeStreamEnds(entry: McpSessionEntry): Promise<void> {
    const { eventStore } = entry;
    if (eventStore === undefined || entry.transport.sessionId === undefined) return;
    const streams = [...(entry.requests?.unansweredStreams() ?? []), STANDALONE_STREAM_ID];
    // storeEvent never rejects (a failed write is reported through onStoreError).
    await Promise.all(streams.map((streamId) => eventStore.storeEvent(streamId, CLOSED_STREAM_END)));
  }

  async function closeEntry(entry: McpSessionEntry): Promise<void> {
    try {
      await entry.mcp.server.close();
    } catch (error) {
      logger.warn({ err: error }, 'closing an MCP session failed');
    }
    // At shutdown, before the store closes.
    await entry.closed;
  }

  /**
   * Refuses (PERMISSION_DENIED) a resume of `stream` by a caller who lacks a permission it was opened
   * with: a tool call's stream carries that tool's results, which the caller may no longer see.
   */
  function authorizeResume(request: FastifyRequest, stream: FoundStream): void {
    for (const permission of stream.requires) options.authorize?.(request, permission);
  }

  /**
   * Sends the SDK's Response through Fastify, so hooks (logging, metrics, audit) see it. An event
   * stream ends once its caller loses the route's permission or one of `permissions` (what it carries needs).
   */
  function sendResponse(
    reply: FastifyReply,
    entry: McpSessionEntry,
    response: Response,
    permissions: readonly Permission[],
  ): FastifyReply {
    reply.code(response.status);
    response.headers.forEach((value, name) => {
      reply.header(name, value);
    });
    if (response.body === null) return reply.send();
    const eventStream = response.headers.get('content-type')?.startsWith('text/event-stream') === true;
    // An event stream's messages wait for its client in bounded memory (a client that does not read).
    let body = eventStream
      ? readWithinUnreadLimit(response.body)
      : Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>);
    if (eventStream) {
      dropWhenStalled(reply, entry.transport.sessionId);
      // A key's principal never signs in again once its key is revoked or expired: its session goes
      // too, with its resource subscriptions. A token's user may renew it and go on with the session.
      body = endWhenCredentialEnds(reply, body, permissions, () => {
        if (entry.owner.principalId.startsWith(INTERNAL_PRINCIPALS.apiKeyPrefix)) void closeEntry(entry);
      });
      countOpenStream(entry, body);
    }
    return reply.send(body);
  }

  /**
   * Keeps `owner`'s MCP session, held by another replica, from idling out there while `body`, a
   * stream of it followed here, is open: notes its activity in the log when the first of its
   * streams opens here, then every activityIntervalMs, and when the last one closes (as the holder
   * counts the close of a stream of its own). A failed note is logged; the next one may succeed.
   */
  function keepActiveElsewhere(log: StreamEventLog, owner: StreamOwner, body: Readable): void {
    const key = `${owner.tenantId}\n${owner.principalId}\n${owner.mcpSessionId}`;
    const record = (): void => {
      log.recordActivity(owner).catch((error: unknown) => {
        logger.warn(
          { err: error, mcpSessionId: owner.mcpSessionId },
          'noting the activity of an MCP session held by another replica failed',
        );
      });
    };
    let followed = followedSessions.get(key);
    if (followed === undefined) {
      record();
      const timer = setInterval(record, activityIntervalMs(idleMs));
      timer.unref();
      followed = { streams: 0, timer };
      followedSessions.set(key, followed);
    }
    const counted = followed;
    counted.streams += 1;
    body.once('close', () => {
      counted.streams -= 1;
      if (counted.streams > 0) return;
      clearInterval(counted.timer);
      followedSessions.delete(key);
      // Not at shutdown: the holder then counts from the last note.
      if (!shutdown.signal.aborted) record();
    });
  }

  /** Keeps `entry` from idling out while `body`, one of its event streams, is open. */
  function countOpenStream(entry: McpSessionEntry, body: Readable): void {
    entry.openStreams += 1;
    body.once('close', () => {
      entry.openStreams -= 1;
      entry.lastSeenAt = performance.now();
    });
  }

  /**
   * The messages of `streamId` of `owner` after `afterEventId` as read from `log` (createFollowStream):
   * polled every FOLLOW_POLL_MS, idle after `mcp.sessionIdleSeconds`, ended at shutdown.
   */
  function followLog(
    log: StreamEventLog,
    owner: StreamOwner,
    streamId: string,
    afterEventId: string,
    how: Pick<FollowStreamOptions, 'untilLogEnd' | 'keepAliveMs' | 'failOnError' | 'gapless'>,
    onPruned?: () => void,
  ): ReadableStream<Uint8Array> {
    return createFollowStream({
      log,
      owner,
      streamId,
      afterEventId,
      pollMs: FOLLOW_POLL_MS,
      idleMs,
      signal: shutdown.signal,
      onError: (error) => {
        // Not a failure of the log: the client fell further behind than it keeps (logged as a drop).
        if (error instanceof PrunedMessagesError) return onPruned?.();
        logger.warn({ err: error }, 'resuming an MCP stream from the log failed');
      },
      ...how,
    });
  }

  /**
   * How live stream `streamId` of `entry` is read from the log when its client falls behind; none
   * without a log, or when its id is unknown. Known from the start, not looked up by the last
   * message the client got: that one may be pruned by then while the ones it lacks are not.
   */
  function readLogOf(
    request: FastifyRequest,
    entry: McpSessionEntry,
    mcpSessionId: string,
    streamId: string | undefined,
  ): Pick<LiveWithinLimitOptions, 'readLog'> {
    const log = streamEvents;
    if (log === undefined || entry.eventStore === undefined || streamId === undefined) return {};
    const owner = streamOwnerOf(request, mcpSessionId);
    return {
      readLog: async (afterEventId, firstEventId) =>
        followLog(log, owner, streamId, afterEventId, {
          untilLogEnd: true,
          // The SDK's stream, read all the while, keeps the connection alive.
          keepAliveMs: 0,
          // Not an end: the live messages must not follow a gap, nor skip what was pruned.
          failOnError: true,
          gapless: firstEventId === undefined ? {} : { firstEventId },
        }),
    };
  }

  /** The SSE stream the SDK answers POST `body` on (its requests share one), once it handled them. */
  function streamOfPost(entry: McpSessionEntry, body: unknown): string | undefined {
    for (const message of Array.isArray(body) ? body : [body]) {
      const { id, method } = (message ?? {}) as { id?: unknown; method?: unknown };
      if (typeof method !== 'string' || (typeof id !== 'string' && typeof id !== 'number')) continue;
      return entry.requests?.streamOf(id);
    }
    return undefined;
  }

  /**
   * Resumes a stream of an MCP session this process does not hold (another replica's, or one from
   * before a restart) from the durable log; true once it is being sent. Only the session's own
   * tenant and principal get it. Not the reply itself: a FastifyReply is a thenable that settles when
   * its response has ended, so an awaited one would hold the handler until the stream's end and
   * then give it undefined (as if nothing had been served).
   */
  async function resumeElsewhere(
    request: FastifyRequest,
    reply: FastifyReply,
    mcpSessionId: string,
    lastEventId: string,
  ): Promise<boolean> {
    if (streamEvents === undefined || request.method !== 'GET') return false;
    const owner = streamOwnerOf(request, mcpSessionId);
    const stream = await streamEvents.findStream(owner, lastEventId);
    if (stream === undefined) return false;
    authorizeResume(request, stream);
    resumeFromLog(request, reply, streamEvents, owner, stream, lastEventId);
    return true;
  }

  /** Counts and logs a stream ended because the log pruned messages its client had not got. */
  function droppedForPrunedMessages(request: FastifyRequest, mcpSessionId: string, streamId?: string): void {
    options.onStreamDropped?.();
    request.log.info(
      { mcpSessionId, streamId },
      'MCP event stream dropped: its client fell further behind than the log keeps (mcp.replayBufferSize, mcp.replayRetentionSeconds), and messages it lacks were pruned (its resume is refused)',
    );
  }

  /**
   * Serves `stream` of `owner` from the log after `lastEventId`: followed until its end or, for a
   * stream of `entry` (held here, and nothing more will be stored on it), only what is stored,
   * counted as an open stream of `entry` meanwhile. Its connection ends (a drop) when the log pruned
   * messages after `lastEventId` before the client got them.
   */
  function resumeFromLog(
    request: FastifyRequest,
    reply: FastifyReply,
    log: StreamEventLog,
    owner: StreamOwner,
    stream: FoundStream,
    lastEventId: string,
    entry?: McpSessionEntry,
  ): FastifyReply {
    if (request.headers.accept?.includes('text/event-stream') !== true) {
      throw new AppError('VALIDATION_FAILED', 'Resuming a stream needs `Accept: text/event-stream`');
    }
    const releaseFollow = followSlots.reserve(owner.tenantId, owner.principalId);
    const { streamId } = stream;
    const body = followLog(
      log,
      owner,
      streamId,
      lastEventId,
      {
        untilLogEnd: entry !== undefined,
        keepAliveMs: config.http.sseKeepAliveSeconds * 1000,
        // As a live stream read from the log: never on past messages pruned before the client got
        // them, and an end would look like the stream's own (the client resumes after a failure).
        gapless: {},
        failOnError: true,
      },
      () => droppedForPrunedMessages(request, owner.mcpSessionId, streamId),
    );
    reply.code(200);
    reply.header('content-type', 'text/event-stream');
    reply.header('cache-control', 'no-cache, no-transform');
    reply.header('x-accel-buffering', 'no');
    reply.header('mcp-session-id', owner.mcpSessionId);
    const sent = endWhenCredentialEnds(reply, readWithinUnreadLimit(body), stream.requires);
    sent.once('close', releaseFollow);
    if (entry !== undefined) countOpenStream(entry, sent);
    else keepActiveElsewhere(log, owner, sent);
    dropWhenStalled(reply, owner.mcpSessionId);
    return reply.send(sent);
  }

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    // JSON-RPC 2.0: an empty batch is one Invalid Request (the SDK would accept it with a 202).
    if (request.method === 'POST' && Array.isArray(request.body) && request.body.length === 0) {
      return reply.code(400).type('application/json').send(EMPTY_BATCH_ANSWER);
    }
    if (request.method === 'POST' && !isJsonRpcBody(request.body)) {
      // A request whose `_meta` is malformed is one all the same: -32602 naming it, with its id.
      const malformed = Array.isArray(request.body) ? undefined : invalidParamsAnswer(request.body);
      return reply
        .code(400)
        .type('application/json')
        .send(malformed ?? INVALID_REQUEST_ANSWER);
    }
    const sessionId = readSessionId(request);
    const lastEventId = readLastEventId(request);
    let entry: McpSessionEntry;
    let fresh = false;
    if (sessionId === undefined) {
      if (request.method !== 'POST' || !isInitializeRequest(request.body)) {
        // An initialize whose params are malformed is answered as any such request (-32602, naming
        // the problem), without opening a session: not told to start with an initialize.
        const { method } = (request.body ?? {}) as { method?: unknown };
        const malformed =
          request.method === 'POST' && method === 'initialize'
            ? invalidParamsAnswer(request.body)
            : undefined;
        if (malformed !== undefined) return reply.code(400).type('application/json').send(malformed);
        throw new AppError(
          'VALIDATION_FAILED',
          'Missing Mcp-Session-Id header: start with an initialize request, then send the session id it returns',
        );
      }
      entry = await openSession(request.actor);
      fresh = true;
    } else {
      const found = sessions.get(sessionId);
      if (found === undefined && lastEventId !== undefined) {
        if (await resumeElsewhere(request, reply, sessionId, lastEventId)) return reply;
      }
      // Another principal's session id is as good as unknown: no hijacking by guessing or leaking.
      if (found === undefined || !sameActor(found.owner, request.actor)) {
        throw new AppError('NOT_FOUND', 'MCP session not found or expired: send a new initialize request');
      }
      entry = found;
    }
    entry.lastSeenAt = performance.now();
    // A resumed request stream with nothing more to come (answered, or cancelled: no response) is
    // served from the log and ends there; the SDK would keep it open for a response.
    let resumed: FoundStream | undefined;
    if (
      sessionId !== undefined &&
      request.method === 'GET' &&
      lastEventId !== undefined &&
      streamEvents &&
      entry.eventStore
    ) {
      const owner = streamOwnerOf(request, sessionId);
      // The session's own store: the SDK's lookups of this resume reuse the answer.
      resumed = await entry.eventStore.findStream(lastEventId);
      if (resumed !== undefined) authorizeResume(request, resumed);
      if (
        resumed !== undefined &&
        resumed.streamId !== STANDALONE_STREAM_ID &&
        entry.requests?.isStreamOver(resumed.streamId) === true
      ) {
        return resumeFromLog(request, reply, streamEvents, owner, resumed, lastEventId, entry);
      }
    }
    // What is stored of a live stream it resumes comes from the log at the client's pace (below):
    // the SDK's own replay would write all of it before the client could read any.
    const stopServingFromLog =
      resumed !== undefined && lastEventId !== undefined
        ? entry.eventStore?.replayFromLog(lastEventId)
        : undefined;
    const resumedStreamId = resumed?.streamId;
    // A tool call's stream needs the tool's own permission, as the call itself did: while it is
    // open, and stored with it for a resume (on any replica) to check.
    const permissions =
      request.method === 'POST' ? permissionsOfToolCalls(request.body) : (resumed?.requires ?? []);
    let response: Response;
    try {
      response = await openStreamsNeeding(permissions, () =>
        entry.transport.handleRequest(toWebRequest(request), {
          parsedBody: request.body,
          authInfo: toAuthInfo(callerFor(request)),
        }),
      );
    } catch (error) {
      if (fresh) await closeEntry(entry);
      throw error;
    } finally {
      stopServingFromLog?.();
    }
    // A rejected initialize leaves an unregistered transport behind: release it (and its slot).
    if (fresh && entry.transport.sessionId === undefined) await closeEntry(entry);
    // Its request was cancelled while the SDK replayed it: the SDK registered it anew, end it again.
    if (resumedStreamId !== undefined) entry.requests?.endIfCancelled(resumedStreamId);
    // What waits for the client of a live stream is bounded: past it the stream is read from the log
    // at the client's pace (a resume's stored part always is: the SDK's replay would write all of it
    // before the client could read any).
    const mcpSessionId = entry.transport.sessionId;
    if (
      mcpSessionId !== undefined &&
      response.status === 200 &&
      response.body !== null &&
      response.headers.get('content-type')?.startsWith('text/event-stream') === true
    ) {
      const knownStreamId =
        request.method !== 'GET'
          ? streamOfPost(entry, request.body)
          : lastEventId === undefined
            ? STANDALONE_STREAM_ID
            : resumedStreamId;
      const { status, headers } = response;
      const body = liveWithinLimit(response.body, {
        ...readLogOf(request, entry, mcpSessionId, knownStreamId),
        ...(resumed !== undefined && lastEventId !== undefined ? { resumeAfter: lastEventId } : {}),
        onDropped: (heldBytes) => {
          options.onStreamDropped?.();
          request.log.info(
            { mcpSessionId, heldBytes },
            'MCP event stream dropped: its client fell behind the live messages and the stream cannot be read from the log',
          );
        },
        onPruned: () => droppedForPrunedMessages(request, mcpSessionId, knownStreamId),
      });
      response = new Response(body, { status, headers });
    }
    // A resumed request stream ends after its response, also one replayed from the log (a
    // batch's: after the last of them).
    if (request.method === 'GET' && lastEventId !== undefined && response.body !== null) {
      const { status, headers } = response;
      const streamId = resumedStreamId;
      const isOver = () => streamId === undefined || (entry.requests?.isStreamOver(streamId) ?? true);
      response = new Response(endAfterResponse(response.body, isOver), { status, headers });
    }
    if (
      response.body !== null &&
      response.headers.get('content-type')?.startsWith('text/event-stream') === true
    ) {
      const { status, headers } = response;
      response = new Response(openAtOnce(response.body), { status, headers });
    }
    return sendResponse(reply, entry, response, permissions);
  }

  const issuer = readOidcIssuer(config.auth);
  // Route-level hooks, so they cover /mcp only however the plugin is registered.
  const routeOptions = {
    // With a tool auditor, each tool call gets one record naming the tool instead of the
    // generic per-request one (auth failures and denials on /mcp are still recorded per request).
    config: {
      permission: ROUTE_PERMISSION,
      jsonRpc: { auditsToolCalls: options.auditToolCall !== undefined },
      // Its 401 and 403 challenges name the MCP metadata document (createChallengeHook below).
      ownResourceMetadata: issuer !== undefined,
    },
    schema: { hide: true },
    onRequest: async (request: FastifyRequest) => {
      assertOriginAllowed({ origin: request.headers.origin, host: request.headers.host }, policy);
    },
    ...(issuer === undefined ? {} : { onSend: createChallengeHook() }),
  } as const;
  if (issuer !== undefined) {
    app.get(MCP_METADATA_PATH, { config: { public: true }, schema: { hide: true } }, async (request) =>
      buildMcpResourceMetadata(request, issuer),
    );
  }
  app.post(MCP_PATH, routeOptions, handle);
  app.get(MCP_PATH, routeOptions, handle);
  app.delete(MCP_PATH, routeOptions, handle);

  /**
   * Closes the sessions idle for `mcp.sessionIdleSeconds`: no request and no open stream here, and
   * none of their streams followed on another replica meanwhile (that replica notes it in the log:
   * keepActiveElsewhere). Sessions whose activity cannot be read stay open until the next sweep.
   */
  async function closeIdleSessions(): Promise<void> {
    const cutoff = performance.now() - idleMs;
    const idle = [...sessions.entries()].filter(
      ([, entry]) => entry.openStreams === 0 && entry.lastSeenAt < cutoff,
    );
    if (idle.length === 0) return;
    /** How long ago another replica last noted each one's activity, by the clock that timed the note. */
    let elsewhere = new Map<string, number>();
    if (streamEvents !== undefined) {
      try {
        elsewhere = await streamEvents.activityAges(
          idle.map(([mcpSessionId, entry]) => ({
            tenantId: entry.owner.tenantId,
            principalId: entry.owner.principalId,
            mcpSessionId,
          })),
        );
      } catch (error) {
        logger.warn({ err: error }, 'reading the activity of idle MCP sessions on other replicas failed');
        return;
      }
    }
    for (const [mcpSessionId, entry] of idle) {
      const ageElsewhere = elsewhere.get(mcpSessionId);
      // An age, not a time: this replica's wall clock may disagree with the one that timed the note.
      if (ageElsewhere !== undefined) {
        entry.lastSeenAt = Math.max(entry.lastSeenAt, performance.now() - ageElsewhere);
      }
      // Still idle, also after the read (a request or a stream may have come meanwhile).
      if (sessions.get(mcpSessionId) === entry && entry.openStreams === 0 && entry.lastSeenAt < cutoff) {
        void closeEntry(entry);
      }
    }
  }
  let sweeping = false;
  const sweep = setInterval(
    () => {
      if (sweeping) return;
      sweeping = true;
      void closeIdleSessions().finally(() => {
        sweeping = false;
      });
    },
    Math.min(MAX_SWEEP_INTERVAL_MS, idleMs),
  );
  sweep.unref();

  // The stored stream messages are pruned by the store's retention job (single-flight, batched):
  // see createStreamEventsRetentionTarget in stream-event-log.ts, wired in app.ts.

  // preClose, not onClose: open SSE streams would otherwise keep the HTTP server from closing.
  app.addHook('preClose', async () => {
    clearInterval(sweep);
    shutdown.abort();
    for (const followed of followedSessions.values()) clearInterval(followed.timer);
    followedSessions.clear();
    await Promise.all([...sessions.values()].map(closeEntry));
    sessions.clear();
  });
}
