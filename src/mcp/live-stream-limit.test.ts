// Live messages of an MCP session sent faster than its client reads: the real SDK transport writes
// each into its stream at once, and behind the read-ahead of the client's connection (8 MiB) they
// used to wait in the SDK's queue without bound. Read at once instead, at most about a megabyte of
// them waits beyond the read-ahead; past that the client gets them from the log (real SQLite) at
// its own pace, each once and in order, then live again. A stream without a log is dropped instead.
// A stream read from the log, also one resumed on a replica that does not hold its session, ends
// rather than go on past messages the log pruned before its client got them.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { type IncomingMessage, request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { after, before, type TestContext, test } from 'node:test';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { Kysely } from 'kysely';
import { initializeMcp } from '../../test/fixtures/mcp-wire.ts';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import type { RoleDefinition } from '../agents/roles/role.ts';
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
  createStreamEventsRetentionTarget,
  type McpStreamEventsDb,
  STANDALONE_STREAM_ID,
  type StreamEventLog,
  type StreamOwner,
} from './stream-event-log.ts';
import { createFollowStream, PrunedMessagesError } from './stream-follower.ts';
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
  return async (afterEventId, firstEventId) =>
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
      gapless: firstEventId === undefined ? {} : { firstEventId },
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
  const config = loadConfig({
    env: {},
    // Every call of the batch in flight at once (each request of a batch takes a slot).
    overrides: { host: '127.0.0.1', dataDir: dir, mcp: { maxRequestsInFlightPerSession: 20 } },
  });
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

/** Instructions of a role: each answer of list_roles carries them twice, about 10 MiB. */
const LARGE = 'x'.repeat(5 * MIB);

interface PausedBatch {
  sessionId: string;
  /** Lets the next call of the batch answer and waits until its answer is stored. */
  answerNext: () => Promise<void>;
  /** The batch's response, not read yet. */
  answer: IncomingMessage;
  /** Streams dropped (maos_mcp_streams_dropped_total). */
  drops: () => number;
  url: string;
  negotiated: string;
}

/**
 * A batch of `calls` list_roles calls over /mcp (protocol 2025-03-26) whose client reads nothing,
 * and whose calls answer one at a time as the test says: the first with about 10 MiB, which fills
 * the read-ahead (8 MiB) alone; the others with about 1 MiB. The second is taken on by the stream's
 * opening (stream-opening.ts reads one message ahead), the third is held for the client, the
 * fourth makes the stream read on from the log after the second. The batch goes over a Unix
 * socket, whose buffers hold a few hundred KiB (a TCP connection's on loopback may hold megabytes).
 */
