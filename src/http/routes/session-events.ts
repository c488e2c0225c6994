// GET /v1/sessions/:id/events: the session's event log as JSON pages (oldest first, or newest
// first with ?order=desc), or as an SSE stream that replays from Last-Event-ID (or ?after=) out of
// the events table and follows until the session ends (or is deleted).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { FINAL_EVENT_TYPE } from '../../domain/events.ts';
import type { SessionEvent, SessionStatus } from '../../domain/types.ts';
import type { Actor, SessionService } from '../../engine/session-service.ts';
import { AppError } from '../../errors/app-error.ts';
import { eventPageSchema, toEventDto } from '../dto.ts';
import { createLimitSchema, seqSchema, sessionIdParamsSchema } from '../params.ts';
import { watchRequestCredential } from '../plugins/authenticate.ts';
import { invalidRequestPart } from '../plugins/error-handler.ts';
import { REQUEST_ID_HEADER } from '../plugins/request-id.ts';
import { problemResponses } from '../problem.ts';
import { openSseStream, type SseRegistry, type SseStream } from '../sse.ts';
import { STALLED_CLIENT_INTERVALS } from '../stalled-client.ts';

export interface SessionEventRoutesOptions {
  service: SessionService;
  maxPageSize: number;
  keepAliveSeconds: number;
  streams: SseRegistry;
  /** Open streams one tenant may hold; more get 429 RESOURCE_LIMIT_EXCEEDED. */
  maxStreamsPerTenant: number;
  /** Open streams one principal may hold, so one caller cannot take all of its tenant's. */
  maxStreamsPerPrincipal: number;
  /** Called with the number of events written to a stream (metrics). */
  onEventsSent?: (count: number) => void;
  /** Called when a stream is refused by one of the caps above (metrics). */
  onStreamRefused?: () => void;
  /** Called when a stream is dropped because its client stopped taking what is sent (metrics). */
  onStreamStalled?: () => void;
}

/**
 * Retry-After of a stream refused by a cap. Streams close when their session ends or their client
 * leaves, on no schedule a server can announce; 10 s is a polite poll.
 */
export const STREAM_CAP_RETRY_AFTER_SECONDS = 10;

/** Counter keys of a caller's streams: its tenant, and itself within the tenant. */
function streamOwners(actor: Actor): [tenant: string, principal: string] {
  return [`tenant:${actor.tenantId}`, `principal:${JSON.stringify([actor.tenantId, actor.principalId])}`];
}

/** The stream as OpenAPI describes it: text frames, each `data` line an event (`SessionEvent`). */
const sseStreamSchema = z
  .string()
  .describe(
    'Server-Sent Events: `id: <seq>`, `event: <type>`, `data: <SessionEvent as JSON>` per event; `:` keep-alive comments; ends after `session.finished`.',
  );

/** Events read per query while streaming: large enough to replay fast, small enough to bound memory. */
const STREAM_BATCH_SIZE = 500;

const TERMINAL: ReadonlySet<SessionStatus> = new Set(['completed', 'failed', 'cancelled']);

