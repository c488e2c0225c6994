// Durable log of the messages MCP Streamable HTTP sends on SSE streams (table mcp_stream_events):
// the SDK's EventStore for each MCP session, reads for replay on any replica, and the retention
// target the store's retention job prunes the table with (age and per-stream count).
// Each row also records what its stream needs to be received (the permissions of the tools its POST
// called), so a resume on any replica is checked against them, not only against the /mcp route's.
// A replica that follows a stream of an MCP session held by another one also notes there, on a
// stream of its own (SESSION_ACTIVITY_STREAM_ID), when the session was last in use, so the holder
// does not close it as idle meanwhile.

import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type {
  EventId,
  EventStore,
  StreamId,
} from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { type Generated, type Kysely, sql } from 'kysely';
import type { Permission } from '../security/rbac.ts';
import { leaseNow } from '../store/lease-clock.ts';
import type { RetentionTarget } from '../store/retention-targets.ts';

interface McpStreamEventsTable {
  id: Generated<number>;
  tenant_id: string;
  principal_id: string;
  mcp_session_id: string;
  stream_id: string;
  /**
   * The JSON-RPC message as JSON; `{}` for the SDK's priming event, or one of the markers below
   * (no `jsonrpc`, never sent): `{"batch":true}`, `{"end":"cancelled"}`, `{"end":"answered"}`.
   */
  message: string;
  created_at: number;
  /**
   * Permissions, space-separated, a client needs besides the /mcp route's to receive the stream:
   * the same on every row of a stream (migration 0024; '' on rows stored before it).
   */
  required_permissions: Generated<string>;
  /**
   * The message's position in its stream: 1, 2, 3, … with no holes as stored, so a reader sees
   * messages pruned before it read them as a gap (migration 0028; null on rows stored before it).
   */
  stream_seq: Generated<number | null>;
}

/** The part of the schema this module uses (migration 0006_mcp_stream_events). */
export interface McpStreamEventsDb {
  mcp_stream_events: McpStreamEventsTable;
}

/** Whose stream: an event is only ever read back by the same tenant, principal and MCP session. */
export interface StreamOwner {
  tenantId: string;
  principalId: string;
  mcpSessionId: string;
}

/** The stream an event id belongs to, and what receiving that stream needs. */
export interface FoundStream {
  streamId: StreamId;
  /** Permissions the caller needs besides the /mcp route's (the tools its POST called). */
  requires: Permission[];
}

export interface StoredStreamEvent {
  id: EventId;
  streamId: StreamId;
  message: JSONRPCMessage;
  /**
   * Its position in its stream (`stream_seq`): the next message stored on the stream has the next
   * one. Absent on rows stored before migration 0028 (or by an older replica).
   */
  seq?: number;
}

export interface StreamEventLogOptions {
  /** Told when a message could not be stored (it is still sent, but cannot be resumed from). */
  onStoreError?: (error: unknown) => void;
  /**
   * Runs a write of the log: the insert of a message, or a session's activity (default: directly
   * on `db`, each answered once on disk). The server passes the engine's write queue: writes then
   * commit grouped with other writes and are acknowledged before their flush (store/write-queue.ts,
   * deferred durability).
   */
  runInsert?: (insert: (db: Kysely<McpStreamEventsDb>) => Promise<number>) => Promise<number>;
  /**
   * Awaited before an event id is handed to the SDK (which sends the message with it): with
   * `runInsert` deferring the fsync, no client sees an id a power cut could take back.
   */
  whenDurable?: () => Promise<void> | undefined;
  /**
   * Told of a stored message that cannot be read (not a JSON object: a hand edit of the row gone
   * wrong), once per row as long as few are: it is read as UNREADABLE_MESSAGE, never sent, and the
   * stream goes on with the messages after it.
   */
  onUnreadableMessage?: (unreadable: { eventId: EventId; streamId: StreamId; mcpSessionId: string }) => void;
}