async function pausedBatch(t: TestContext, calls: number): Promise<PausedBatch> {
  const role = { name: 'big', description: 'd', capabilities: [], instructions: LARGE, builtIn: false };
  const smaller = { ...role, instructions: TEXT.slice(MIB / 2) };
  const config = loadConfig({ env: {}, overrides: { host: '127.0.0.1', dataDir: dir } });
  const gates: Array<() => void> = [];
  const opened = Array.from({ length: calls }, () => new Promise<void>((resolve) => gates.push(resolve)));
  let called = 0;
  let dropped = 0;
  const service = createFakeSessionService();
  const app = await buildHttpServer({
    config,
    service,
    logger: createLogger({ level: 'silent' }),
    readiness: async () => ({}),
    listRoles: () => [],
    authenticate: async () => ({ tenantId: 'acme', principalId: 'alice' }),
    plugins: [
      createMcpHttpPlugin({
        service,
        config,
        streamEvents: log,
        onStreamDropped: () => {
          dropped += 1;
        },
        listRoles: async () => {
          const call = called++;
          await opened[call];
          return [call === 0 ? role : smaller];
        },
      }),
    ],
  });
  t.after(() => app.close());
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const socketPath = join(dir, `mcp-${randomUUID()}.sock`);
  const unix = createServer((socket) => app.server.emit('connection', socket));
  await new Promise<void>((resolve) => unix.listen(socketPath, resolve));
  t.after(() => new Promise<void>((resolve) => unix.close(() => resolve())));
  const { sessionId, negotiated } = await initializeMcp(url, '2025-03-26');
  const batch = Array.from({ length: calls }, (_, i) => ({
    jsonrpc: '2.0',
    id: i + 1,
    method: 'tools/call',
    params: { name: 'list_roles', arguments: { include_instructions: true } },
  }));
  const answer = await new Promise<IncomingMessage>((resolve, reject) => {
    const sent = request({
      socketPath,
      path: '/mcp',
      method: 'POST',
      agent: false,
      headers: {
        host: '127.0.0.1',
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
    sent.end(JSON.stringify(batch));
  });
  t.after(() => answer.destroy());
  assert.equal(answer.statusCode, 200);
  let answered = 0;
  let newest = 0;
  return {
    sessionId,
    url,
    negotiated,
    answer,
    drops: () => dropped,
    async answerNext() {
      gates[answered]?.();
      answered += 1;
      // Counted by id: the log may have been pruned meanwhile.
      await waitFor(
        async () => {
          const last = Number((await storedAnswers(sessionId)).at(-1) ?? 0);
          if (last <= newest) return false;
          newest = last;
          return true;
        },
        60_000,
        `answer ${answered} to be stored`,
      );
    },
  };
}

/** The stored event ids of the answers of `sessionId`'s tool calls, oldest first. */
async function storedAnswers(sessionId: string): Promise<string[]> {
  const rows = await (handle.db as unknown as Kysely<McpStreamEventsDb>)
    .selectFrom('mcp_stream_events')
    .select('id')
    .where('mcp_session_id', '=', sessionId)
    .where('message', 'like', '%"result":{"content"%')
    .orderBy('id')
    .execute();
  return rows.map((row) => String(row.id));
}

/** Keeps the newest messages of each stream, as the retention job does with `mcp.replayBufferSize: kept`. */
async function pruneToNewest(kept = 1): Promise<void> {
  const target = createStreamEventsRetentionTarget({ retentionMs: 3_600_000, perStreamLimit: kept });
  await target.deleteBatch(handle.db, Date.now(), 10_000);
}

/** Reads `answer` to its end (or until its connection fails): the event ids of the answers, and how it ended. */
async function readAnswers(answer: IncomingMessage): Promise<{ ids: string[]; failed: boolean }> {
  const ids: string[] = [];
  const parser = createSseParser();
  answer.setEncoding('utf8');
  answer.resume();
  try {
    for await (const text of answer) {
      for (const frame of parser.push(text as string)) {
        if (frame.data.includes('"result":{"content"') && frame.id !== undefined) ids.push(frame.id);
      }
    }
    return { ids, failed: !answer.complete };
  } catch {
    return { ids, failed: true };
  }
}

test('over /mcp, a request stream goes on from the log when the last message its client got was pruned but none it lacks', {
  timeout: 180_000,
}, async (t) => {
  const batch = await pausedBatch(t, 5);
  for (let i = 0; i < 3; i += 1) await batch.answerNext();
  // The client got the first two answers (read ahead for it), the third waits for it. The log keeps
  // only the third now: the last message the client got is gone, none it lacks is.
  const third = (await storedAnswers(batch.sessionId))[2];
  await pruneToNewest();
  assert.deepEqual(await storedAnswers(batch.sessionId), [third], 'the first two answers were pruned');
  // The fourth makes the stream read on from the log after the second. Before, the stream was
  // looked up by the second answer: not found, the connection ended (and its resume was refused).
  await batch.answerNext();
  await batch.answerNext();
  const { ids, failed } = await readAnswers(batch.answer);
  assert.equal(failed, false, 'the stream ends after its last answer');
  assert.equal(ids.length, 5, 'every answer once');
  assert.deepEqual(ids.slice(2), await storedAnswers(batch.sessionId));
  assert.equal(batch.drops(), 0);
});

test('over /mcp, a request stream whose client lacks a pruned message ends, counted, and is not resumed past it', {
  timeout: 180_000,
}, async (t) => {
  const batch = await pausedBatch(t, 5);
  for (let i = 0; i < 4; i += 1) await batch.answerNext();
  // The stream reads on from the log after the second answer; the third, which the client lacks,
  // is pruned before it reads it. Before, the stream went on without it.
  await pruneToNewest();
  await batch.answerNext();
  const { ids, failed } = await readAnswers(batch.answer);
  // The first answer reached it; the second, read ahead of it, went with the connection.
  assert.equal(ids.length, 1, 'only the answer the client took');
  assert.equal(failed, true, 'the connection ends without the last answers');
  assert.equal(batch.drops(), 1);
  // Its resume from the last one it got is refused: that one is gone too.
  const resumed = await fetch(`${batch.url}/mcp`, {
    headers: {
      accept: 'text/event-stream',
      'mcp-session-id': batch.sessionId,
      'mcp-protocol-version': batch.negotiated,
      'last-event-id': ids.at(-1) ?? '',
    },
  });
  assert.equal(resumed.status, 400);
  await resumed.body?.cancel();
});

test('a client of the standalone stream that lacks messages the log pruned meanwhile gets none past them: its stream fails, counted once', {
  timeout: 120_000,
}, async () => {
  const session = await openLiveSession('standalone-pruned');
  let pruned = 0;
  const body = readWithinUnreadLimit(
    liveWithinLimit(session.live, {
      readLog: readLogOf(session.owner),
      onPruned: () => {
        pruned += 1;
      },
    }),
  );
  // The client reads nothing while its session sends five times the read-ahead: past it and the
  // held megabyte, the later ones are let go; then the log keeps the newest one only.
  await sendMany(session.mcp);
  await pruneToNewest();
  const received: number[] = [];
  const parser = createSseParser();
  body.setEncoding('utf8');
  let failure: unknown;
  try {
    for await (const text of body) {
      for (const frame of parser.push(text as string)) {
        const n = /"data":"(\d+) /.exec(frame.data)?.[1];
        if (n !== undefined) received.push(Number(n));
      }
      if (received.at(-1) === SENT - 1) break;
    }
  } catch (error) {
    failure = error;
  }
  // What was read ahead for it, then nothing: without gapless it went on with the newest one.
  assert.ok(failure instanceof PrunedMessagesError, String(failure));
  assert.ok(received.length > 0 && received.length < SENT - 1, `${received.length} received`);
  assert.deepEqual(
    received,
    Array.from({ length: received.length }, (_, i) => i),
  );
  assert.equal(pruned, 1);
  await session.mcp.close();
});

/** A server on the shared log, as one replica of a cluster, also listening on a Unix socket (see pausedBatch). */
async function startReplica(
  t: TestContext,
  options: { listRoles?: () => Promise<RoleDefinition[]> } = {},
): Promise<{ url: string; socketPath: string; drops: () => number }> {
  const config = loadConfig({ env: {}, overrides: { host: '127.0.0.1', dataDir: dir } });
  const service = createFakeSessionService();
  let dropped = 0;
  const app = await buildHttpServer({
    config,
    service,
    logger: createLogger({ level: 'silent' }),
    readiness: async () => ({}),
    listRoles: () => [],
    authenticate: async () => ({ tenantId: 'acme', principalId: 'alice' }),
    plugins: [
      createMcpHttpPlugin({
        service,
        config,
        streamEvents: log,
        onStreamDropped: () => {
          dropped += 1;
        },
        ...options,
      }),
    ],
  });
  t.after(() => app.close());
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const socketPath = join(dir, `mcp-${randomUUID()}.sock`);
  const unix = createServer((socket) => app.server.emit('connection', socket));
  await new Promise<void>((resolve) => unix.listen(socketPath, resolve));
  t.after(() => new Promise<void>((resolve) => unix.close(() => resolve())));
  return { url, socketPath, drops: () => dropped };
}

/** A GET of /mcp over `socketPath` (a resume) whose response is not read yet. */
async function getPaused(
  t: TestContext,
  socketPath: string,
  headers: Record<string, string>,
): Promise<IncomingMessage> {
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const sent = request({
      socketPath,
      path: '/mcp',
      agent: false,
      headers: { host: '127.0.0.1', ...headers },
    });
    sent.once('error', reject);
    sent.once('response', (answer) => {
      answer.pause();
      resolve(answer);
    });
    sent.end();
  });
  t.after(() => response.destroy());
  return response;
}

test('resumed on a replica that does not hold its session, a stream whose client lacks a message the log pruned ends, counted, and is not resumed past it', {
  timeout: 180_000,
}, async (t) => {
  const role = { name: 'big', description: 'd', capabilities: [], instructions: LARGE, builtIn: false };
  const holding = await startReplica(t, { listRoles: async () => [role] });
  const other = await startReplica(t);
  const { sessionId, negotiated } = await initializeMcp(holding.url, '2025-03-26');
  const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
  // A batch of four calls, answered with about 10 MiB each, read whole on the replica holding the session.
  const calls = Array.from({ length: 4 }, (_, i) => ({
    jsonrpc: '2.0',
    id: i + 1,
    method: 'tools/call',
    params: { name: 'list_roles', arguments: { include_instructions: true } },
  }));
  const posted = await fetch(`${holding.url}/mcp`, {
    method: 'POST',
    headers: {
      ...headers,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
    },
    body: JSON.stringify(calls),
  });
  const answered = createSseParser()
    .push(await posted.text())
    .filter((frame) => frame.data.includes('"result":{"content"'))
    .map((frame) => frame.id);
  assert.equal(answered.length, 4);
  const [first, second, , last] = answered;
  // Its client resumes it on the other replica after the first answer, and reads nothing: that
  // replica reads the second from the log, which fills the read-ahead alone.
  const resumed = await getPaused(t, other.socketPath, {
    ...headers,
    accept: 'text/event-stream',
    'last-event-id': first ?? '',
  });
  assert.equal(resumed.statusCode, 200);
  await waitFor(() => resumed.readableLength > 1024, 60_000, 'the second answer to reach the client');
  // The log keeps the last answer of the stream only (and its end): the third, which the client
  // lacks, is pruned before it reads it. Before, the resumed stream went on without it.
  await pruneToNewest(2);
  assert.deepEqual(await storedAnswers(sessionId), [last]);
  const { ids, failed } = await readAnswers(resumed);
  assert.deepEqual(ids, [second], 'none past the pruned one');
  assert.equal(failed, true, 'the connection ends without the last answers');
  assert.equal(other.drops(), 1);
  assert.equal(holding.drops(), 0);
  // Its resume from the last one it got is refused: that one is gone too.
  const again = await fetch(`${other.url}/mcp`, {
    headers: { ...headers, accept: 'text/event-stream', 'last-event-id': second ?? '' },
  });
  assert.equal(again.status, 404);
  await again.body?.cancel();
});