/** Registers the events route on `app`. */
export function registerSessionEventRoutes(app: FastifyInstance, options: SessionEventRoutesOptions): void {
  const { service, maxPageSize } = options;
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/sessions/:id/events',
    {
      config: { permission: 'sessions:read' },
      schema: {
        operationId: 'listSessionEvents',
        summary: 'Read or stream session events',
        description:
          'With `Accept: text/event-stream`: an SSE stream (`id` = seq, `event` = type, `data` = the event as JSON), keep-alive comments, resumable with `Last-Event-ID` (or `?after=`), ending after `session.finished`. Otherwise a JSON page of events with seq > `after`, oldest first; with `order=desc`, the newest events (or those with seq < `before`), newest first, and `nextBefore` to page further back.',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        querystring: z.strictObject({
          after: seqSchema
            .optional()
            .describe('Return events with seq greater than this (default 0). Not with `order=desc`.'),
          before: seqSchema
            .optional()
            .describe(
              "With `order=desc`: return events with seq less than this (default: from the newest event). Pass the previous page's `nextBefore`.",
            ),
          order: z
            .enum(['asc', 'desc'])
            .optional()
            .describe(
              '`asc` (default): oldest first from `after`. `desc`: newest first, back from `before`; JSON pages only.',
            ),
          limit: createLimitSchema(maxPageSize, maxPageSize),
        }),
        headers: z.looseObject({
          'last-event-id': z
            .string()
            .regex(/^\d{1,15}$/, 'must be an event seq (a non-negative integer)')
            .optional()
            .describe('SSE resume point; takes precedence over `after`.'),
        }),
        response: {
          200: {
            description: 'A JSON page of events, or (with `Accept: text/event-stream`) the event stream.',
            content: {
              'application/json': { schema: eventPageSchema },
              'text/event-stream': { schema: sseStreamSchema },
            },
          },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const lastEventId = request.headers['last-event-id'];
      // HEAD never opens a stream: it would hold the connection without ever sending a body.
      const streaming = request.method === 'GET' && acceptsEventStream(request.headers.accept);
      if (request.query.order === 'desc' || request.query.before !== undefined) {
        assertBackwardRead(request.query, lastEventId, streaming);
        const { before = null, limit } = request.query;
        const events = await service.listEventsBefore(request.actor, id, before, limit);
        return toBackwardPage(events, before, limit);
      }
      const after = lastEventId !== undefined ? Number(lastEventId) : (request.query.after ?? 0);
      if (!streaming) {
        const events = await service.listEvents(request.actor, id, after, request.query.limit);
        const last = events.at(-1);
        return { items: events.map(toEventDto), nextAfter: last ? last.seq : after };
      }
      // Existence, access and the stream cap are checked before the stream opens, so errors are
      // still problem+json.
      await service.getSession(request.actor, id);
      const owners = streamOwners(request.actor);
      const [tenantOwner, principalOwner] = owners;
      // The tenant's cap first: a tenant that is full is told so, whoever asks.
      const refusal =
        options.streams.countOf(tenantOwner) >= options.maxStreamsPerTenant
          ? { setting: 'http.maxSseStreamsPerTenant', limit: options.maxStreamsPerTenant, scope: 'tenant' }
          : options.streams.countOf(principalOwner) >= options.maxStreamsPerPrincipal
            ? {
                setting: 'http.maxSseStreamsPerPrincipal',
                limit: options.maxStreamsPerPrincipal,
                scope: 'caller',
              }
            : null;
      if (refusal !== null) {
        options.onStreamRefused?.();
        throw new AppError(
          'RESOURCE_LIMIT_EXCEEDED',
          `At most ${refusal.limit} event streams may be open per ${refusal.scope} (${refusal.setting}); close one or poll the JSON pages.`,
          {
            details: { setting: refusal.setting, limit: refusal.limit },
            retryAfterSeconds: STREAM_CAP_RETRY_AFTER_SECONDS,
          },
        );
      }
      const stream = openSseStream(reply, {
        keepAliveMs: options.keepAliveSeconds * 1000,
        headers: { [REQUEST_ID_HEADER]: String(request.id) },
        onClientStalled: (unsentBytes) => {
          options.onStreamStalled?.();
          request.log.info(
            { sessionId: id, unsentBytes },
            `event stream dropped: its client took nothing for ${STALLED_CLIENT_INTERVALS} keep-alive intervals (it may resume with Last-Event-ID)`,
          );
        },
      });
      options.streams.add(stream, owners);
      // A credential revoked or expired while streamed ends the stream (not the session's events
      // alone): the client's reconnect is then refused with 401.
      const stopWatching = watchRequestCredential(request, reply, () => {
        request.log.info({ sessionId: id }, 'event stream ended: its credential was revoked or expired');
        stream.close();
      });
      try {
        await pumpEvents(service, request.actor, id, after, stream, options.onEventsSent);
      } catch (error) {
        // Deleted while streamed (DELETE /v1/sessions/:id): the stream just ends.
        if (error instanceof AppError && error.code === 'SESSION_NOT_FOUND') {
          request.log.info({ sessionId: id }, 'event stream ended: the session was deleted');
        } else request.log.warn({ err: error, sessionId: id }, 'event stream ended with an error');
      } finally {
        stopWatching?.();
        options.streams.delete(stream);
        stream.close();
      }
      return reply;
    },
  );
}

/** Rejects what a newest-first read cannot honour, naming the parameter at fault. */
function assertBackwardRead(
  query: { after?: number; order?: 'asc' | 'desc' },
  lastEventId: string | undefined,
  streaming: boolean,
): void {
  const fail = (location: string, path: string, message: string): never => {
    throw invalidRequestPart(location, path, message);
  };
  if (query.order !== 'desc') {
    fail('querystring', '/before', 'only with order=desc (events are then returned newest first)');
  }
  if (query.after !== undefined) {
    fail('querystring', '/after', 'not with order=desc; page back with before=<nextBefore>');
  }
  if (lastEventId !== undefined) {
    fail('headers', '/last-event-id', 'resumes a forward read; not with order=desc');
  }
  if (streaming) {
    fail('querystring', '/order', 'an event stream only goes forward; order=desc returns JSON pages');
  }
}

/**
 * A newest-first page. `nextBefore` continues further back (null once the start of the log is
 * reached: fewer events than asked, or seq 1); `nextAfter` follows forward from the newest event
 * of the page, e.g. to show the tail of a log and then poll or stream what comes next.
 */
function toBackwardPage(events: SessionEvent[], before: number | null, limit: number) {
  const oldest = events.at(-1);
  const newest = events[0];
  const reachedStart = oldest === undefined || events.length < limit || oldest.seq <= 1;
  return {
    items: events.map(toEventDto),
    nextAfter: newest ? newest.seq : Math.max(0, (before ?? 1) - 1),
    nextBefore: reachedStart ? null : oldest.seq,
  };
}

/**
 * Whether `Accept` asks for the stream: `text/event-stream` listed with a q-value above 0 ("not
 * acceptable", RFC 9110) and not below that of `application/json` (a tie streams).
 */
function acceptsEventStream(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  let stream = 0;
  let json = 0;
  for (const range of accept.toLowerCase().split(',')) {
    const [type = '', ...params] = range.split(';').map((part) => part.trim());
    const qParam = params.find((param) => /^q\s*=/.test(param));
    const q = qParam === undefined ? 1 : Number(qParam.slice(qParam.indexOf('=') + 1).trim());
    if (!Number.isFinite(q)) continue;
    if (type === 'text/event-stream') stream = Math.max(stream, q);
    else if (type === 'application/json') json = Math.max(json, q);
  }
  return stream > 0 && stream >= json;
}

/** Sends events after `afterSeq` until the final event, a disconnect or shutdown. */
async function pumpEvents(
  service: SessionService,
  actor: Actor,
  sessionId: string,
  afterSeq: number,
  stream: SseStream,
  onEventsSent: (count: number) => void = () => {},
): Promise<void> {
  let after = afterSeq;
  let woken = true;
  let wake: (() => void) | null = null;
  const onWake = (): void => {
    woken = true;
    wake?.();
  };
  // Subscribe before the first read so that no wake-up between read and wait is lost.
  const unsubscribe = service.watchEvents(sessionId, onWake);
  stream.signal.addEventListener('abort', onWake, { once: true });
  // The session's status is looked up once, the first time the stream is caught up: a session
  // that already ended has nothing more to send (e.g. a stream resumed after its end). Later
  // re-wakes (on PostgreSQL every sweep, in case a notification was lost) read the event list
  // alone: every move to a terminal status appends session.finished in the same transaction, which
  // ends the stream when read, and listEvents reads the session row with the tenant check, so a
  // session deleted meanwhile ends the stream with SESSION_NOT_FOUND. A stream resumed past the end
  // of the log (a Last-Event-ID of a database since restored from a backup, say) never reads that
  // session.finished, whose seq is below its resume point: it looks the status up at every re-wake.
  let statusChecked = false;
  let pastLogEnd = false;
  let terminalSeen = false;
  try {
    while (!stream.closed) {
      woken = false;
      const events = await service.listEvents(actor, sessionId, after, STREAM_BATCH_SIZE);
      for (const event of events) {
        await stream.send({
          id: String(event.seq),
          event: event.type,
          data: JSON.stringify(toEventDto(event)),
        });
        after = event.seq;
        // The log reaches past the resume point: its session.finished is read when it comes.
        pastLogEnd = false;
        onEventsSent(1);
        if (event.type === FINAL_EVENT_TYPE || stream.closed) return;
      }
      if (events.length === STREAM_BATCH_SIZE) {
        // More to replay: the loop turns first. A read is synchronous on SQLite and a fast client
        // never makes a send wait, so a long log was otherwise replayed in one turn of the loop.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (events.length === 0) {
        // Caught up. A session that already ended has nothing more to send (e.g. resumed after its end).
        if (terminalSeen) return;
        if (!statusChecked || pastLogEnd) {
          const session = await service.getSession(actor, sessionId);
          if (TERMINAL.has(session.status)) {
            terminalSeen = true;
            continue;
          }
          // Nothing read since the client's resume point: is it past the newest event?
          if (!statusChecked && after > 0 && after === afterSeq) {
            const [newest] = await service.listEventsBefore(actor, sessionId, null, 1);
            pastLogEnd = (newest?.seq ?? 0) < after;
          }
          statusChecked = true;
        }
      }
      if (!woken && !stream.closed) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = null;
      }
    }
  } finally {
    unsubscribe();
    stream.signal.removeEventListener('abort', onWake);
  }
}