/** The SDK EventStore of one MCP session, with the lookup a resume of one of its streams starts with. */
export interface SessionEventStore extends EventStore {
  /**
   * The stream of `eventId`, as `StreamEventLog.findStream` reads it for this session. The answer
   * also serves the SDK's own lookups of the same id that follow (getStreamIdForEventId, then the
   * replay), so a resume reads it from the database once instead of three times.
   */
  findStream(eventId: EventId): Promise<FoundStream | undefined>;
  /**
   * Makes the SDK's replays from `eventId` only name their stream and send nothing, until the
   * returned function is called: the SDK writes a replay into its stream all at once, before the
   * client can read any of it, so the transport serves what is stored from the log at the client's
   * pace instead. Several resumes of a session may wait for their replays at once.
   */
  replayFromLog(eventId: EventId): () => void;
}

export interface StreamEventLog {
  /** The SDK EventStore of one MCP session. Writes are serialised, so ids follow send order. */
  forSession(owner: StreamOwner): SessionEventStore;
  /**
   * Notes that `owner`'s MCP session is in use now on a replica that does not hold it: a stream of
   * it is followed there. One row per session (two if replicas race to create it). Timed by the
   * database server's clock on PostgreSQL (the one leases use, store/lease-clock.ts), which
   * activityAges reads too: the follower's and the holder's own clocks may disagree.
   */
  recordActivity(owner: StreamOwner): Promise<void>;
  /**
   * How long ago (ms, never below 0) recordActivity last noted each of `owners` that has a note, by
   * MCP session id, by the clock that timed the note; only rows of the session's own tenant and
   * principal count.
   */
  activityAges(owners: readonly StreamOwner[]): Promise<Map<string, number>>;
  /** The stream of `eventId` if it belongs to `owner`; undefined when unknown, pruned or someone else's. */
  findStream(owner: StreamOwner, eventId: EventId): Promise<FoundStream | undefined>;
  /** The event `eventId` of `owner`; undefined when unknown, pruned or someone else's. */
  readEvent(owner: StreamOwner, eventId: EventId): Promise<StoredStreamEvent | undefined>;
  /**
   * Whether `owner`'s stream carries a batch (its BATCH_STREAM_START marker is stored; retention
   * keeps it as long as any other message of the stream).
   */
  isBatchStream(owner: StreamOwner, streamId: StreamId): Promise<boolean>;
  /**
   * Up to `limit` events of `owner`'s stream after `afterId`, oldest first; with `maxBytes`, only as
   * many as fit in that many bytes of stored JSON (always at least one), so a page of large messages
   * is never read at once.
   */
  readAfter(
    owner: StreamOwner,
    streamId: StreamId,
    afterId: EventId,
    limit: number,
    maxBytes?: number,
  ): Promise<StoredStreamEvent[]>;
}

/** Id of the SDK's standalone (GET) stream: it has no final response, it only idles out. */
export const STANDALONE_STREAM_ID = '_GET_stream';

/**
 * The stream a session's activity on other replicas is noted on (recordActivity): its rows carry
 * SESSION_ACTIVITY, never a message, and no event id of it can be resumed from. The SDK names its
 * streams by UUID or STANDALONE_STREAM_ID, never so.
 */
export const SESSION_ACTIVITY_STREAM_ID = '_session_activity';

/** The message of a session-activity row; its time is `created_at`, updated in place. */
const SESSION_ACTIVITY = JSON.stringify({ activity: true });

/** Sessions whose activity one query reads at most (bound parameters stay far below any limit). */
const ACTIVITY_QUERY_CHUNK = 500;

/**
 * Streams whose requirement and position a session's store remembers; beyond this the oldest are
 * forgotten (a forgotten stream's numbering starts again at 1, which readers take as no gap).
 */
const MAX_REMEMBERED_STREAMS = 1000;

/** The permissions the streams opened in the current async context need (see openStreamsNeeding). */
const openingRequirement = new AsyncLocalStorage<readonly Permission[]>();

/**
 * Runs `open` (the SDK's handling of one POST) so that the request streams it opens are stored as
 * needing `permissions`: every message the SDK stores for that POST (its priming event, then what
 * the tools send) is stored from within it. A stream's first stored message fixes its requirement.
 */
