// An MCP event stream whose client stops reading with far less than the 8 MiB read-ahead waiting
// for it, against the real server (SQLite): as a REST event stream, its connection is dropped once
// the client took nothing for four keep-alive intervals, which lets its idle MCP session (and its
// capacity slot) go, logs one line and counts it; the client resumes with Last-Event-ID. A client
// that reads in steps, each just enough for the kernel to take more from the server, with a pause
// after each, is never dropped however many intervals its reading spans.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { type ClientRequest, get, type IncomingMessage } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { createSseParser, type SseFrame } from '../../src/cli/sse-reader.ts';
import { STALLED_CLIENT_INTERVALS } from '../../src/http/stalled-client.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { initializeMcp, initializeRequest, postMcp, readFrames } from '../fixtures/mcp-wire.ts';
import { scrapeSample } from '../fixtures/metrics-scrape.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';
import { readInSteps } from '../fixtures/stepped-reader.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { resumeStream, sessionStreamWriter } from '../helpers/mcp-streams.ts';

const MIB = 1024 * 1024;
const TEXT = 'x'.repeat(MIB);
const DROPPED = 'maos_mcp_streams_dropped_total';

/**
 * Bytes the kernel takes on a loopback connection whose client reads nothing, before a write has to
 * wait in the sending process: what such a client takes without the server seeing it stop.
 */
async function kernelHoldsForPausedClient(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = connect(port, '127.0.0.1');
  client.pause();
  const socket = await accepted;
  const chunk = Buffer.alloc(64 * 1024);
  let written = 0;
  while (socket.writableLength === 0) {
    socket.write(chunk);
    written += chunk.length;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const held = written - socket.writableLength;
  socket.destroy();
  client.destroy();
  server.close();
  return held;
}

interface Stack {
  server: TestServer;
  lines: Array<Record<string, unknown>>;
  sessionId: string;
  negotiated: string;
  /** Event id of the empty message the stored ones follow: where a client resumes. */
  from: string;
  /**
   * Stores `count` notifications of 1 MiB on the session's standalone stream, with a request on the
   * session after each: storing is slow on a loaded machine, and the session must not idle out
   * meanwhile (a resume would then be served from the log, not by the session's own transport).
   */
  store(count: number): Promise<void>;
  /** Stores `message` on the session's stream `streamId`; returns its event id. */
  insert(message: unknown, streamId: string): Promise<string>;
  /** A request on the session (which keeps it from idling out); the status of its answer. */
  ping(): Promise<number>;
  /** The server's side of the connection whose client port is `port`. */
  serverSocketOf(port: number): Promise<Socket>;
}

/**
 * A server with keep-alives every `keepAliveSeconds` (a client that takes nothing for four of them
 * is dropped) whose callers may hold `sessions` MCP sessions each, idle after `idleSeconds`, and
 * such a session.
 */
async function startStack(
  t: TestContext,
  keepAliveSeconds: number,
  idleSeconds = 1,
  sessions = 1,
): Promise<Stack> {
  const { destination, lines } = captureLog();
  const server = await startTestServer({
    config: {
      logLevel: 'info',
      http: { sseKeepAliveSeconds: keepAliveSeconds },
      mcp: { maxSessionsPerPrincipal: sessions, sessionIdleSeconds: idleSeconds },
    },
    logDestination: destination,
  });
  t.after(() => server.close());
  const serverSockets: Socket[] = [];
  server.app.http.server.on('connection', (socket: Socket) => serverSockets.push(socket));
  const { sessionId, negotiated } = await initializeMcp(server.url, '2025-11-25');
  // Messages stored on the session's standalone stream while no client was connected, as its
  // notifications are; the SDK replays them to a client that resumes the stream.
  const insert = await sessionStreamWriter(server, sessionId);
  const ping = async (): Promise<number> => {
    const answer = await postMcp(
      server.url,
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated },
    );
    await answer.body?.cancel();
    return answer.status;
  };
  const from = await insert({});
  return {
    server,
    lines,
    sessionId,
    negotiated,
    from,
    async store(count) {
      for (let i = 0; i < count; i += 1) {
        await insert({
          jsonrpc: '2.0',
          method: 'notifications/message',
          params: { level: 'info', data: `${i} ${TEXT}` },
        });
        assert.equal(await ping(), 200, 'the session is still held');
      }
    },
    insert,
    ping,
    serverSocketOf: (port) =>
      waitFor(() => serverSockets.find((socket) => socket.remotePort === port), 10_000, 'the connection'),
  };
}

