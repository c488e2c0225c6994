// A stream resumed on a replica that does not hold its MCP session follows the durable log. While it
// sits at the log's end, more messages than `mcp.replayBufferSize` may be stored and pruned by
// count between two of its polls: the resumed stream must then end (its client resumes and is
// told) instead of going on with the newest ones as if nothing had been missed. A quiet stream
// whose last message merely aged out must not end. On SQLite and PostgreSQL, two database handles
// as the replica holding the session (writing) and the one following the log.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Kysely } from 'kysely';
import { createSseParser } from '../../src/cli/sse-reader.ts';
import {
  createStreamEventLog,
  createStreamEventsRetentionTarget,
  type McpStreamEventsDb,
  type StreamEventLog,
  type StreamOwner,
} from '../../src/mcp/stream-event-log.ts';
import { createFollowStream, PrunedMessagesError } from '../../src/mcp/stream-follower.ts';
import type { DatabaseHandle } from '../../src/store/db.ts';
import { STORE_BACKENDS, useStoreHandles } from '../fixtures/store-backends.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/** `mcp.replayBufferSize` of the test: messages kept per stream. */
const PER_STREAM = 4;
const RETENTION_MS = 600_000;

function note(n: number): JSONRPCMessage {
  return { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: n } };
}

/**
 * The log as the following replica reads it, with its reads counted and, once `hold()` was called,
 * held back until `release()`: what happens in between happens between two of its polls.
 */
function heldLog(log: StreamEventLog) {
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  let inFlight = 0;
  let emptyReads = 0;
  const held: StreamEventLog = {
    ...log,
    async readAfter(...args) {
      await gate;
      inFlight += 1;
      try {
        const page = await log.readAfter(...args);
        if (page.length === 0) emptyReads += 1;
        return page;
      } finally {
        inFlight -= 1;
      }
    },
  };
  return {
    log: held,
    emptyReads: () => emptyReads,
    /** Resolves once no read is under way and the next one waits for `release()`. */
    async hold() {
      gate = new Promise((resolve) => {
        open = resolve;
      });
      await waitFor(() => inFlight === 0, 10_000, 'the read under way to end');
    },
    release() {
      gate = undefined;
      open?.();
    },
  };
}

/** Reads SSE data frames from `body`: the progress numbers, one read of the body at a time. */
function progressReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const parser = createSseParser();
  const decoder = new TextDecoder();
  return {
    /** The progress numbers of the next data frames, or the error the stream failed with. */
    async next(): Promise<{ got: number[] } | { error: unknown } | { done: true }> {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (error) {
          return { error };
        }
        if (chunk.done) return { done: true };
        const frames = parser.push(decoder.decode(chunk.value)).filter((frame) => frame.data !== '');
        if (frames.length > 0) {
          return {
            got: frames.map(
              (frame) => (JSON.parse(frame.data) as { params: { progress: number } }).params.progress,
            ),
          };
        }
      }
    },
    cancel: () => reader.cancel(),
  };
}