export function openStreamsNeeding<T>(permissions: readonly Permission[], open: () => T): T {
  return openingRequirement.run(permissions, open);
}

function encodePermissions(permissions: readonly Permission[]): string {
  return [...new Set(permissions)].sort().join(' ');
}

function decodePermissions(stored: string): Permission[] {
  // Kept as stored, also one this build does not know (a newer replica's): it then grants nothing.
  return stored.split(' ').filter((permission) => permission !== '') as Permission[];
}

/** Event ids are the row ids in decimal; anything else cannot be one of ours. */
const EVENT_ID_PATTERN = /^[1-9][0-9]{0,15}$/;

/** Replay reads in pages so a long stream never loads at once. */
const REPLAY_PAGE = 200;

function parseEventId(eventId: EventId): number | undefined {
  return EVENT_ID_PATTERN.test(eventId) ? Number(eventId) : undefined;
}

/** A row's `stream_seq` as the `seq` of a StoredStreamEvent (none when stored without one). */
function seqOf(stored: number | string | null): { seq?: number } {
  return stored === null ? {} : { seq: Number(stored) };
}

/**
 * Stored on a request stream whose requests were cancelled: MCP sends no response to a cancelled
 * request, so this marks the end a resume would otherwise wait for. It is never sent to a client.
 */
export const CANCELLED_STREAM_END = { end: 'cancelled' } as unknown as JSONRPCMessage;

/**
 * Stored after the last response of a batch stream (below): the end a resume waits for there, as
 * the first response ends a stream of one request. It is never sent to a client.
 */
export const ANSWERED_STREAM_END = { end: 'answered' } as unknown as JSONRPCMessage;

/**
 * Stored on the streams of an MCP session when the process holding it closes it (DELETE /mcp, idle,
 * shutdown, a revoked key) while a request of the stream still waits for its response, and on its
 * standalone stream: nothing more will be sent on them, so a resume (on any replica, or after a
 * restart) ends there instead of waiting for `mcp.sessionIdleSeconds`. It is never sent to a client.
 */
export const CLOSED_STREAM_END = { end: 'closed' } as unknown as JSONRPCMessage;

/**
 * Stored on a stream that carries several requests (a JSON-RPC batch, protocol 2025-03-26) before
 * any of them is answered: a resume of it ends at its end marker, not at its first response. It is
 * never sent to a client.
 */
export const BATCH_STREAM_START = { batch: true } as unknown as JSONRPCMessage;

/** BATCH_STREAM_START as stored. */
const STORED_BATCH_START = JSON.stringify(BATCH_STREAM_START);

/**
 * Whether `message` was sent to the client: a JSON-RPC message, not one of the markers above nor
 * the priming event (the SDK stores `{}` for it: it carries an id but is no message).
 */
export function isSentMessage(message: JSONRPCMessage): boolean {
  return 'jsonrpc' in message;
}

/** Whether `message` is the CANCELLED_STREAM_END, ANSWERED_STREAM_END or CLOSED_STREAM_END marker. */
export function isStreamEnd(message: JSONRPCMessage): boolean {
  const end = (message as { end?: unknown }).end;
  return !isSentMessage(message) && (end === 'cancelled' || end === 'answered' || end === 'closed');
}

/**
 * What a stored message that cannot be read (not a JSON object) is read as: no message (it is not
 * sent, like the priming event), no end and no batch start, so a replay or a follow goes on with the
 * messages after it, and the stream's positions (`seq`) run on without a gap.
 */
export const UNREADABLE_MESSAGE = { unreadable: true } as unknown as JSONRPCMessage;

/** Rows already reported by onUnreadableMessage, per log; bounded (then forgotten at once). */
const MAX_REPORTED_UNREADABLE = 10_000;

function isBatchStreamStart(message: JSONRPCMessage): boolean {
  return !isSentMessage(message) && (message as { batch?: unknown }).batch === true;
}

