// Live messages of an MCP session sent faster than its client reads: the real SDK transport writes
// each into its stream at once, and behind the read-ahead of the client's connection (8 MiB) they
// used to wait in the SDK's queue without bound. Read at once instead, at most about a megabyte of
// them waits beyond the read-ahead; past that the client gets them from the log (real SQLite) at
// its own pace, each once and in order, then live again. A stream without a log is dropped instead.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { type IncomingMessage, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { Kysely } from 'kysely';
import { initializeMcp } from '../../test/fixtures/mcp-wire.ts';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { createSseParser, type SseFrame } from '../cli/sse-reader.ts';
import { loadConfig } from '../config/load.ts';
import { configSchema } from '../config/schema.ts';
import { createFakeSessionService } from '../http/fake-session-service.test-support.ts';
import { buildHttpServer } from '../http/server.ts';
import { createLogger } from '../observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { createMcpHttpPlugin } from './http-transport.ts';
import { type LiveWithinLimitOptions, liveWithinLimit, MAX_HELD_LIVE_BYTES } from './live-stream-limit.ts';
import {
  createStreamEventLog,
  type McpStreamEventsDb,
  STANDALONE_STREAM_ID,
  type StreamEventLog,
  type StreamOwner,
} from './stream-event-log.ts';
import { createFollowStream } from './stream-follower.ts';
import { MAX_UNREAD_STREAM_BYTES, readWithinUnreadLimit } from './unread-stream-limit.ts';

const MIB = 1024 * 1024;
/** 40 notifications of 1 MiB: five times the read-ahead. */
const SENT = 40;
const TEXT = 'x'.repeat(MIB);

const dir = mkdtempSync(join(tmpdir(), 'maos-mcp-live-'));
let handle: DatabaseHandle;
let log: StreamEventLog;

before(async () => {
  handle = createDatabase(configSchema.parse({ dataDir: dir }));
  await migrateToLatest(handle.db);
  log = createStreamEventLog(handle.db as unknown as Kysely<McpStreamEventsDb>);
});

after(async () => {
  await handle?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface LiveSession {
  mcp: McpServer;
  owner: StreamOwner;
  /** The SDK's standalone stream, counting the bytes read from it. */
  live: ReadableStream<Uint8Array>;
  /** Bytes read from the SDK's stream so far (what its queue no longer holds). */
  readFromSdk: () => number;
}

/** A real SDK transport and MCP server (storing in `log` unless `withLog` is false) and its open GET stream. */
async function openLiveSession(name: string, withLog = true): Promise<LiveSession> {
  const owner = { tenantId: 't', principalId: 'p', mcpSessionId: name };
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: () => name,
    ...(withLog ? { eventStore: log.forSession(owner) } : {}),
  });
  const mcp = new McpServer({ name: 'test', version: '1' }, { capabilities: { logging: {} } });
  await mcp.connect(transport);
  const headers = { accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
  const initialized = await transport.handleRequest(
    new Request('http://localhost/mcp', {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '1' } },
      }),
    }),
  );
  await initialized.text();
  const opened = await transport.handleRequest(
    new Request('http://localhost/mcp', {
      headers: { accept: 'text/event-stream', 'mcp-session-id': name, 'mcp-protocol-version': '2025-11-25' },
    }),
  );
  assert.equal(opened.status, 200);
  const reader = (opened.body as ReadableStream<Uint8Array>).getReader();
  let read = 0;
  const live = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { value, done } = await reader.read();
        if (done) return controller.close();
        read += value.length;
        controller.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  return { mcp, owner, live, readFromSdk: () => read };
}

/** The stream's messages after an id, as the MCP transport reads them from the log. */
function readLogOf(owner: StreamOwner): NonNullable<LiveWithinLimitOptions['readLog']> {
  return async (afterEventId) =>
    createFollowStream({
      log,
      owner,
      streamId: STANDALONE_STREAM_ID,
      afterEventId,
      untilLogEnd: true,
      pollMs: 10,
      idleMs: 60_000,
      keepAliveMs: 0,
      signal: new AbortController().signal,
      failOnError: true,
    });
}

/** Sends SENT notifications of 1 MiB on the session's standalone stream; returns their bytes on the wire. */
async function sendMany(mcp: McpServer, from = 0): Promise<number> {
  let bytes = 0;
  for (let i = from; i < from + SENT; i += 1) {
    const params = { level: 'info' as const, data: `${i} ${TEXT}` };
    await mcp.server.notification({ method: 'notifications/message', params });
    bytes += JSON.stringify(params).length;
  }
  return bytes;
}