for (const backend of STORE_BACKENDS) {
  describe(`a resumed MCP stream at the log's end: ${backend.name}`, { timeout: 60_000 }, () => {
    // [0] holds the MCP session and writes its stream; [1] follows it for a resumed client.
    const store = useStoreHandles(backend, 2);
    const logs = () => {
      const [holder, follower] = store.handles as [DatabaseHandle, DatabaseHandle];
      return {
        writer: createStreamEventLog(holder.db as unknown as Kysely<McpStreamEventsDb>),
        reader: createStreamEventLog(follower.db as unknown as Kysely<McpStreamEventsDb>),
        db: holder.db as unknown as Kysely<McpStreamEventsDb>,
      };
    };
    const prune = async (db: Kysely<McpStreamEventsDb>, now: number) => {
      const target = createStreamEventsRetentionTarget({
        retentionMs: RETENTION_MS,
        perStreamLimit: PER_STREAM,
      });
      while ((await target.deleteBatch(db, now, 100)) > 0) {}
    };
    /** Follows `owner`'s stream `s` after `afterEventId` as a replica without the session does. */
    const follow = (log: StreamEventLog, owner: StreamOwner, afterEventId: string) =>
      progressReader(
        createFollowStream({
          log,
          owner,
          streamId: 's',
          afterEventId,
          pollMs: 10,
          idleMs: 60_000,
          keepAliveMs: 0,
          signal: new AbortController().signal,
          gapless: {},
          failOnError: true,
        }),
      );

    test('more messages than the log keeps, stored and pruned within one poll, end the stream', async () => {
      const { writer, reader, db } = logs();
      const owner = { tenantId: 't', principalId: 'p', mcpSessionId: `burst-${backend.name}` };
      const session = writer.forSession(owner);
      const seen = await session.storeEvent('s', note(0));
      await session.storeEvent('s', note(1));
      const held = heldLog(reader);
      const resumed = follow(held.log, owner, seen);
      assert.deepEqual(await resumed.next(), { got: [1] });
      // The client waits for more: the follower sits at the log's end, polling.
      const next = resumed.next();
      const before = held.emptyReads();
      await waitFor(() => held.emptyReads() >= before + 2, 10_000, 'the follower to poll the log');
      await held.hold();
      // Between two polls: a burst of messages, then the retention job keeps the newest PER_STREAM.
      for (let n = 2; n < 2 + PER_STREAM + 6; n += 1) await session.storeEvent('s', note(n));
      await prune(db, Date.now());
      held.release();
      // Before: it went on with the newest PER_STREAM (8 to 11), and its client never knew that 2
      // to 7 were missed.
      const got = await next;
      assert.ok('error' in got && got.error instanceof PrunedMessagesError, JSON.stringify(got));
    });

    test('a quiet stream whose last message read aged out goes on with the next one', async () => {
      const { writer, reader, db } = logs();
      const owner = { tenantId: 't', principalId: 'p', mcpSessionId: `quiet-${backend.name}` };
      const session = writer.forSession(owner);
      const seen = await session.storeEvent('s', note(0));
      await session.storeEvent('s', note(1));
      const held = heldLog(reader);
      const resumed = follow(held.log, owner, seen);
      assert.deepEqual(await resumed.next(), { got: [1] });
      const next = resumed.next();
      const before = held.emptyReads();
      await waitFor(() => held.emptyReads() >= before + 2, 10_000, 'the follower to poll the log');
      await held.hold();
      // Everything stored so far aged out; then the next message comes.
      await prune(db, Date.now() + RETENTION_MS + 60_000);
      await session.storeEvent('s', note(2));
      held.release();
      assert.deepEqual(await next, { got: [2] });
      await resumed.cancel();
    });

    test('messages stored without a position (before migration 0028) are checked by the last one read', async () => {
      const { reader, db } = logs();
      const owner = { tenantId: 't', principalId: 'p', mcpSessionId: `unnumbered-${backend.name}` };
      // As an older build stored them: no stream_seq.
      const insert = async (n: number) =>
        String(
          (
            await db
              .insertInto('mcp_stream_events')
              .values({
                tenant_id: owner.tenantId,
                principal_id: owner.principalId,
                mcp_session_id: owner.mcpSessionId,
                stream_id: 's',
                message: JSON.stringify(note(n)),
                created_at: Date.now(),
              })
              .returning('id')
              .executeTakeFirstOrThrow()
          ).id,
        );
      const seen = await insert(0);
      for (let n = 1; n <= PER_STREAM + 2; n += 1) await insert(n);
      // The client's last message, and the one after it, pruned by count before it resumed.
      await prune(db, Date.now());
      const resumed = follow(reader, owner, seen);
      const next = await resumed.next();
      assert.ok('error' in next && next.error instanceof PrunedMessagesError, JSON.stringify(next));
      // From one still stored: all that follows it.
      const kept = await db
        .selectFrom('mcp_stream_events')
        .select('id')
        .where('mcp_session_id', '=', owner.mcpSessionId)
        .orderBy('id')
        .execute();
      const fromKept = follow(reader, owner, String(kept[0]!.id));
      const got: number[] = [];
      while (got.length < 3) {
        const read = await fromKept.next();
        assert.ok('got' in read, JSON.stringify(read));
        got.push(...read.got);
      }
      assert.deepEqual(got, [4, 5, 6]);
      await fromKept.cancel();
    });
  });
}
