// A stream resumed (GET + Last-Event-ID) with many large stored messages by a client that reads
// nothing yet: the server reads the log only as the client takes what it was sent, so what it holds
// for the stream stays within the read-ahead (8 MiB) and about a page, whether the stream is live
// on the process holding its MCP session (before: the SDK's replay read all of it first) or served
// from the log alone (its MCP session gone, as on another replica). The client then gets it all.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { initializeMcp, readFrames } from '../../test/fixtures/mcp-wire.ts';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { loadConfig } from '../config/load.ts';
import { createFakeSessionService } from '../http/fake-session-service.test-support.ts';
import { buildHttpServer } from '../http/server.ts';
import { createLogger } from '../observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { createMcpHttpPlugin } from './http-transport.ts';
import { liveWithinLimit } from './live-stream-limit.ts';
import {
  createStreamEventLog,
  type McpStreamEventsDb,
  STANDALONE_STREAM_ID,
  type StreamEventLog,
} from './stream-event-log.ts';
import { createFollowStream, FOLLOW_PAGE_BYTES } from './stream-follower.ts';
import { MAX_UNREAD_STREAM_BYTES } from './unread-stream-limit.ts';

const MIB = 1024 * 1024;
/** 40 stored notifications of 1 MiB each: five times the read-ahead. */
const STORED = 40;
const TEXT = 'x'.repeat(MIB);

/** Bytes of stored messages read from the log, by the log's readers and the SDK's replay alike. */
let readBytes = 0;