/** Creates the log over `db` (which must have migration 0006 applied). */
export function createStreamEventLog(
  db: Kysely<McpStreamEventsDb>,
  options: StreamEventLogOptions = {},
): StreamEventLog {
  const reportedUnreadable = new Set<number>();

  /** A stored message as read: UNREADABLE_MESSAGE (reported) when it is not a JSON object. */
  function decodeMessage(id: number, streamId: StreamId, owner: StreamOwner, stored: string): JSONRPCMessage {
    try {
      const message = JSON.parse(stored) as unknown;
      if (typeof message === 'object' && message !== null && !Array.isArray(message)) {
        return message as JSONRPCMessage;
      }
    } catch {
      // Reported below.
    }
    if (!reportedUnreadable.has(id)) {
      if (reportedUnreadable.size >= MAX_REPORTED_UNREADABLE) reportedUnreadable.clear();
      reportedUnreadable.add(id);
      options.onUnreadableMessage?.({ eventId: String(id), streamId, mcpSessionId: owner.mcpSessionId });
    }
    return UNREADABLE_MESSAGE;
  }

  function ownedBy(owner: StreamOwner) {
    return db
      .selectFrom('mcp_stream_events')
      .where('mcp_session_id', '=', owner.mcpSessionId)
      .where('tenant_id', '=', owner.tenantId)
      .where('principal_id', '=', owner.principalId);
  }

  async function findStream(owner: StreamOwner, eventId: EventId): Promise<FoundStream | undefined> {
    const id = parseEventId(eventId);
    if (id === undefined) return undefined;
    const row = await ownedBy(owner)
      .select(['stream_id', 'required_permissions'])
      .where('id', '=', id)
      .where('stream_id', '<>', SESSION_ACTIVITY_STREAM_ID)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return { streamId: row.stream_id, requires: decodePermissions(row.required_permissions) };
  }

  async function readEvent(owner: StreamOwner, eventId: EventId): Promise<StoredStreamEvent | undefined> {
    const id = parseEventId(eventId);
    if (id === undefined) return undefined;
    const row = await ownedBy(owner)
      .select(['stream_id', 'message', 'stream_seq'])
      .where('id', '=', id)
      .where('stream_id', '<>', SESSION_ACTIVITY_STREAM_ID)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return {
      id: eventId,
      streamId: row.stream_id,
      message: decodeMessage(id, row.stream_id, owner, row.message),
      ...seqOf(row.stream_seq),
    };
  }

  async function readAfter(
    owner: StreamOwner,
    streamId: StreamId,
    afterId: EventId,
    limit: number,
    maxBytes?: number,
  ): Promise<StoredStreamEvent[]> {
    const after = parseEventId(afterId) ?? 0;
    const following = () => ownedBy(owner).where('stream_id', '=', streamId).where('id', '>', after);
    let last: number | undefined;
    if (maxBytes !== undefined) {
      // The sizes first, then only the messages that fit: rows of a stream commit in id order (one
      // writer per session), so none can appear below `last` in between.
      const sizes = await following()
        .select(['id', sql<number>`octet_length(message)`.as('bytes')])
        .orderBy('id')
        .limit(limit)
        .execute();
      let total = 0;
      for (const row of sizes) {
        total += Number(row.bytes);
        if (last !== undefined && total > maxBytes) break;
        last = Number(row.id);
      }
      if (last === undefined) return [];
    }
    let query = following().select(['id', 'message', 'stream_seq']);
    if (last !== undefined) query = query.where('id', '<=', last);
    const rows = await query.orderBy('id').limit(limit).execute();
    return rows.map((row) => ({
      id: String(row.id),
      streamId,
      message: decodeMessage(Number(row.id), streamId, owner, row.message),
      ...seqOf(row.stream_seq),
    }));
  }

  async function isBatchStream(owner: StreamOwner, streamId: StreamId): Promise<boolean> {
    // The marker comes first, or right after the priming event.
    const first = await readAfter(owner, streamId, '0', 2);
    return first.some((event) => isBatchStreamStart(event.message));
  }

  function forSession(owner: StreamOwner): SessionEventStore {
    // One writer per MCP session (the process holding its transport). Chaining its inserts means
    // each commits before the next starts, so a reader's `id > cursor` never skips a late commit.
    let tail: Promise<unknown> = Promise.resolve();
    /** The last stream found by `findStream`, until the replay of a resume from it has used it. */
    let found: { eventId: EventId; streamId: StreamId } | undefined;
    /** The SDK's lookup: the answer `findStream` just read for the same id, else the database's. */
    const streamOf = async (eventId: EventId): Promise<StreamId | undefined> =>
      found?.eventId === eventId ? found.streamId : (await findStream(owner, eventId))?.streamId;
    /** Resumes whose replay the transport serves from the log (replayFromLog), by id: how many. */
    const servedFromLog = new Map<EventId, number>();
    /** Each stream's requirement, fixed by its first stored message (later ones may come from elsewhere). */
    const requirements = new Map<StreamId, string>();
    /**
     * Each stream's position: the `stream_seq` of its last stored message. Advanced only once a
     * message is committed (inserts run one after another), so the stored numbers have no holes.
     * The standalone stream's is kept apart: it lives as long as the session and must not be forgotten.
     */
    const positions = new Map<StreamId, number>();
    let standalonePosition = 0;
    function positionOf(streamId: StreamId): number {
      return streamId === STANDALONE_STREAM_ID ? standalonePosition : (positions.get(streamId) ?? 0);
    }
    function advance(streamId: StreamId, seq: number): void {
      if (streamId === STANDALONE_STREAM_ID) {
        standalonePosition = seq;
        return;
      }
      // The most recently written last: the one forgotten is the one written longest ago.
      positions.delete(streamId);
      if (positions.size >= MAX_REMEMBERED_STREAMS)
        positions.delete(positions.keys().next().value as StreamId);
      positions.set(streamId, seq);
    }
    function requirementOf(streamId: StreamId): string {
      let required = requirements.get(streamId);
      if (required === undefined) {
        // The standalone stream carries what the session's subscriptions see (the route's permission
        // covers it), whichever request's context its first notification is sent from.
        required =
          streamId === STANDALONE_STREAM_ID ? '' : encodePermissions(openingRequirement.getStore() ?? []);
        if (requirements.size >= MAX_REMEMBERED_STREAMS) {
          requirements.delete(requirements.keys().next().value as StreamId);
        }
        requirements.set(streamId, required);
      }
      return required;
    }
    return {
      async findStream(eventId) {
        const stream = await findStream(owner, eventId);
        found = stream === undefined ? undefined : { eventId, streamId: stream.streamId };
        return stream;
      },
      replayFromLog(eventId) {
        servedFromLog.set(eventId, (servedFromLog.get(eventId) ?? 0) + 1);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          const left = (servedFromLog.get(eventId) ?? 1) - 1;
          if (left > 0) servedFromLog.set(eventId, left);
          else servedFromLog.delete(eventId);
        };
      },
      storeEvent(streamId, message) {
        const requiredPermissions = requirementOf(streamId);
        const insert = (seq: number) => async (into: Kysely<McpStreamEventsDb>) => {
          const row = await into
            .insertInto('mcp_stream_events')
            .values({
              tenant_id: owner.tenantId,
              principal_id: owner.principalId,
              mcp_session_id: owner.mcpSessionId,
              stream_id: streamId,
              message: JSON.stringify(message),
              created_at: Date.now(),
              required_permissions: requiredPermissions,
              stream_seq: seq,
            })
            .returning('id')
            .executeTakeFirstOrThrow();
          return Number(row.id);
        };
        // Chained on the commit only: the next message's insert need not wait for this flush.
        const committed = tail.then(async () => {
          // Numbered here, once the previous insert has committed or failed. A message that could
          // not be stored takes no number: it was never in the log (and is reported below), and a
          // hole for it would end every resume of the stream there.
          const seq = positionOf(streamId) + 1;
          const id = await (options.runInsert ? options.runInsert(insert(seq)) : insert(seq)(db));
          advance(streamId, seq);
          return id;
        });
        tail = committed.catch(() => {});
        return committed
          .then(async (id) => {
            await options.whenDurable?.();
            return String(id);
          })
          .catch((error: unknown) => {
            // A failed write must not lose the live message: the SDK sends it with this id, which no
            // replica can resolve, so only resuming from it fails (with 400/404), not the request.
            options.onStoreError?.(error);
            return `unstored-${randomUUID()}`;
          });
      },
      getStreamIdForEventId: streamOf,
      async replayEventsAfter(lastEventId, { send }) {
        const streamId = await streamOf(lastEventId);
        // Used: a later resume from the same id reads its stream again (the row may be pruned by then).
        if (found?.eventId === lastEventId) found = undefined;
        // The SDK asks getStreamIdForEventId first and answers 400 itself; this guards direct use.
        if (streamId === undefined) return '';
        if (servedFromLog.has(lastEventId)) return streamId;
        let cursor = lastEventId;
        for (;;) {
          const page = await readAfter(owner, streamId, cursor, REPLAY_PAGE);
          for (const event of page) {
            if (isSentMessage(event.message)) await send(event.id, event.message);
          }
          if (page.length < REPLAY_PAGE) return streamId;
          cursor = page[page.length - 1]!.id;
        }
      },
    };
  }

  async function recordActivity(owner: StreamOwner): Promise<void> {
    const write = async (into: Kysely<McpStreamEventsDb>): Promise<number> => {
      const at = leaseNow(into, Date.now());
      const updated = await into
        .updateTable('mcp_stream_events')
        .set({ created_at: at })
        .where('mcp_session_id', '=', owner.mcpSessionId)
        .where('tenant_id', '=', owner.tenantId)
        .where('principal_id', '=', owner.principalId)
        .where('stream_id', '=', SESSION_ACTIVITY_STREAM_ID)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) > 0) return 0;
      await into
        .insertInto('mcp_stream_events')
        .values({
          tenant_id: owner.tenantId,
          principal_id: owner.principalId,
          mcp_session_id: owner.mcpSessionId,
          stream_id: SESSION_ACTIVITY_STREAM_ID,
          message: SESSION_ACTIVITY,
          created_at: at,
        })
        .execute();
      return 1;
    };
    await (options.runInsert ? options.runInsert(write) : write(db));
  }

  async function activityAges(owners: readonly StreamOwner[]): Promise<Map<string, number>> {
    const ages = new Map<string, number>();
    for (let start = 0; start < owners.length; start += ACTIVITY_QUERY_CHUNK) {
      const chunk = owners.slice(start, start + ACTIVITY_QUERY_CHUNK);
      const rows = await db
        .selectFrom('mcp_stream_events')
        .select(['mcp_session_id', 'tenant_id', 'principal_id', 'created_at'])
        // Read by the clock that timed the notes, in the same statement.
        .select(sql<number>`${leaseNow(db, Date.now())}`.as('now_ms'))
        .where(
          'mcp_session_id',
          'in',
          chunk.map((owner) => owner.mcpSessionId),
        )
        .where('stream_id', '=', SESSION_ACTIVITY_STREAM_ID)
        .execute();
      const byId = new Map(chunk.map((owner) => [owner.mcpSessionId, owner]));
      for (const row of rows) {
        const owner = byId.get(row.mcp_session_id);
        if (owner?.tenantId !== row.tenant_id || owner.principalId !== row.principal_id) continue;
        // A clock stepped back since the note (NTP) makes no note younger than now.
        const age = Math.max(0, Number(row.now_ms) - Number(row.created_at));
        if (age < (ages.get(row.mcp_session_id) ?? Number.POSITIVE_INFINITY))
          ages.set(row.mcp_session_id, age);
      }
    }
    return ages;
  }

  return { forSession, findStream, readEvent, isBatchStream, readAfter, recordActivity, activityAges };
}

