// A REST event stream whose client stops reading, against the real server (SQLite): the server
// drops the connection once the client took nothing for four keep-alive intervals, which frees the
// caller's stream slot, logs one line and counts it; resuming with Last-Event-ID then loses nothing.
// A client that reads in steps, each just enough for the kernel to take more from the server, with
// a pause after each, is never dropped however many intervals its reading spans.
import assert from 'node:assert/strict';
import { type ClientRequest, get, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { createSseParser, type SseFrame } from '../../src/cli/sse-reader.ts';
import type { NewEvent } from '../../src/domain/events.ts';
import { STALLED_CLIENT_INTERVALS } from '../../src/http/stalled-client.ts';
import { appendEvents } from '../../src/store/event-store.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { scrapeSample } from '../fixtures/metrics-scrape.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import { readInSteps } from '../fixtures/stepped-reader.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/** 200 events of 200 KB: 40 MB, far more than the kernel's buffers of a loopback connection hold. */
const EVENTS = 200;
const LINE = 'x'.repeat(200_000);

interface Stack {
  server: TestServer;
  lines: Array<Record<string, unknown>>;
  sessionId: string;
  eventsUrl: string;
  /** The server's side of the connection whose client port is `port`. */
  serverSocketOf(port: number): Promise<Socket>;
}

/**
 * A server whose callers may hold one stream each, with keep-alives every `keepAliveSeconds` (a
 * client that takes nothing for four of them is dropped), and a running session with a long log.
 */
async function startStack(t: TestContext, keepAliveSeconds: number): Promise<Stack> {
  const { destination, lines } = captureLog();
  const server = await startTestServer({
    config: {
      logLevel: 'info',
      http: { sseKeepAliveSeconds: keepAliveSeconds, maxSseStreamsPerPrincipal: 1 },
    },
    logDestination: destination,
  });
  t.after(() => server.close());
  const serverSockets: Socket[] = [];
  server.app.http.server.on('connection', (socket: Socket) => serverSockets.push(socket));
  const created = await requestJson<{ id: string; tenantId: string; tasks: Array<{ id: string }> }>(
    `${server.url}/v1/sessions`,
    {
      method: 'POST',
      body: { objective: 'a long log', agents: [{ name: 'w', role: 'qa', task: 't', runner: 'sleep' }] },
    },
  );
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const sessionId = created.body.id;
  await waitForSession<{ status: string; tasks: Array<{ status: string }> }>(
    server.url,
    sessionId,
    (session) => session.tasks.every((task) => task.status === 'running'),
  );
  const taskId = created.body.tasks[0]?.id ?? '';
  const events: NewEvent[] = Array.from({ length: EVENTS }, (_, i) => ({
    type: 'task.output',
    data: { taskId, name: 'w', stream: 'stdout', line: `${i} ${LINE}` },
  }));
  await server.app.database.db.transaction().execute(async (trx) => {
    await appendEvents(trx, { id: sessionId, tenantId: created.body.tenantId }, events, Date.now());
  });
  return {
    server,
    lines,
    sessionId,
    eventsUrl: `${server.url}/v1/sessions/${sessionId}/events`,
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

/** Opens the event stream and pauses its response at once: the client reads nothing. */
function openPausedStream(url: string, headers: Record<string, string> = {}): Promise<OpenedStream> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false, headers: { accept: 'text/event-stream', ...headers } });
    request.once('error', reject);
    request.once('response', (response) => {
      response.pause();
      response.on('error', () => {});
      resolve({ request, response, port: request.socket?.localPort ?? 0 });
    });
  });
}

/** Reads the frames of a stream until it ends or is cut (whole frames only). */
function readFrames(response: IncomingMessage): Promise<SseFrame[]> {
  const parser = createSseParser();
  const frames: SseFrame[] = [];
  response.setEncoding('utf8');
  return new Promise((resolve) => {
    response.on('data', (text: string) => frames.push(...parser.push(text)));
    response.once('close', () => resolve(frames));
    response.resume();
  });
}