/** The real log, counting the bytes of the messages read from it. */
function countingLog(log: StreamEventLog): StreamEventLog {
  return {
    ...log,
    async readAfter(...args) {
      const page = await log.readAfter(...args);
      for (const event of page) readBytes += JSON.stringify(event.message).length;
      return page;
    },
    forSession(owner) {
      const store = log.forSession(owner);
      return {
        ...store,
        replayEventsAfter: (eventId, options) =>
          store.replayEventsAfter(eventId, {
            send: (id, message) => {
              readBytes += JSON.stringify(message).length;
              return options.send(id, message);
            },
          }),
      };
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'maos-mcp-resumed-'));
let handle: DatabaseHandle;
let app: FastifyInstance;
let url: string;
const sockets: Socket[] = [];

before(async () => {
  const config = loadConfig({ env: {}, overrides: { host: '127.0.0.1', dataDir: dir } });
  handle = createDatabase(config);
  await migrateToLatest(handle.db);
  const streamEvents = countingLog(createStreamEventLog(handle.db as unknown as Kysely<McpStreamEventsDb>));
  const service = createFakeSessionService();
  app = await buildHttpServer({
    config,
    service,
    logger: createLogger({ level: 'silent' }),
    readiness: async () => ({}),
    listRoles: () => [],
    authenticate: async () => ({ tenantId: 'acme', principalId: 'alice' }),
    plugins: [createMcpHttpPlugin({ service, config, streamEvents })],
  });
  app.server.on('connection', (socket: Socket) => sockets.push(socket));
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  await app?.close();
  await handle?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Stores STORED large notifications on the session's standalone stream; returns the id before them. */
async function storeLargeMessages(sessionId: string): Promise<string> {
  const db = handle.db as unknown as Kysely<McpStreamEventsDb>;
  const store = (message: unknown) =>
    db
      .insertInto('mcp_stream_events')
      .values({
        tenant_id: 'acme',
        principal_id: 'alice',
        mcp_session_id: sessionId,
        stream_id: STANDALONE_STREAM_ID,
        message: JSON.stringify(message),
        created_at: Date.now(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
  // Empty, as the SDK's priming event: where the client resumes.
  const from = String((await store({})).id);
  for (let i = 0; i < STORED; i += 1) {
    await store({
      jsonrpc: '2.0',
      method: 'notifications/message',
      params: { level: 'info', data: `${i} ${TEXT}` },
    });
  }
  return from;
}

/**
 * Resumes from `from` and reads nothing until the log is read no further: what was read and not yet
 * taken by the kernel stays within the read-ahead, a page and a message. Then reads it all.
 */
async function resumePausedThenRead(headers: Record<string, string>, from: string): Promise<void> {
  readBytes = 0;
  const before = new Map(sockets.map((socket) => [socket, socket.bytesWritten]));
  const resumed = await fetch(`${url}/mcp`, {
    headers: { ...headers, accept: 'text/event-stream', 'last-event-id': from },
    signal: AbortSignal.timeout(60_000),
  });
  assert.equal(resumed.status, 200);
  await waitFor(() => readBytes >= MAX_UNREAD_STREAM_BYTES, 30_000, 'the read-ahead to fill');
  // The log is read on only as the client takes some: give it every chance to.
  let last = -1;
  while (last !== readBytes) {
    last = readBytes;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  // The stream's connection: the one that carried megabytes since the resume.
  const since = (socket: Socket) => socket.bytesWritten - (before.get(socket) ?? 0);
  const socket = sockets.reduce((most, each) => (since(each) > since(most) ? each : most));
  const takenByKernel = since(socket) - socket.writableLength;
  const held = readBytes - takenByKernel;
  // Before: all 40 MiB were read at once, whatever the client took.
  assert.ok(readBytes < STORED * MIB, `all ${readBytes} bytes were read`);
  assert.ok(
    held <= MAX_UNREAD_STREAM_BYTES + 2 * FOLLOW_PAGE_BYTES + 2 * MIB,
    `${held} bytes were held for the client`,
  );
  const received: number[] = [];
  await readFrames(resumed, (frame) => {
    if (frame.data.includes(TEXT)) received.push(Number(frame.data.match(/"data":"(\d+) /)?.[1]));
    return received.length === STORED;
  });
  assert.deepEqual(
    received,
    Array.from({ length: STORED }, (_, i) => i),
  );
}

test('a live stream resumed on the process holding its session is read from the log at its client’s pace', {
  timeout: 120_000,
}, async () => {
  const { sessionId, negotiated } = await initializeMcp(url, '2025-11-25');
  const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
  const from = await storeLargeMessages(sessionId);
  await resumePausedThenRead(headers, from);
});

test('a stream resumed from the log alone (its session gone, as on another replica) is read at its client’s pace', {
  timeout: 120_000,
}, async () => {
  const { sessionId, negotiated } = await initializeMcp(url, '2025-11-25');
  const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
  const from = await storeLargeMessages(sessionId);
  const closed = await fetch(`${url}/mcp`, { method: 'DELETE', headers });
  assert.equal(closed.status, 200);
  await resumePausedThenRead(headers, from);
});

test('a message both read from the log and sent live while the resume was registered is sent once', async () => {
  const encoder = new TextEncoder();
  const frame = (id: string) => encoder.encode(`event: message\nid: ${id}\ndata: {"n":"${id}"}\n\n`);
  const streamOf = (chunks: Uint8Array[]) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk);
        controller.close();
      },
    });
  const stored = streamOf([encoder.encode(': resumed\n\n'), frame('5'), frame('6')]);
  const live = streamOf([frame('6'), encoder.encode(': keepalive\n\n'), frame('unstored-1'), frame('7')]);
  const response = new Response(liveWithinLimit(live, { resumeAfter: '4', readLog: async () => stored }));
  const frames = await readFrames(response, () => false);
  assert.deepEqual(
    frames.filter((each) => each.data !== '').map((each) => each.id),
    ['5', '6', 'unstored-1', '7'],
  );
});

test('a live stream whose stored part cannot be read from the log fails, rather than go on live past what it missed', async () => {
  const owner = { tenantId: 'acme', principalId: 'alice', mcpSessionId: 'unreadable' };
  const log = createStreamEventLog(handle.db as unknown as Kysely<McpStreamEventsDb>);
  const store = log.forSession(owner);
  const note = (n: number) => ({ jsonrpc: '2.0' as const, method: 'notifications/message', params: { n } });
  const from = await store.storeEvent('s', {} as never);
  const first = await store.storeEvent('s', note(1));
  await store.storeEvent('s', note(2));
  // The log answers one message, then fails (a lost database connection).
  let reads = 0;
  const failing: StreamEventLog = {
    ...log,
    async readAfter(...args) {
      reads += 1;
      if (reads > 1) throw new Error('the database is gone');
      return (await log.readAfter(...args)).slice(0, 1);
    },
  };
  const stored = createFollowStream({
    log: failing,
    owner,
    streamId: 's',
    afterEventId: from,
    untilLogEnd: true,
    pollMs: 10,
    idleMs: 60_000,
    keepAliveMs: 0,
    signal: new AbortController().signal,
    failOnError: true,
  });
  let liveCancelled = false;
  const live = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('event: message\nid: 999999\ndata: {"n":3}\n\n'));
    },
    cancel() {
      liveCancelled = true;
    },
  });
  const reader = liveWithinLimit(live, { resumeAfter: from, readLog: async () => stored }).getReader();
  const decoder = new TextDecoder();
  let text = '';
  await assert.rejects(async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += decoder.decode(value);
      if (text.includes('999999')) return;
    }
  }, /the database is gone/);
  assert.match(text, new RegExp(`id: ${first}\n`));
  // Before: the stored part ended as if all was read, and the live message followed the gap.
  assert.doesNotMatch(text, /999999/);
  assert.equal(liveCancelled, true);
});