/** Reads `body` until a frame carries notification `last`; the numbers of those received. */
async function readUntil(body: Readable, last: number): Promise<number[]> {
  const parser = createSseParser();
  const received: number[] = [];
  const numbers = (frames: SseFrame[]) =>
    frames.map((frame) => /"data":"(\d+) /.exec(frame.data)?.[1]).filter((n) => n !== undefined);
  body.setEncoding('utf8');
  for await (const text of body.iterator({ destroyOnReturn: false })) {
    received.push(...numbers(parser.push(text as string)).map(Number));
    if (received.at(-1) === last) return received;
  }
  return received;
}

test('a client that reads slower than its session sends holds at most the read-ahead and a megabyte of live messages, then gets them all from the log', {
  timeout: 120_000,
}, async () => {
  const session = await openLiveSession('slow');
  const body = readWithinUnreadLimit(liveWithinLimit(session.live, { readLog: readLogOf(session.owner) }));
  // The client reads nothing while its session sends five times the read-ahead.
  const sent = await sendMany(session.mcp);
  await new Promise((resolve) => setTimeout(resolve, 200));
  // Before: the SDK's queue held all that the read-ahead did not take (32 MiB).
  const waitingInSdk = sent - session.readFromSdk();
  assert.ok(waitingInSdk < MIB, `${waitingInSdk} bytes wait in the SDK's queue`);
  // What the read-ahead holds (a PassThrough): the limit and the last message written.
  const readAhead = body.readableLength + (body as Duplex).writableLength;
  assert.ok(readAhead <= MAX_UNREAD_STREAM_BYTES + 2 * MIB, `${readAhead} bytes read ahead`);

  // Read at last: every message once and in order, the later ones from the log.
  const received = await readUntil(body, SENT - 1);
  assert.deepEqual(
    received,
    Array.from({ length: SENT }, (_, i) => i),
  );
  // Caught up, the stream is fed live again.
  await session.mcp.server.notification({
    method: 'notifications/message',
    params: { level: 'info', data: `${SENT} live` },
  });
  const parser = createSseParser();
  for await (const text of body.iterator({ destroyOnReturn: false })) {
    if (parser.push(String(text)).some((frame) => frame.data.includes(`"${SENT} live"`))) break;
  }
  body.destroy();
  await session.mcp.close();
});

test('a client that falls behind on a stream without a log is dropped, once, and the SDK’s queue stays bounded', {
  timeout: 120_000,
}, async () => {
  const session = await openLiveSession('no-log', false);
  const drops: number[] = [];
  const body = readWithinUnreadLimit(
    liveWithinLimit(session.live, { onDropped: (heldBytes) => drops.push(heldBytes) }),
  );
  const failed = new Promise<Error>((resolve) => body.once('error', resolve));
  await sendMany(session.mcp);
  const error = await failed;
  const readAtDrop = session.readFromSdk();
  assert.match(error.message, /fell over \d+ bytes behind/);
  assert.equal(drops.length, 1);
  assert.ok((drops[0] ?? 0) > MAX_HELD_LIVE_BYTES, `${drops[0]} bytes let go`);
  // The SDK's stream was cancelled: it queues nothing more for the client that is gone.
  await sendMany(session.mcp, SENT);
  assert.equal(session.readFromSdk(), readAtDrop, 'nothing read from the SDK after the drop');
  await session.mcp.close();
});

test('over /mcp, the answers of a batch its client does not read yet are read from the log past the limit, then all reach it', {
  timeout: 120_000,
}, async (t) => {
  // Roles of 1 MiB of instructions: each answer of list_roles carries them (twice: as structured
  // content and as its text).
  const role = { name: 'big', description: 'd', capabilities: [], instructions: TEXT, builtIn: false };
  const config = loadConfig({ env: {}, overrides: { host: '127.0.0.1', dataDir: dir } });
  let readFromLog = 0;
  const streamEvents: StreamEventLog = {
    ...log,
    async readAfter(...args) {
      const page = await log.readAfter(...args);
      readFromLog += page.length;
      return page;
    },
  };
  const service = createFakeSessionService();
  const app = await buildHttpServer({
    config,
    service,
    logger: createLogger({ level: 'silent' }),
    readiness: async () => ({}),
    listRoles: () => [],
    authenticate: async () => ({ tenantId: 'acme', principalId: 'alice' }),
    plugins: [createMcpHttpPlugin({ service, config, streamEvents, listRoles: async () => [role] })],
  });
  t.after(() => app.close());
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  // A batch of 20 calls (protocol 2025-03-26): about 40 MiB of answers on one stream.
  const { sessionId, negotiated } = await initializeMcp(url, '2025-03-26');
  const calls = Array.from({ length: 20 }, (_, i) => ({
    jsonrpc: '2.0',
    id: i + 1,
    method: 'tools/call',
    params: { name: 'list_roles', arguments: { include_instructions: true } },
  }));
  const answer = await new Promise<IncomingMessage>((resolve, reject) => {
    const sent = request(`${url}/mcp`, {
      method: 'POST',
      agent: false,
      headers: {
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
        'mcp-session-id': sessionId,
        'mcp-protocol-version': negotiated,
      },
    });
    sent.once('error', reject);
    sent.once('response', (response) => {
      response.pause();
      resolve(response);
    });
    sent.end(JSON.stringify(calls));
  });
  t.after(() => answer.destroy());
  assert.equal(answer.statusCode, 200);
  // Not read until every answer is sent: past the read-ahead and a megabyte, they are let go, and
  // come from the log as the client reads. Before, they all waited in the SDK's queue.
  const db = handle.db as unknown as Kysely<McpStreamEventsDb>;
  await waitFor(
    async () => {
      const { stored } = await db
        .selectFrom('mcp_stream_events')
        .select((eb) => eb.fn.countAll<number>().as('stored'))
        .where('mcp_session_id', '=', sessionId)
        .where('message', 'like', '%"result":{"content"%')
        .executeTakeFirstOrThrow();
      return Number(stored) === calls.length;
    },
    60_000,
    'every answer to be sent',
  );
  const answered: number[] = [];
  const parser = createSseParser();
  answer.setEncoding('utf8');
  for await (const text of answer) {
    for (const frame of parser.push(text as string)) {
      const message = frame.data === '' ? {} : (JSON.parse(frame.data) as { id?: number; result?: unknown });
      if (message.result !== undefined && message.id !== undefined) answered.push(message.id);
    }
  }
  assert.ok(readFromLog > 0, 'answers were read from the log');
  assert.deepEqual(
    [...answered].sort((a, b) => a - b),
    calls.map((call) => call.id),
    'every answer once',
  );
});
