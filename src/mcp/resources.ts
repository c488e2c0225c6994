// MCP resources of MAOS: maos://roles, maos://sessions/{id} (status JSON) and
// maos://sessions/{id}/agents/{agent}/output, with subscriptions that notify when a session changes.
import { type McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import {
  ListResourcesRequestSchema,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { headOf } from '../domain/text-cut.ts';
import type { SessionDetail, TaskRecord } from '../domain/types.ts';
import type { Actor } from '../engine/session-service.ts';
import { AppError } from '../errors/app-error.ts';
import type { McpCaller, RequestExtra } from './caller.ts';
import { findTask, formatSessionUri, readAgentOutput, toSessionStatus } from './session-view.ts';
import { toProtocolError } from './tool-result.ts';
import { sessionIdSchema } from './tool-runner.ts';
import type { ToolDependencies } from './tools.ts';

export const ROLES_URI = 'maos://roles';

/** `maos://roles` as `resources/list` shows it. */
const ROLES_RESOURCE = {
  uri: ROLES_URI,
  name: 'roles',
  title: 'Agent roles',
  description: 'Every role a session can use, with capabilities and system prompt templates.',
  mimeType: 'application/json',
} as const;

/** Sessions per page of `resources/list`, newest first; `nextCursor` leads to older ones. */
const LISTED_SESSIONS = 50;

const SESSION_RESOURCE = {
  title: 'Session status',
  description:
    'Status of a session as JSON: state, plan, per-task progress and result. Subscribe to be notified when it changes.',
  mimeType: 'application/json',
} as const;

/**
 * Notifications for one subscription are coalesced over this window: a running session writes an
 * event per output line, and a client only needs to know "re-read now", not every line.
 */
const NOTIFY_DEBOUNCE_MS = 200;

/**
 * Subscriptions one MCP connection may hold. In stdio remote mode each one keeps an SSE stream to
 * the server open, counted against `http.maxSseStreamsPerTenant` (100 by default): one client must
 * not take every stream of its tenant.
 */
export const MAX_SUBSCRIPTIONS = 50;

type ResourceTarget =
  | { kind: 'roles' }
  | { kind: 'session'; sessionId: string }
  | { kind: 'output'; sessionId: string; agent: string };

/** A target the caller may see and that exists, with what was read to check it. */
type ResolvedTarget =
  | { kind: 'roles' }
  | { kind: 'session'; detail: SessionDetail }
  | { kind: 'output'; detail: SessionDetail; task: TaskRecord };

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new AppError('NOT_FOUND', `Malformed resource URI component: ${part}`);
  }
}

/**
 * Parses a MAOS resource URI; throws NOT_FOUND for anything else. The session id comes back in
 * lower case, as the server writes ids (UUIDs are case-insensitive); the URI itself is kept as sent.
 */
export function parseResourceUri(uri: string): ResourceTarget {
  if (uri === ROLES_URI) return { kind: 'roles' };
  const match = /^maos:\/\/sessions\/([^/]+)(?:\/agents\/([^/]+)\/output)?$/.exec(uri);
  if (match?.[1] === undefined) throw new AppError('NOT_FOUND', `Unknown resource ${uri}`);
  const sessionId = decode(match[1]).toLowerCase();
  if (match[2] === undefined) return { kind: 'session', sessionId };
  return { kind: 'output', sessionId, agent: decode(match[2]) };
}

function jsonContents(uri: string, data: unknown): ReadResourceResult {
  return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(data, null, 2) }] };
}