/** Asserts that `frames` are the events `from`, `from + 1`, … in order, without a gap. */
function assertConsecutive(frames: readonly SseFrame[], from: number): void {
  frames.forEach((frame, index) => {
    assert.equal(frame.id, String(from + index), `frame ${index} is event ${from + index}`);
  });
}

test('a client that stops reading is dropped, frees its stream slot, and resumes without a gap', {
  timeout: 120_000,
}, async (t) => {
  const stack = await startStack(t, 0.25);
  const stalled = await openPausedStream(stack.eventsUrl);
  t.after(() => stalled.request.destroy());
  const streamSocket = await stack.serverSocketOf(stalled.port);
  // While it holds the stream, the caller (one stream at most) cannot open another.
  const refused = await fetch(stack.eventsUrl, { headers: { accept: 'text/event-stream' } });
  assert.equal(refused.status, 429);
  await refused.body?.cancel();

  await waitFor(
    () => streamSocket.destroyed,
    60_000,
    'the server to drop the connection of a client that does not read',
  );
  const droppedLines = () =>
    stack.lines.filter((line) => String(line.message).startsWith('event stream dropped'));
  await waitFor(() => droppedLines().length > 0, 10_000, 'the log line');
  const [dropped, ...more] = droppedLines();
  assert.equal(more.length, 0, 'one line');
  assert.equal(dropped?.sessionId, stack.sessionId);
  assert.ok(Number(dropped?.unsentBytes) > 0, 'the line says what was left unsent');
  assert.equal(await scrapeSample(stack.server.url, 'maos_sse_streams_dropped_total'), 1);

  // What reached the client before the drop: the first events, in order.
  const received = await readFrames(stalled.response);
  assert.ok(received.length > 0 && received.length < EVENTS, `${received.length} events reached the client`);
  assertConsecutive(received, 1);

  // The slot is free again: the client resumes after the last event it got, and gets the rest.
  await requestJson(`${stack.server.url}/v1/sessions/${stack.sessionId}/cancel`, { method: 'POST' });
  const lastSeen = Number(received.at(-1)?.id);
  const resumed = await openPausedStream(stack.eventsUrl, { 'last-event-id': String(lastSeen) });
  assert.equal(resumed.response.statusCode, 200);
  const rest = await readFrames(resumed.response);
  assertConsecutive(rest, lastSeen + 1);
  assert.equal(rest.at(-1)?.event, 'session.finished');
});

test('a client that reads in steps with pauses is not dropped, however many intervals it takes', {
  timeout: 120_000,
}, async (t) => {
  // Intervals of 0.5 s: a step of the reader (over a megabyte, read without a pause) fits in one
  // many times over, also on a loaded machine.
  const intervalMs = 500;
  const stack = await startStack(t, intervalMs / 1000);
  await requestJson(`${stack.server.url}/v1/sessions/${stack.sessionId}/cancel`, { method: 'POST' });
  await waitForSession(stack.server.url, stack.sessionId);
  const stream = await openPausedStream(stack.eventsUrl);
  t.after(() => stream.request.destroy());
  // Lets the server's buffers fill before the first read: the reader starts behind.
  const streamSocket = await stack.serverSocketOf(stream.port);
  await waitFor(() => streamSocket.writableLength > 0, 30_000, 'unsent events on the socket');

  // Half an interval's pause after each step: the 40 MB take the reader many steps.
  const pauseMs = intervalMs / 2;
  const read = await readInSteps(stream.response, streamSocket, { pauseMs });
  assert.equal(stream.response.complete, true, 'the stream ended, it was not cut');
  const frames = createSseParser().push(read.body.toString('utf8'));
  assertConsecutive(frames, 1);
  assert.equal(frames.at(-1)?.event, 'session.finished');
  assert.equal(await scrapeSample(stack.server.url, 'maos_sse_streams_dropped_total'), 0);
  // Bytes waited for the reader throughout its pauses, longer together than the stall limit: a rule
  // that did not see its progress would have dropped it.
  assert.ok(
    read.pauses * pauseMs > STALLED_CLIENT_INTERVALS * intervalMs,
    `${read.pauses} pauses of half an interval`,
  );
});