interface OpenedStream {
  request: ClientRequest;
  response: IncomingMessage;
  /** The client's port: identifies the connection on the server. */
  port: number;
}

/** Resumes a stream of the session after `from` and pauses it at once: it reads nothing. */
function openPausedStream(stack: Stack, from = stack.from): Promise<OpenedStream> {
  return new Promise((resolve, reject) => {
    const request = get(`${stack.server.url}/mcp`, {
      agent: false,
      headers: {
        accept: 'text/event-stream',
        'mcp-session-id': stack.sessionId,
        'mcp-protocol-version': stack.negotiated,
        'last-event-id': from,
      },
    });
    request.once('error', reject);
    request.once('response', (response) => {
      response.pause();
      response.on('error', () => {});
      resolve({ request, response, port: request.socket?.localPort ?? 0 });
    });
  });
}

/** The stored notifications among `frames`, by their number. */
function storedIn(frames: readonly SseFrame[]): number[] {
  return frames
    .filter((frame) => frame.data.includes(TEXT))
    .map((frame) => Number(/"data":"(\d+) /.exec(frame.data)?.[1]));
}

test('an MCP client that stops reading with little unread is dropped, lets its session go, and resumes', {
  timeout: 120_000,
}, async (t) => {
  const stack = await startStack(t, 0.25);
  // More than the kernel takes for a client that reads nothing, and far less than the 8 MiB read
  // ahead: what is left waits in the server, below the read-ahead limit.
  const stored = Math.ceil((await kernelHoldsForPausedClient()) / MIB) + 3;
  await stack.store(stored);
  const stalled = await openPausedStream(stack);
  t.after(() => stalled.request.destroy());
  const streamSocket = await stack.serverSocketOf(stalled.port);
  await waitFor(() => streamSocket.writableLength > 0, 30_000, 'bytes the client did not take on the socket');

  // Before the fix the stream stayed open, and with it the session: its caller (one session at
  // most) could never initialize another.
  await waitFor(
    () => streamSocket.destroyed,
    60_000,
    'the server to drop the connection of a client that does not read',
  );
  const droppedLines = () =>
    stack.lines.filter((line) => String(line.message).startsWith('MCP event stream dropped'));
  await waitFor(() => droppedLines().length > 0, 10_000, 'the log line');
  const [dropped, ...more] = droppedLines();
  assert.equal(more.length, 0, 'one line');
  assert.equal(dropped?.mcpSessionId, stack.sessionId);
  assert.ok(Number(dropped?.unsentBytes) > 0, 'the line says what was left unsent');
  assert.equal(await scrapeSample(stack.server.url, DROPPED), 1);
  await waitFor(
    async () => {
      const next = await postMcp(stack.server.url, initializeRequest('next', '2025-11-25'));
      await next.body?.cancel();
      return next.status === 200;
    },
    30_000,
    'the idle session to go and its slot with it',
  );

  // What reached the client before the drop, then the rest when it resumes after the last it got.
  const parser = createSseParser();
  const received: SseFrame[] = [];
  stalled.response.setEncoding('utf8');
  stalled.response.on('data', (text: string) => received.push(...parser.push(text)));
  stalled.response.resume();
  await new Promise((resolve) => stalled.response.once('close', resolve));
  const got = storedIn(received);
  assert.ok(got.length < stored, `${got.length} of ${stored} messages reached the client`);
  const lastId = received.filter((frame) => frame.id !== undefined).at(-1)?.id ?? stack.from;
  const resumed = await resumeStream(
    stack.server.url,
    { 'mcp-session-id': stack.sessionId, 'mcp-protocol-version': stack.negotiated },
    lastId,
  );
  assert.equal(resumed.status, 200);
  const rest: number[] = [];
  await readFrames(resumed, (frame) => {
    if (frame.data.includes(TEXT)) rest.push(Number(/"data":"(\d+) /.exec(frame.data)?.[1]));
    return rest.at(-1) === stored - 1;
  });
  assert.deepEqual(
    [...got, ...rest],
    Array.from({ length: stored }, (_, i) => i),
  );
});

test('an MCP client that reads in steps with pauses is not dropped, however many intervals it takes', {
  timeout: 120_000,
}, async (t) => {
  // Intervals of 0.5 s: a step of the reader (over a megabyte, read without a pause) fits in one
  // many times over, also on a loaded machine. The session is far from idling out: the resume is
  // the SDK's, on the process holding the session, not one served from the log, which ends after
  // mcp.sessionIdleSeconds without a new message.
  const intervalMs = 500;
  const stack = await startStack(t, intervalMs / 1000, 3600);
  const stored = 40;
  await stack.store(stored);
  const stream = await openPausedStream(stack);
  t.after(() => stream.request.destroy());
  // Lets the server's buffers fill before the first read: the reader starts behind.
  const streamSocket = await stack.serverSocketOf(stream.port);
  await waitFor(() => streamSocket.writableLength > 0, 30_000, 'unsent messages on the socket');

  // Half an interval's pause after each step, until the last stored message: the 40 MiB take the
  // reader many steps. The stream stays open after them.
  const pauseMs = intervalMs / 2;
  let lastBegun = false;
  const read = await readInSteps(stream.response, streamSocket, {
    pauseMs,
    until: (text) => {
      lastBegun ||= text.includes(`"data":"${stored - 1} `);
      return lastBegun && text.endsWith('\n\n');
    },
  });
  assert.equal(read.closed, false, 'the stream was not cut');
  assert.deepEqual(
    storedIn(createSseParser().push(read.body.toString('utf8'))),
    Array.from({ length: stored }, (_, i) => i),
  );
  assert.equal(await scrapeSample(stack.server.url, DROPPED), 0);
  // Bytes waited for the reader throughout its pauses, longer together than the stall limit: a rule
  // that did not see its progress would have dropped it.
  assert.ok(
    read.pauses * pauseMs > STALLED_CLIENT_INTERVALS * intervalMs,
    `${read.pauses} pauses of half an interval`,
  );
});

test('an MCP session is kept while a client reads an answered stream it resumed, however long it takes', {
  timeout: 120_000,
}, async (t) => {
  // Keep-alives every minute: the paused client is not dropped within the test.
  const stack = await startStack(t, 60, 3, 2);
  // A tool call's stream whose response was stored while its client was away, with more before it
  // than the kernel takes for a client that reads nothing: the resume, served from the log by the
  // process holding the session, stays open while the client does not read.
  const streamId = randomUUID();
  const from = await stack.insert({}, streamId);
  const stored = Math.ceil((await kernelHoldsForPausedClient()) / MIB) + 3;
  for (let i = 0; i < stored; i += 1) {
    await stack.insert(
      { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: `${i} ${TEXT}` } },
      streamId,
    );
    // Storing is slow on a loaded machine: the session must still be held here when it resumes.
    assert.equal(await stack.ping(), 200);
  }
  await stack.insert({ jsonrpc: '2.0', id: 7, result: { content: [] } }, streamId);
  const resumed = await openPausedStream(stack, from);
  t.after(() => resumed.request.destroy());
  assert.equal(resumed.response.statusCode, 200);
  const streamSocket = await stack.serverSocketOf(resumed.port);
  await waitFor(() => streamSocket.writableLength > 0, 30_000, 'bytes the client did not take on the socket');

  // The caller's other session (two at most), last seen after the resume: once it idled out and
  // its slot is free, the sweep that closed it found the first one idle as long, and kept it only
  // for its open stream.
  await initializeMcp(stack.server.url, '2025-11-25');
  await waitFor(
    async () => {
      const next = await postMcp(stack.server.url, initializeRequest('next', '2025-11-25'));
      await next.body?.cancel();
      return next.status === 200;
    },
    30_000,
    'the other session to idle out',
  );
  assert.equal(streamSocket.destroyed, false, 'the client still holds its stream');
  // Before, the session was closed under the open stream: its client's next request got 404.
  assert.equal(await stack.ping(), 200);
});