/** Registers the resources, templates and subscribe/unsubscribe handlers on `server`. */
export function registerResources(server: McpServer, deps: ToolDependencies): () => void {
  const { service } = deps;

  /** Runs a resource handler; failures become JSON-RPC errors with the MAOS code in `data.code`. */
  async function guard<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      throw toProtocolError(error, deps.logger);
    }
  }

  /**
   * Checks the caller's permission and that what `uri` names exists for them (a foreign session is
   * SESSION_NOT_FOUND, as everywhere): the same checks for reads and subscriptions.
   */
  async function resolveTarget(uri: string, caller: McpCaller): Promise<ResolvedTarget> {
    const target = parseResourceUri(uri);
    if (target.kind === 'roles') {
      caller.authorize('roles:read');
      return target;
    }
    caller.authorize('sessions:read');
    // Session ids are UUIDs: anything else names no session, answered here as the engine answers an
    // unknown one. Left to the service, remote mode's REST call refused it as VALIDATION_FAILED.
    if (!sessionIdSchema.safeParse(target.sessionId).success) {
      throw new AppError('SESSION_NOT_FOUND', `Session ${target.sessionId} not found`);
    }
    const detail = await service.getSession(caller.actor, target.sessionId);
    if (target.kind === 'session') return { kind: 'session', detail };
    const task = findTask(detail, target.agent);
    if (task === undefined) {
      throw new AppError('NOT_FOUND', `Session ${detail.id} has no agent ${target.agent}`, {
        details: { agents: detail.tasks.map((t) => t.name) },
      });
    }
    return { kind: 'output', detail, task };
  }

  async function readTarget(uri: string, extra: RequestExtra): Promise<ReadResourceResult> {
    const caller = deps.resolveCaller(extra);
    const target = await resolveTarget(uri, caller);
    if (target.kind === 'roles') return jsonContents(uri, { roles: await deps.listRoles(caller) });
    if (target.kind === 'session') return jsonContents(uri, toSessionStatus(target.detail));
    const text = await readAgentOutput(service, caller.actor, target.detail, target.task);
    return { contents: [{ uri, mimeType: 'text/plain', text }] };
  }

  server.registerResource(
    'roles',
    ROLES_URI,
    {
      title: ROLES_RESOURCE.title,
      description: ROLES_RESOURCE.description,
      mimeType: ROLES_RESOURCE.mimeType,
    },
    (uri, extra) => guard(() => readTarget(uri.href, extra)),
  );

  // Registered before the session template so the more specific pattern is tried first.
  server.registerResource(
    'agent-output',
    new ResourceTemplate('maos://sessions/{id}/agents/{agent}/output', { list: undefined }),
    {
      title: 'Agent output',
      description:
        "An agent's output in a session: its final result, or while it runs the lines it has produced so far. `agent` is the task name from the session status.",
      mimeType: 'text/plain',
    },
    (uri, _variables, extra) => guard(() => readTarget(uri.href, extra)),
  );

  // Listed page by page by the resources/list handler below, which the SDK's cannot do.
  server.registerResource(
    'session',
    new ResourceTemplate('maos://sessions/{id}', { list: undefined }),
    SESSION_RESOURCE,
    (uri, _variables, extra) => guard(() => readTarget(uri.href, extra)),
  );

  // The roles, then the caller's sessions newest first, LISTED_SESSIONS per page: `nextCursor` (the
  // cursor of GET /v1/sessions) leads to older ones, and a cursor that is not one is -32602.
  server.server.setRequestHandler(ListResourcesRequestSchema, (request, extra) =>
    guard(async () => {
      const caller = deps.resolveCaller(extra);
      const cursor = request.params?.cursor;
      caller.authorize('sessions:read');
      const page = await service.listSessions(caller.actor, {
        limit: LISTED_SESSIONS,
        ...(cursor === undefined ? {} : { cursor }),
      });
      const sessions = page.items.map((session) => ({
        ...SESSION_RESOURCE,
        uri: formatSessionUri(session.id),
        name: `session-${session.id}`,
        title: `${session.status}: ${headOf(session.objective, 80)}`,
      }));
      return {
        resources: cursor === undefined ? [ROLES_RESOURCE, ...sessions] : sessions,
        ...(page.nextCursor === null ? {} : { nextCursor: page.nextCursor }),
      };
    }),
  );

  const watches = new Map<string, () => void>();

  /** A running watch: how to stop it, and its first reading of the session (its baseline). */
  interface Watch {
    stop: () => void;
    baseline: Promise<unknown>;
  }

  /**
   * What a read of the session would show, as far as a change goes: its newest event (every change
   * of a session appends one), or the code of the error the read meets (deleted, access gone).
   */
  async function changeMark(actor: Actor, sessionId: string): Promise<string> {
    try {
      const [newest] = await service.listEventsBefore(actor, sessionId, null, 1);
      return `event ${newest?.seq ?? 0}`;
    } catch (error) {
      return `error ${error instanceof AppError ? error.code : 'INTERNAL'}`;
    }
  }

  /**
   * Notifies the subscriber of `uri` when its session changes. A wake is no change by itself: on
   * PostgreSQL every watched session is woken every few seconds (store/pg-notifier.ts, a sweep that
   * covers lost notifications), and each wake was told to the client as an update, also of a
   * session that had long finished, and written to the MCP stream log. So a wake notifies only once
   * the session's newest event (or the error reading it) differs from what was last seen. The
   * subscribe is answered once `baseline` is read: a change after the answer then differs from it.
   */
  function watch(uri: string, sessionId: string, actor: Actor): Watch {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    // One read at a time, each compared with the one before it.
    let seen = changeMark(actor, sessionId);
    const check = async (): Promise<void> => {
      const before = await seen;
      const now = changeMark(actor, sessionId);
      seen = now;
      if ((await now) === before || stopped) return;
      server.server.sendResourceUpdated({ uri }).catch(() => {
        // The client went away; the transport's close handler removes the watch.
      });
    };
    const stop = service.watchEvents(sessionId, () => {
      if (timer !== undefined) return;
      timer = setTimeout(() => {
        timer = undefined;
        void check();
      }, NOTIFY_DEBOUNCE_MS);
      timer.unref();
    });
    return {
      baseline: seen,
      stop: () => {
        stopped = true;
        clearTimeout(timer);
        stop();
      },
    };
  }

  /**
   * Starts the watch of `uri` in its slot and waits for its baseline. The slot is taken before the
   * wait, so subscribes answered meanwhile count it against the cap. Before, the baseline was read
   * after the answer: an event landing in between became the baseline, and was never told. With
   * `signal` (a first subscribe), a cancel meanwhile drops the watch; a subscribe again cancelled
   * keeps it, in place of the watch of the subscription that stood. (A connection that closed
   * meanwhile stopped every watch of its slots.)
   */
  async function startWatch(
    uri: string,
    sessionId: string,
    actor: Actor,
    signal?: AbortSignal,
  ): Promise<void> {
    const started = watch(uri, sessionId, actor);
    watches.set(uri, started.stop);
    await started.baseline;
    // Cancelled meanwhile: it gets no answer, so it subscribed to nothing.
    if (signal?.aborted === true && watches.get(uri) === started.stop) {
      started.stop();
      watches.delete(uri);
    }
  }

  /**
   * At the cap: a session deleted since it was subscribed to (DELETE /v1/sessions/:id, retention)
   * will never change again, so its watches free their slots. Only then, so a subscribe below the
   * cap costs no read per watch.
   */
  async function releaseDeletedSessions(caller: McpCaller): Promise<void> {
    for (const [uri, stop] of [...watches]) {
      const target = parseResourceUri(uri);
      if (target.kind === 'roles') continue;
      try {
        await service.getSession(caller.actor, target.sessionId);
      } catch (error) {
        if (!(error instanceof AppError) || error.code !== 'SESSION_NOT_FOUND') throw error;
        stop();
        watches.delete(uri);
      }
    }
  }

  // Every read goes through readTarget, also for URIs no registration matches: the SDK's own
  // dispatcher answers those with -32602 and no MAOS code, where the docs promise -32002 NOT_FOUND.
  server.server.setRequestHandler(ReadResourceRequestSchema, (request, extra) =>
    guard(() => readTarget(request.params.uri, extra)),
  );

  server.server.setRequestHandler(SubscribeRequestSchema, (request, extra) =>
    guard(async () => {
      const { uri } = request.params;
      const target = await resolveTarget(uri, deps.resolveCaller(extra));
      // Roles do not change while the server runs: nothing to watch, but the subscribe is valid.
      if (target.kind === 'roles') return {};
      // Cancelled, or its connection closed, while the session was read: a watch started now would
      // never be stopped (the connection's watches were stopped when it closed).
      if (extra.signal.aborted) return {};
      // A subscribe again restarts the watch, in the same slot: a watch can end for good while the
      // subscription stands (stdio remote mode, a server unavailable past the retry bound), and a
      // client that subscribes again expects notifications again.
      const running = watches.get(uri);
      if (running !== undefined) {
        running();
        await startWatch(uri, target.detail.id, deps.resolveCaller(extra).actor);
        return {};
      }
      if (watches.size >= MAX_SUBSCRIPTIONS) await releaseDeletedSessions(deps.resolveCaller(extra));
      if (extra.signal.aborted) return {};
      if (watches.size >= MAX_SUBSCRIPTIONS) {
        throw new AppError(
          'RESOURCE_LIMIT_EXCEEDED',
          `At most ${MAX_SUBSCRIPTIONS} resource subscriptions per MCP connection; unsubscribe from one first`,
          { details: { limit: MAX_SUBSCRIPTIONS } },
        );
      }
      await startWatch(uri, target.detail.id, deps.resolveCaller(extra).actor, extra.signal);
      return {};
    }),
  );

  server.server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
    watches.get(request.params.uri)?.();
    watches.delete(request.params.uri);
    return {};
  });

  return () => {
    for (const stop of watches.values()) stop();
    watches.clear();
  };
}