export interface StreamEventsRetention {
  /** Rows older than this are deleted (`mcp.replayRetentionSeconds`). */
  retentionMs: number;
  /**
   * Session-activity rows (recordActivity) older than this are deleted instead
   * (`mcp.sessionIdleSeconds`: until then they keep the session open); default `retentionMs`.
   */
  activityRetentionMs?: number;
  /** Newest rows kept per stream; older ones are deleted (`mcp.replayBufferSize`). */
  perStreamLimit: number;
}

/**
 * The `mcp_stream_events` target of the retention job (store/retention.ts), which runs it
 * single-flight across replicas and in bounded batches: each call deletes at most `limit` rows,
 * aged ones first, then those past the per-stream limit. A batch stream's BATCH_STREAM_START marker
 * (its oldest row) is pruned with the last other row of its stream, not before: without it a
 * resume of the batch on another replica would end at its first response. A session's activity
 * rows go by `activityRetentionMs` alone.
 */
export function createStreamEventsRetentionTarget(settings: StreamEventsRetention): RetentionTarget {
  return {
    table: 'mcp_stream_events',
    async deleteBatch(anyDb, now, limit) {
      const db = anyDb as Kysely<McpStreamEventsDb>;
      const activityRetentionMs = settings.activityRetentionMs ?? settings.retentionMs;
      const aged = await db
        .deleteFrom('mcp_stream_events')
        .where(
          'id',
          'in',
          db
            .selectFrom('mcp_stream_events as aged')
            .select('aged.id')
            .where('aged.created_at', '<', now - Math.min(settings.retentionMs, activityRetentionMs))
            // Messages and markers by the replay TTL, a session's activity by its own.
            .where((eb) =>
              eb.or([
                eb.and([
                  eb('aged.stream_id', '<>', SESSION_ACTIVITY_STREAM_ID),
                  eb('aged.created_at', '<', now - settings.retentionMs),
                ]),
                eb.and([
                  eb('aged.stream_id', '=', SESSION_ACTIVITY_STREAM_ID),
                  eb('aged.created_at', '<', now - activityRetentionMs),
                ]),
              ]),
            )
            // A batch's marker once no other row of its stream is left (a later batch or pass).
            .where((eb) =>
              eb.or([
                eb('aged.message', '<>', STORED_BATCH_START),
                eb.not(
                  eb.exists(
                    eb
                      .selectFrom('mcp_stream_events as rest')
                      .select('rest.id')
                      .whereRef('rest.mcp_session_id', '=', 'aged.mcp_session_id')
                      .whereRef('rest.stream_id', '=', 'aged.stream_id')
                      .whereRef('rest.id', '<>', 'aged.id'),
                  ),
                ),
              ]),
            )
            .limit(limit),
        )
        .executeTakeFirst();
      const deleted = Number(aged.numDeletedRows);
      if (deleted >= limit) return deleted;
      // Row numbers per stream, newest first: everything past the limit goes (SQLite and PostgreSQL).
      // Batch markers are neither counted nor deleted here: they go by age, with their stream; nor
      // are a session's activity rows (by age alone).
      const ranked = db
        .selectFrom('mcp_stream_events')
        .where('message', '<>', STORED_BATCH_START)
        .where('stream_id', '<>', SESSION_ACTIVITY_STREAM_ID)
        .select([
          'id',
          sql<number>`row_number() over (partition by mcp_session_id, stream_id order by id desc)`.as(
            'position',
          ),
        ])
        .as('ranked');
      const overflow = await db
        .deleteFrom('mcp_stream_events')
        .where(
          'id',
          'in',
          db
            .selectFrom(ranked)
            .select('ranked.id')
            .where('ranked.position', '>', settings.perStreamLimit)
            .limit(limit - deleted),
        )
        .executeTakeFirst();
      return deleted + Number(overflow.numDeletedRows);
    },
  };
}

/**
 * How often the retention job prunes the replay rows: a tenth of their TTL, between 10 s and 60 s,
 * so a row outlives `mcp.replayRetentionSeconds` by at most about 10 % (the main retention pass
 * runs hourly, far too rarely for a 10-minute TTL; more often than every 10 s only adds queries).
 */
export function streamEventsPruneIntervalSeconds(retentionSeconds: number): number {
  return Math.min(60, Math.max(10, Math.round(retentionSeconds / 10)));
}
